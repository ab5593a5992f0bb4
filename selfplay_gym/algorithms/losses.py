"""Policy losses on three independent axes, as verl splits them: surrogate x KL x aggregation.

Each is a small pure tensor function. A trainer calls ``policy_loss`` with an ``AlgorithmConfig``
(a ``PRESETS`` entry, or a ``dataclasses.replace`` of one) and gets a dict back. Shapes:
``logp``, ``old_logp``, ``ref_logp``, ``mask`` are ``[B, T]`` (log-probs of the sampled tokens;
mask 1 on tokens the policy produced); ``advantages`` is ``[B]`` (broadcast) or ``[B, T]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import Tensor

from selfplay_gym.algorithms.advantages import ADVANTAGES


def ratio_and_clipped_surrogate(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
) -> dict[str, Tensor]:
    """PPO clipped surrogate: loss = -min(ρA, clip(ρ, 1 - ε_low, 1 + ε_high) A), ρ = e^(logp - old).

    PPO (Schulman et al., arXiv 1707.06347); separate ε_low / ε_high is DAPO's clip-higher
    (arXiv 2503.14476); ``dual_clip`` = c > 1 is dual-clip PPO (Ye et al., arXiv 1912.09729):
    for A < 0, loss = min(loss, -c A). Mirrors verl core_algos.py ``compute_policy_loss``,
    including its clamp of logp - old_logp to [-20, 20] before exp.

    Returns "loss" [B, T], "ratio" [B, T] (detached), "clipped" bool [B, T] (the clipped term
    is the one in force, so the token's gradient is zero) and "dual_clipped" bool [B, T].
    """
    if advantages.dim() == 1:
        advantages = advantages[:, None]  # [B, 1], broadcast over tokens
    advantages = advantages.detach()  # [B, 1] or [B, T]
    log_ratio = (logp - old_logp.detach()).clamp(-20.0, 20.0)  # [B, T]
    ratio = log_ratio.exp()  # [B, T]
    unclipped = -advantages * ratio  # [B, T]
    clipped = -advantages * ratio.clamp(1.0 - clip_low, 1.0 + clip_high)  # [B, T]
    is_clipped = clipped > unclipped  # [B, T]
    loss = torch.where(is_clipped, clipped, unclipped)  # [B, T] = max of the two
    is_dual = torch.zeros_like(is_clipped)  # [B, T]
    if dual_clip is not None:
        cap = -advantages * dual_clip  # [B, 1] or [B, T], positive where A < 0
        is_dual = (advantages < 0) & (loss > cap)  # [B, T]
        loss = torch.where(is_dual, cap.expand_as(loss), loss)  # [B, T]
    return {"loss": loss, "ratio": ratio.detach(), "clipped": is_clipped, "dual_clipped": is_dual}


# KL estimators of KL(π || π_ref) per token, from samples of π (Schulman, "Approximating KL
# divergence", 2020, http://joschu.net/blog/kl-approx.html; verl core_algos.py kl_penalty).


def kl_k1(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k1 = logp - ref_logp: unbiased, high variance, can be negative. [B, T]"""
    return logp - ref_logp


def kl_k2(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k2 = 0.5 (logp - ref_logp)^2: biased, low variance, >= 0. [B, T]"""
    return 0.5 * (logp - ref_logp) ** 2


def kl_k3(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """k3 = e^(ref - logp) - (ref - logp) - 1: unbiased, low variance, >= 0. [B, T]

    verl's "low_var_kl" (GRPO's KL, DeepSeekMath eq. 4): clamps ref - logp to [-20, 20] and
    the result to [-10, 10], as here.
    """
    delta = (ref_logp - logp).clamp(-20.0, 20.0)  # [B, T]
    return (delta.exp() - delta - 1.0).clamp(-10.0, 10.0)  # [B, T]


KL_ESTIMATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "k1": kl_k1, "k2": kl_k2, "k3": kl_k3
}


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """sum(x * mask) / sum(mask) over all elements; 0 (not NaN, gradient too) if mask is empty."""
    mask = mask.to(x.dtype)
    total = mask.sum()  # []
    return (x * mask).sum() / torch.where(total > 0, total, torch.ones_like(total))


# Aggregations [B, T] -> scalar (verl core_algos.py agg_loss; Dr. GRPO arXiv 2503.20783 §3.1).
# One signature so they share a table; only "constant" reads max_tokens.


def token_mean(loss: Tensor, mask: Tensor, max_tokens: int | None = None) -> Tensor:
    """sum(loss * mask) / sum(mask): every token of the batch weighs the same (DAPO; TRL "dapo")."""
    return masked_mean(loss, mask)


def sequence_mean(loss: Tensor, mask: Tensor, max_tokens: int | None = None) -> Tensor:
    """Mean over sequences of each sequence's token mean (original GRPO; verl seq-mean-token-mean).

    Sequences with no masked token are left out of the outer mean; all empty gives 0.
    """
    mask = mask.to(loss.dtype)
    per_sequence = mask.sum(-1)  # [B]
    has_tokens = (per_sequence > 0).to(loss.dtype)  # [B]
    safe = torch.where(per_sequence > 0, per_sequence, torch.ones_like(per_sequence))  # [B]
    return masked_mean((loss * mask).sum(-1) / safe, has_tokens)


def constant_normalizer(loss: Tensor, mask: Tensor, max_tokens: int | None = None) -> Tensor:
    """sum(loss * mask) / (B * max_tokens): Dr. GRPO's length-unbiased sum (TRL "dr_grpo").

    ``max_tokens`` is a constant of the run (the generation budget), so neither padding nor
    the lengths of this batch's completions change the weight of a token.
    """
    if max_tokens is None or max_tokens < 1:
        raise ValueError(
            f"the 'constant' aggregation needs max_tokens >= 1 (the generation budget, e.g. "
            f"max_new_tokens), got {max_tokens!r}; pass max_tokens=... or "
            f"dataclasses.replace(config, max_tokens=...)"
        )
    return (loss * mask.to(loss.dtype)).sum() / (loss.shape[0] * max_tokens)


AGGREGATIONS: dict[str, Callable[[Tensor, Tensor, int | None], Tensor]] = {
    "token_mean": token_mean,
    "sequence_mean": sequence_mean,
    "constant": constant_normalizer,
}


def distillation_loss(student_logp: Tensor, mask: Tensor, weights: Tensor | None = None) -> Tensor:
    """Token-mean NLL of teacher-labelled answer tokens: mean_t(-w_b * logp_{b,t}) over the mask.

    DARC's student step read as supervised self-distillation (Stage 2 of arXiv 2601.13761:
    the teacher is the same policy shown the document). ``weights`` [B], e.g. the teacher's
    vote fraction, scale each sample's tokens; the denominator stays the unweighted token
    count, so a weight of 0 drops a sample's contribution the way DARC zeroes its advantage.
    """
    nll = -student_logp  # [B, T]
    if weights is not None:
        nll = nll * weights[:, None].to(nll.dtype)  # [B, T]
    return token_mean(nll, mask)


def kto_loss(
    policy_logratio: Tensor,
    reference_kl: Tensor | float,
    desirable: Tensor,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> dict[str, Tensor]:
    """KTO: w_D (1 - σ(β(r_i - z))) if desirable, else w_U (1 - σ(β(z - r_i))); mean over B.

    Ethayarajh et al., arXiv 2402.01306; mirrors TRL kto_trainer ``kto_loss``. r_i =
    ``policy_logratio`` [B] = sum_t (logp - ref_logp) over completion i; z = ``reference_kl``,
    the batch's KL(π || π_ref) estimate, detached and clamped at >= 0; ``desirable`` bool [B].
    Returns "loss" (scalar) and "rewards" [B] = β r_i (detached), the implicit rewards.
    """
    z = torch.as_tensor(reference_kl, dtype=policy_logratio.dtype, device=policy_logratio.device)
    z = z.detach().clamp_min(0.0)  # []
    chosen = desirable_weight * (1.0 - torch.sigmoid(beta * (policy_logratio - z)))  # [B]
    rejected = undesirable_weight * (1.0 - torch.sigmoid(beta * (z - policy_logratio)))  # [B]
    losses = torch.where(desirable.bool(), chosen, rejected)  # [B]
    return {"loss": losses.mean(), "rewards": (beta * policy_logratio).detach()}


@dataclasses.dataclass(frozen=True)
class AlgorithmConfig:
    """One point on the three axes plus its constants. Start from ``PRESETS[name]``."""

    advantage: str = "grpo"
    """A key of ``advantages.ADVANTAGES``, or "reinforce_pp" (token-level, KL in the reward)."""
    aggregate: str = "token_mean"
    """A key of ``AGGREGATIONS``: "token_mean", "sequence_mean" or "constant"."""
    clip_low: float = 0.2
    """ε_low: the ratio is clipped below at 1 - clip_low."""
    clip_high: float = 0.2
    """ε_high: the ratio is clipped above at 1 + clip_high (DAPO's clip-higher when > clip_low)."""
    dual_clip: float | None = None
    """c > 1 caps the loss of a negative-advantage token at -c A; None turns it off."""
    kl_estimator: str = "k3"
    """A key of ``KL_ESTIMATORS``."""
    kl_coef: float = 0.0
    """β of the KL(π || π_ref) term; 0 needs no reference log-probs."""
    kl_in_reward: bool = False
    """True: the trainer puts -β KL into REINFORCE++'s per-token reward, not into the loss."""
    entropy_coef: float = 0.0
    """Weight of the entropy bonus subtracted from the loss."""
    dynamic_sampling: bool = False
    """Drop zero-variance groups before the update (DAPO; ``advantages.zero_variance_groups``)."""
    max_tokens: int | None = None
    """The generation budget; the "constant" aggregation divides by B * max_tokens."""
    loss: str = "policy_gradient"
    """"policy_gradient" (``policy_loss``), "kto" (``kto_loss`` on reward-sign labels: reward > 0
    desirable, < 0 undesirable, 0 no example) or "nll" (``distillation_loss`` weighted by
    max(reward, 0)). The last two use no advantage and no sampling log-probs."""
    kto_beta: float = 0.1
    sample_filter: str = ""
    """Which samples train, by reward: a key of ``SAMPLE_FILTERS``; "" = the loss's own
    (``LOSS_KINDS``: KTO drops reward 0, no example; NLL drops rewards <= 0, which weigh 0)."""
    tis_cap: float | None = None
    """C of truncated importance sampling (``off_policy.truncated_importance_weights``) when
    another engine samples; None: the surrogate's old policy is the engine's log-probs."""

    def __post_init__(self) -> None:
        _choose("loss", self.loss, list(LOSS_KINDS))
        if self.sample_filter:
            _choose("sample_filter", self.sample_filter, list(SAMPLE_FILTERS))
        if self.tis_cap is not None and not self.tis_cap > 0:
            raise ValueError(f"tis_cap must be > 0 or None, got {self.tis_cap}")
        _choose("advantage", self.advantage, [*ADVANTAGES, "reinforce_pp"])
        _choose("aggregate", self.aggregate, list(AGGREGATIONS))
        _choose("kl_estimator", self.kl_estimator, list(KL_ESTIMATORS))
        if not (0.0 <= self.clip_low < 1.0 and self.clip_high >= 0.0):
            raise ValueError(f"need 0 <= clip_low < 1 and clip_high >= 0, got {self}")
        if self.dual_clip is not None and self.dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1 or None, got {self.dual_clip}")
        if self.kl_coef < 0.0 or self.entropy_coef < 0.0:
            raise ValueError(f"kl_coef and entropy_coef must be >= 0, got {self}")
        if self.kl_in_reward and self.advantage != "reinforce_pp":
            raise ValueError(
                f"kl_in_reward=True needs advantage='reinforce_pp' (the only estimator with a "
                f"per-token reward), got advantage={self.advantage!r}; set kl_in_reward=False"
            )
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1 or None, got {self.max_tokens}")


    @property
    def ratio_free(self) -> bool:
        """No importance ratio: trains on rewards, not advantages, and can take completions
        sampled under another prompt (``Mode.cross_role_examples``)."""
        return LOSS_KINDS[self.loss].ratio_free

    @property
    def needs_reference(self) -> bool:
        """The update reads reference log-probs (a KL term, or KTO's log-ratio)."""
        return self.kl_coef > 0 or LOSS_KINDS[self.loss].needs_reference

    def keeps(self, reward: float) -> bool:
        """Whether a sample of this reward trains under this loss (``sample_filter``)."""
        return SAMPLE_FILTERS[self.sample_filter or LOSS_KINDS[self.loss].sample_filter](reward)


@dataclasses.dataclass(frozen=True)
class LossKind:
    """What the trainer must know of a loss, so that it never asks for one by name."""

    ratio_free: bool
    needs_reference: bool
    sample_filter: str


LOSS_KINDS: dict[str, LossKind] = {
    "policy_gradient": LossKind(ratio_free=False, needs_reference=False, sample_filter="all"),
    "kto": LossKind(ratio_free=True, needs_reference=True, sample_filter="nonzero_reward"),
    "nll": LossKind(ratio_free=True, needs_reference=False, sample_filter="positive_reward"),
}

SAMPLE_FILTERS: dict[str, Callable[[float], bool]] = {
    "all": lambda reward: True,
    "nonzero_reward": lambda reward: reward != 0,  # KTO's labels: 0 is no example
    "positive_reward": lambda reward: reward > 0,  # NLL's weights max(r, 0): <= 0 weighs nothing
}

RATIO_FREE_LOSSES = tuple(name for name, kind in LOSS_KINDS.items() if kind.ratio_free)
"""Losses with no importance ratio (``AlgorithmConfig.ratio_free``)."""


def _choose(field: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {field} {value!r}; valid choices: {', '.join(choices)}")


PRESETS: dict[str, AlgorithmConfig] = {
    # DeepSeekMath arXiv 2402.03300 §4.1: β = 0.04 on the k3 KL, per-sequence mean; ε = 0.2.
    "grpo": AlgorithmConfig("grpo", "sequence_mean", kl_estimator="k3", kl_coef=0.04),
    # Dr. GRPO arXiv 2503.20783: no std, constant normaliser, no KL. Set max_tokens per run.
    "dr_grpo": AlgorithmConfig("dr_grpo", "constant", kl_coef=0.0),
    # DAPO arXiv 2503.14476: ε_low 0.2 / ε_high 0.28, token mean, no KL, dynamic sampling.
    "dapo": AlgorithmConfig("grpo", "token_mean", clip_high=0.28, dynamic_sampling=True),
    # RLOO arXiv 2402.14740 baseline, token mean; KL off (set kl_coef for a k3 loss term).
    "rloo": AlgorithmConfig("rloo", "token_mean", kl_coef=0.0),
    # REINFORCE++ arXiv 2501.03262: k1 KL in the per-token reward, β = 0.01, ε = 0.2.
    "reinforce_pp": AlgorithmConfig(
        "reinforce_pp", "token_mean", kl_estimator="k1", kl_coef=0.01, kl_in_reward=True
    ),
    # R-Zero arXiv 2508.05004, code (EasyR1 fork): clip 0.2/0.3, dual-clip 3, low_var_kl 1e-2.
    "rzero": AlgorithmConfig(
        "grpo", "token_mean", clip_high=0.3, dual_clip=3.0, kl_estimator="k3", kl_coef=1e-2
    ),
    # DARC arXiv 2601.13761 solver: GRPO without std, KL 0; clips are R-Zero's EasyR1 defaults.
    "darc": AlgorithmConfig("dr_grpo", "token_mean", clip_high=0.3, dual_clip=3.0, kl_coef=0.0),
    # AERO (arXiv 2602.03084, code: LLaMA-Factory stage kto): KTO on its desirable/undesirable
    # labels, β = 0.1 (LLaMA-Factory's default; AERO's own KTO yaml is not published).
    "kto": AlgorithmConfig(loss="kto", kto_beta=0.1, sample_filter="nonzero_reward"),
    # Rejection-sampling fine-tuning (RFT, arXiv 2308.01825; STaR, arXiv 2203.14465): NLL of the
    # policy's own completions weighted by max(reward, 0), so a 0/1 reward keeps the right ones.
    # DARC's stage 2 read as supervised self-distillation.
    "rft": AlgorithmConfig(loss="nll", sample_filter="positive_reward"),
    # AZR arXiv 2505.03335 eq. 8, TRR++: group-normalised rewards with one group per (role,
    # task type), which the azr mode's group ids give; no KL (use_kl_loss False), clip 0.2.
    "azr": AlgorithmConfig("grpo", "token_mean", kl_coef=0.0),
}
"""Named configs; clip_low is 0.2 (the default) in all of them."""


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    config: AlgorithmConfig,
    entropy: Tensor | None = None,
    token_weights: Tensor | None = None,
) -> dict[str, Tensor | float]:
    """Clipped surrogate + kl_coef * KL - entropy_coef * entropy, aggregated by config.aggregate.

    ``token_weights`` [B, T] (detached) scale each token's surrogate before aggregation:
    truncated importance weights when another engine sampled (``off_policy``).

    The KL term is skipped when ``config.kl_in_reward`` (REINFORCE++ has it in the reward).
    ``entropy`` [B, T] is the policy's per-token entropy. Returns "loss" (scalar, differentiable)
    and detached floats "pg_loss", "kl" (the aggregated estimator, 0.0 without ref_logp),
    "entropy" (only if given), "clip_fraction" and "ratio_mean" (token means over the mask).
    Because every aggregation is linear, loss = pg_loss + kl_coef kl - entropy_coef entropy.
    """
    needs_kl = config.kl_coef > 0.0 and not config.kl_in_reward
    if needs_kl and ref_logp is None:
        raise ValueError(f"kl_coef={config.kl_coef} needs ref_logp; pass it or set kl_coef=0.0")
    if config.entropy_coef > 0.0 and entropy is None:
        raise ValueError(f"entropy_coef={config.entropy_coef} needs entropy [B, T]; pass it")

    def aggregate(x: Tensor) -> Tensor:  # [B, T] -> []
        return AGGREGATIONS[config.aggregate](x, mask, config.max_tokens)

    surrogate = ratio_and_clipped_surrogate(
        logp, old_logp, advantages, config.clip_low, config.clip_high, config.dual_clip
    )
    per_token = surrogate["loss"] if token_weights is None else surrogate["loss"] * token_weights.detach()
    pg_loss = aggregate(per_token)  # []
    loss = pg_loss
    stats: dict[str, Tensor | float] = {"pg_loss": pg_loss.item(), "kl": 0.0}
    if ref_logp is not None:
        kl = aggregate(KL_ESTIMATORS[config.kl_estimator](logp, ref_logp.detach()))  # []
        stats["kl"] = kl.item()
        if needs_kl:
            loss = loss + config.kl_coef * kl
    if entropy is not None:
        mean_entropy = aggregate(entropy)  # []
        stats["entropy"] = mean_entropy.item()
        loss = loss - config.entropy_coef * mean_entropy
    stats["clip_fraction"] = masked_mean(surrogate["clipped"].to(logp.dtype), mask).item()
    stats["ratio_mean"] = masked_mean(surrogate["ratio"], mask).item()
    return {"loss": loss, **stats}

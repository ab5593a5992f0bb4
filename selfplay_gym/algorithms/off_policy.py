"""When the engine that samples is not the learner that trains (vLLM, a server): how far their
log-probs are apart, and the truncated importance weights that correct the gradient for it.

Shapes as in losses.py: ``learner_logp``, ``engine_logp``, ``mask`` are ``[B, T]``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def truncated_importance_weights(learner_logp: Tensor, engine_logp: Tensor, cap: float) -> Tensor:
    """w_t = min(exp(log pi_learner(y_t) - log pi_engine(y_t)), C), detached. [B, T]

    Truncated importance sampling (TIS) for a sampler that is not the learner: Yao et al.,
    "Your Efficient RL Framework Secretly Brings You Off-Policy RL Training" (2025); TRL's
    ``vllm_importance_sampling_mode="token_truncate"`` (its clip max defaults to 3) and verl's
    token-level ``rollout_is``. The clipped surrogate then uses the learner's own log-probs as
    the old policy and multiplies each token's loss by w_t; ``learner_logp`` is computed before
    the update, so w_t = 1 exactly where the two engines agree. The log-ratio is clamped to
    [-20, 20] before exp, as the surrogate's ratio is.
    """
    if not cap > 0:
        raise ValueError(f"the importance-weight cap must be > 0, got {cap}")
    log_ratio = (learner_logp - engine_logp).detach().clamp(-20.0, 20.0)  # [B, T]
    return log_ratio.exp().clamp(max=cap)  # [B, T]


def agreement_stats(
    learner_logp: Tensor, engine_logp: Tensor, mask: Tensor, cap: float | None = None
) -> dict[str, float]:
    """How the engine's sampling log-probs compare with the learner's on the trained tokens.

    "logp_diff_mean" / "logp_diff_max": mean and max of |log p_engine - log p_learner| over the
    mask; "ratio_mean" / "ratio_min" / "ratio_max": of p_learner / p_engine; with a ``cap``,
    "truncated_fraction": the share of tokens whose ratio exceeds it. All 0 on an empty mask.
    """
    keep = mask.bool()
    if not keep.any():
        out = dict.fromkeys(("logp_diff_mean", "logp_diff_max", "ratio_mean", "ratio_min",
                             "ratio_max"), 0.0)
        return out | ({"truncated_fraction": 0.0} if cap is not None else {})
    diff = (learner_logp - engine_logp).detach()[keep]  # [N]
    ratio = diff.clamp(-20.0, 20.0).exp()  # [N]
    out = {
        "logp_diff_mean": float(diff.abs().mean()),
        "logp_diff_max": float(diff.abs().max()),
        "ratio_mean": float(ratio.mean()),
        "ratio_min": float(ratio.min()),
        "ratio_max": float(ratio.max()),
    }
    if cap is not None:
        out["truncated_fraction"] = float((ratio > cap).to(torch.float32).mean())
    return out

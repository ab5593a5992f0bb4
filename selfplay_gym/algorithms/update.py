"""One adapter's policy-gradient update: epochs of shuffled minibatches, micro-batched.

Called once per trained adapter per iteration, with that adapter's own optimizer. Roles that
share an adapter (one policy playing several roles) arrive here together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from selfplay_gym.algorithms import distributed
from selfplay_gym.algorithms.losses import (
    AlgorithmConfig,
    distillation_loss,
    kl_k3,
    kto_loss,
    policy_loss,
    token_mean,
)
from selfplay_gym.algorithms.samples import pad_right
from selfplay_gym.types import Sample


class Learner(Protocol):
    """What the trainer needs from a backend (HFBackend has it)."""

    def adapter_parameters(self, adapter: str) -> dict[str, torch.nn.Parameter]: ...

    def train_logprobs(
        self, adapter: str, prompt_ids, completion_ids, *, temperature: float, with_entropy: bool,
        entropy_grad: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]: ...

    def reference_logprobs(self, prompt_ids, completion_ids, **kwargs) -> list[torch.Tensor]: ...

    def logprobs(self, adapter: str | None, prompt_ids, completion_ids, **kwargs) -> list[torch.Tensor]: ...


@dataclass(frozen=True)
class UpdateConfig:
    epochs: int = 1
    """Passes over the iteration's samples (1 = on-policy, as R-Zero and DARC)."""
    minibatch_size: int = 64
    """Samples per optimizer step."""
    micro_batch_size: int = 16
    """Samples per forward/backward (gradient accumulation within a minibatch)."""
    max_grad_norm: float = 1.0
    log_entropy: bool = True
    """Compute the policy's entropy for the metrics even when entropy_coef is 0."""


class NonFiniteError(ValueError):
    """Training reached NaN or infinity: stopped before any of it is saved."""


@dataclass
class NonFiniteGuard:
    """Skips optimizer steps whose loss or gradient is not finite, and stops the run after
    ``limit`` of them in a row, per adapter and across iterations.

    One bad minibatch (a -inf log-prob, an overflow in half precision) is bad luck, and skipping
    its step keeps the weights clean; a streak means the learning rate or the data is broken,
    and going on would only train on nothing or write NaN into a checkpoint."""

    adapter: str
    limit: int = 3
    streak: int = 0

    def allows(self, finite: bool) -> bool:
        """Whether to take this step; raises NonFiniteError at the ``limit``-th skip in a row."""
        self.streak = 0 if finite else self.streak + 1
        if self.streak >= self.limit:
            raise NonFiniteError(
                f"adapter {self.adapter!r}: {self.streak} optimizer steps in a row had a non-finite "
                "loss or gradient (each was skipped, so the weights are still finite); lower "
                "--train.learning-rate, check the rewards, or allow a longer streak with "
                "--train.max-nonfinite-steps")
        return finite


def update_adapter(
    learner: Learner,
    adapter: str,
    samples: Sequence[Sample],
    advantages: torch.Tensor,
    ref_logprobs: Sequence[torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    algorithm: AlgorithmConfig,
    config: UpdateConfig,
    temperature: float,
    generator: torch.Generator,
    token_weights: Sequence[torch.Tensor] | None = None,
    guard: NonFiniteGuard | None = None,
) -> dict[str, float]:
    """Minibatch updates of ``adapter`` on ``samples``; returns mean stats over the steps taken.

    ``token_weights`` (one [T_i] tensor per sample) scale each token's policy-gradient loss:
    the truncated importance weights of a rollout engine other than the learner. A step whose
    loss or gradient is not finite is skipped and counted (``skipped_nonfinite``); ``guard``
    (the trainer keeps one per adapter) stops the run after a streak of them."""
    params = list(learner.adapter_parameters(adapter).values())
    guard = guard or NonFiniteGuard(adapter)
    totals: dict[str, float] = {}
    steps = skipped = 0
    # data parallel: minibatch_size is global, split over the ranks, which all take as many
    # steps as the rank with most samples needs (one process: size 1, nothing changes)
    size = -(-config.minibatch_size // distributed.world().size)
    per_epoch = distributed.max_over_ranks(-(-len(samples) // size))
    for _ in range(config.epochs):
        order = torch.randperm(len(samples), generator=generator).tolist()
        for start in range(0, per_epoch * size, size):
            minibatch = order[start : start + size]
            optimizer.zero_grad(set_to_none=True)
            step_stats: dict[str, float] = {}
            finite = True
            for micro_start in range(0, len(minibatch), config.micro_batch_size):
                micro = minibatch[micro_start : micro_start + config.micro_batch_size]
                stats, loss = _micro_step(learner, adapter, samples, micro, advantages, ref_logprobs,
                                          algorithm, config, temperature,
                                          weight=len(micro) / len(minibatch), token_weights=token_weights)
                finite = finite and math.isfinite(loss)
                for key, value in stats.items():
                    step_stats[key] = step_stats.get(key, 0.0) + value * len(micro) / len(minibatch)
            distributed.average_gradients(params, len(minibatch))
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
            # every rank skips or steps together: a loss can be non-finite on one rank only
            finite = distributed.max_over_ranks(int(not (finite and math.isfinite(grad_norm)))) == 0
            if not guard.allows(finite):
                optimizer.zero_grad(set_to_none=True)
                skipped += 1
                continue
            optimizer.step()
            _check_finite_weights(adapter, params, optimizer)
            steps += 1
            for key, value in (step_stats | {"grad_norm": grad_norm}).items():
                totals[key] = totals.get(key, 0.0) + value
    means = {key: value / max(1, steps) for key, value in totals.items()}
    return means | {"optimizer_steps": steps, "skipped_nonfinite": skipped}


def _check_finite_weights(adapter: str, params: list[torch.nn.Parameter],
                          optimizer: torch.optim.Optimizer) -> None:
    """Stop at once when a step with a finite gradient made weights non-finite (a learning rate
    so large that the update overflows): no later step can undo it, and generating with such
    an adapter dies inside torch's sampler."""
    bad = int(torch.stack([~torch.isfinite(p.detach()).all() for p in params]).sum()) if params else 0
    if bad:
        lr = optimizer.param_groups[0].get("lr")
        raise NonFiniteError(
            f"adapter {adapter!r}: an optimizer step at learning rate {lr} made {bad} of "
            f"{len(params)} weight tensors NaN or infinite; lower --train.learning-rate (nothing "
            "of this step was saved)")


def _micro_step(learner, adapter, samples, micro, advantages, ref_logprobs, algorithm, config,
                temperature, weight, token_weights=None) -> tuple[dict[str, float], float]:
    """One forward/backward; returns the stats and the micro-batch's loss (to check it is finite)."""
    chosen = [samples[i] for i in micro]
    logp, mask, entropy = learner.train_logprobs(
        adapter, [s.prompt_ids for s in chosen], [s.completion_ids for s in chosen],
        temperature=temperature, with_entropy=config.log_entropy or algorithm.entropy_coef > 0,
        entropy_grad=algorithm.entropy_coef > 0,
    )  # [b, T], [b, T], [b, T] | None
    width = logp.shape[1]
    old = pad_right([s.old_logprobs for s in chosen], width).to(logp.device)  # [b, T]
    ref = None
    if ref_logprobs is not None:
        ref = pad_right([ref_logprobs[i].tolist() for i in micro], width).to(logp.device)  # [b, T]
    adv = advantages[micro].to(logp.device)  # [b] or [b, T']
    if adv.dim() == 2:
        adv = torch.nn.functional.pad(adv, (0, width - adv.shape[1]))[:, :width]  # [b, T]
    if algorithm.loss == "kto":
        out = _kto(logp, ref, adv, mask.float(), algorithm)
    elif algorithm.loss == "nll":
        out = _nll(logp, ref, adv, mask.float(), algorithm)
    else:
        weights = None
        if token_weights is not None:
            weights = pad_right([token_weights[i].tolist() for i in micro], width).to(logp.device)  # [b, T]
        out = policy_loss(logp, old, ref, adv, mask.float(), algorithm, entropy, weights)
    (out["loss"] * weight).backward()
    return {k: float(v) for k, v in out.items() if k != "loss"}, float(out["loss"].detach())


def _kto(logp, ref, labels, mask, algorithm) -> dict[str, torch.Tensor | float]:
    """KTO on a micro-batch: r_i = sum_t (logp - ref) per completion; z = the micro-batch mean
    of r_i (KTO's reference point, detached; TRL estimates it on mismatched prompt/completion
    pairs, which costs a second forward pass); desirable iff the label (reward) is > 0.

    With ``kl_coef > 0`` the loss adds ``kl_coef * token_mean(k3(logp, ref))``, an explicit
    anchor to the reference (ours, not in KTO): z only centres the rewards, so nothing else
    stops a LoRA adapter at a high learning rate from pushing every undesirable completion's
    log-prob to minus infinity, which collapses a shared adapter."""
    if ref is None:
        raise ValueError("the KTO loss needs reference log-probs; the trainer computes them")
    logratio = ((logp - ref) * mask).sum(dim=1)  # [b]
    out = kto_loss(logratio, logratio.mean().detach(), labels > 0, beta=algorithm.kto_beta)
    desirable = (labels > 0).float()  # [b]
    stats = {"kto_reward_desirable": float((out["rewards"] * desirable).sum()
             / desirable.sum().clamp_min(1)), "kto_logratio": float(logratio.detach().mean())}
    return _with_kl_anchor(out["loss"], stats, logp, ref, mask, algorithm)


def _nll(logp, ref, rewards, mask, algorithm) -> dict[str, torch.Tensor | float]:
    """``distillation_loss`` with weights max(reward, 0), plus the KL anchor as for KTO."""
    loss = distillation_loss(logp, mask, rewards.clamp_min(0.0))
    return _with_kl_anchor(loss, {"nll": float(loss.detach())}, logp, ref, mask, algorithm)


def _with_kl_anchor(loss, stats, logp, ref, mask, algorithm) -> dict[str, torch.Tensor | float]:
    """``loss + kl_coef * token_mean(k3(logp, ref))`` when ``kl_coef > 0`` (the ratio-free
    losses' anchor to the reference), with the KL in the stats; else ``loss`` unchanged."""
    if algorithm.kl_coef > 0.0:
        if ref is None:
            raise ValueError("kl_coef > 0 needs reference log-probs; the trainer computes them")
        kl = token_mean(kl_k3(logp, ref), mask)
        loss, stats["kl"] = loss + algorithm.kl_coef * kl, float(kl.detach())
    return {"loss": loss, **stats}

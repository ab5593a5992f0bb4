"""Advantage estimators: small pure tensor functions, one per method, each with its source.

The group estimators take ``rewards`` (float ``[B]``, one scalar reward per completion) and
``groups`` (integer ``[B]``: completions sharing an id were sampled for the same prompt). Ids
may be any integers, in any order: they are only compared for equality. Each returns ``[B]``,
which a loss broadcasts over the completion's tokens. ``reinforce_pp`` works on tokens and
returns ``[B, T]``, so it is exported but kept out of the ``ADVANTAGES`` table.

Advantages are targets, not functions of the parameters: the losses detach them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def _group_index(rewards: Tensor, groups: Tensor) -> tuple[Tensor, int]:
    """Map arbitrary group ids to ``0..G-1``: returns (index ``[B]``, G)."""
    if rewards.dim() != 1 or groups.shape != rewards.shape:
        raise ValueError(
            f"rewards and groups must both be 1-D of the same length [B], got "
            f"{tuple(rewards.shape)} and {tuple(groups.shape)}"
        )
    _, index = torch.unique(groups, return_inverse=True)  # [B] in 0..G-1
    return index, int(index.max()) + 1 if index.numel() else 0


def _group_sum(values: Tensor, index: Tensor, n_groups: int) -> Tensor:
    """Sum ``values`` [B] within each group and hand each sample its group's sum: [B]."""
    total = torch.zeros(n_groups, dtype=values.dtype, device=values.device)  # [G]
    return total.index_add(0, index, values)[index]  # [B]


def _centred(rewards: Tensor, groups: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(r_i - mean_g, group size n_g, whether the sample's group has a learning signal): [B]."""
    index, n_groups = _group_index(rewards, groups)
    count = _group_sum(torch.ones_like(rewards), index, n_groups)  # [B]
    mean = _group_sum(rewards, index, n_groups) / count  # [B]
    # A singleton has no baseline and an all-equal group has no signal. Both get exact zeros:
    # r - mean can be one ulp off zero (0.1 * 3 / 3 != 0.1 in float32), so mask, don't trust.
    signal = (count > 1) & ~zero_variance_groups(rewards, groups)  # [B]
    return rewards - mean, count, signal


def group_normalized(rewards: Tensor, groups: Tensor, eps: float = 1e-6) -> Tensor:
    """GRPO: A_i = (r_i - mean_g) / (std_g + eps), std unbiased (``torch.std``).

    DeepSeekMath (Shao et al., arXiv 2402.03300) §4.1.2; mirrors TRL grpo_trainer and verl
    core_algos.py ``compute_grpo_outcome_advantage`` (eps 1e-6 as verl; TRL uses 1e-4).
    A group of one gets 0: no other sample exists to form a baseline (verl would return r_i
    itself there). A zero-variance group gets exact zeros, never NaN.
    """
    centred, count, signal = _centred(rewards, groups)  # [B], [B], [B]
    index, n_groups = _group_index(rewards, groups)
    var = _group_sum(centred**2, index, n_groups) / (count - 1).clamp_min(1)  # [B]
    advantages = centred / (var.sqrt() + eps)  # [B]
    return torch.where(signal, advantages, torch.zeros_like(advantages))  # [B]


def dr_grpo(rewards: Tensor, groups: Tensor) -> Tensor:
    """Dr. GRPO: A_i = r_i - mean_g, no division by the group std.

    Liu et al., "Understanding R1-Zero-Like Training: A Critical Perspective", arXiv 2503.20783
    (the std term up-weights too-easy and too-hard prompts). Singletons and zero-variance
    groups get exact zeros.
    """
    centred, _, signal = _centred(rewards, groups)  # [B], [B]
    return torch.where(signal, centred, torch.zeros_like(centred))  # [B]


def rloo(rewards: Tensor, groups: Tensor) -> Tensor:
    """RLOO: A_i = r_i - mean_{j != i in g} r_j = n/(n-1) (r_i - mean_g).

    Leave-one-out baseline of Ahmadian et al., "Back to Basics", arXiv 2402.14740 (after Kool
    et al. 2019); mirrors verl core_algos.py ``compute_rloo_outcome_advantage``. A singleton
    has no other sample to leave in, so it gets 0.
    """
    centred, count, signal = _centred(rewards, groups)  # [B], [B], [B]
    advantages = centred * count / (count - 1).clamp_min(1)  # [B]
    return torch.where(signal, advantages, torch.zeros_like(advantages))  # [B]


def reinforce_pp(
    rewards: Tensor, token_kl: Tensor, mask: Tensor, kl_coef: float, eps: float = 1e-6
) -> Tensor:
    """REINFORCE++: token returns with the KL penalty in the reward, whitened over the batch.

    Hu et al., arXiv 2501.03262; mirrors verl core_algos.py
    ``compute_reinforce_plus_plus_outcome_advantage``. Per-token reward
    r_t = -kl_coef * kl_t at every completion token, plus the scalar reward at the last token
    with mask 1. Return-to-go G_t = sum_{s >= t} r_s (gamma = 1). Then A = (G - mean) /
    (std + eps), with mean and unbiased std over all masked tokens of the batch.

    Inputs: rewards ``[B]``, token_kl ``[B, T]`` (e.g. ``kl_k1(old_logp, ref_logp)``), mask
    ``[B, T]`` (1 on completion tokens). Returns ``[B, T]``, 0 where mask is 0. Masked tokens
    inside a completion (env tokens of a multi-turn episode) carry no reward of their own but
    do not cut the return: earlier tokens still see later rewards. verl resets the return at
    every masked token instead; the two agree on right-padded masks.
    """
    if token_kl.dim() != 2 or mask.shape != token_kl.shape or rewards.shape != token_kl.shape[:1]:
        raise ValueError(
            f"expected rewards [B], token_kl [B, T], mask [B, T]; got {tuple(rewards.shape)}, "
            f"{tuple(token_kl.shape)}, {tuple(mask.shape)}"
        )
    weight = mask.to(token_kl.dtype)  # [B, T]
    positions = torch.arange(1, mask.shape[-1] + 1, device=mask.device)  # [T]
    last = (weight * positions).argmax(dim=-1, keepdim=True)  # [B, 1] last real token
    token_reward = -kl_coef * token_kl * weight  # [B, T]
    token_reward = token_reward.scatter_add(1, last, rewards[:, None].to(token_kl.dtype))
    returns = token_reward.flip(-1).cumsum(-1).flip(-1)  # [B, T] G_t = sum_{s >= t} r_s
    n = weight.sum()  # [] masked tokens in the batch
    mean = (returns * weight).sum() / n.clamp_min(1)  # []
    var = (((returns - mean) * weight) ** 2).sum() / (n - 1).clamp_min(1)  # [] unbiased
    return (returns - mean) / (var.sqrt() + eps) * weight  # [B, T]


def zero_variance_groups(rewards: Tensor, groups: Tensor) -> Tensor:
    """True for samples whose group's rewards are all equal (bool ``[B]``).

    Such groups give every member a zero advantage under GRPO, Dr. GRPO and RLOO: no gradient.
    DAPO's dynamic sampling drops them and refills the batch (Yu et al., arXiv 2503.14476,
    §3.2). A singleton counts as zero-variance: it carries no signal either.
    """
    index, n_groups = _group_index(rewards, groups)
    lowest = torch.full((n_groups,), torch.inf, dtype=rewards.dtype, device=rewards.device)
    highest = torch.full_like(lowest, -torch.inf)  # [G]
    lowest = lowest.scatter_reduce(0, index, rewards, reduce="amin")  # [G]
    highest = highest.scatter_reduce(0, index, rewards, reduce="amax")  # [G]
    return (lowest == highest)[index]  # [B]


ADVANTAGES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "grpo": group_normalized,
    "dr_grpo": dr_grpo,
    "rloo": rloo,
}
"""Group advantage estimators by name: ``(rewards [B], groups [B]) -> advantages [B]``."""

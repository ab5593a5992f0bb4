"""From finished episodes to trainable samples with advantages.

The env says who wrote what, in which group, and what it earned; the mode's filter says which
samples count (R-Zero's consistency band); the algorithm says how rewards become advantages.
Groups are keyed by (role, group id), so a questioner and a solver never share a baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import torch

from selfplay_gym.algorithms.advantages import ADVANTAGES, reinforce_pp, zero_variance_groups
from selfplay_gym.algorithms.losses import KL_ESTIMATORS, AlgorithmConfig
from selfplay_gym.envs.vector import Rollout
from selfplay_gym.types import Episode, Sample

KeepFn = Callable[[str, Episode], bool]
ExamplesFn = Callable[[Episode], Sequence[tuple[str, str, float]]]


def collect_samples(rollout: Rollout, roles: Collection[str], keep: KeepFn) -> list[Sample]:
    """Every completion of a trained role that carries tokens and passes the mode's filter."""
    samples = []
    for episode, completions in zip(rollout.episodes, rollout.completions, strict=True):
        for agent, completion in completions.items():
            role = agent.rsplit("_", 1)[0]
            if role not in roles or not completion.completion_ids or not keep(agent, episode):
                continue
            samples.append(
                Sample(
                    role=role,
                    agent=agent,
                    episode_id=episode.episode_id,
                    group_id=episode.group_ids[agent],
                    prompt_ids=completion.prompt_ids,
                    completion_ids=completion.completion_ids,
                    old_logprobs=completion.logprobs,
                    reward=episode.rewards[agent],
                    finish_reason=completion.finish_reason,
                )
            )
    return samples


def collect_cross_role_samples(rollout: Rollout, roles: Collection[str], examples: ExamplesFn) -> list[Sample]:
    """The mode's cross-role examples (``Mode.cross_role_examples``) of a trained role: the
    writer's completion under the prompt of ``prompt_of``, in its group, with the given reward.
    No sampling log-probs exist for that pairing, so ``old_logprobs`` stays empty (KTO only)."""
    samples = []
    for episode, completions in zip(rollout.episodes, rollout.completions, strict=True):
        for writer, prompt_of, reward in examples(episode):
            role = prompt_of.rsplit("_", 1)[0]
            written, prompted = completions.get(writer), completions.get(prompt_of)
            if role not in roles or not written or not prompted or not written.completion_ids:
                continue
            samples.append(
                Sample(
                    role=role,
                    agent=writer,
                    episode_id=episode.episode_id,
                    group_id=episode.group_ids[prompt_of],
                    prompt_ids=prompted.prompt_ids,
                    completion_ids=written.completion_ids,
                    old_logprobs=[],
                    reward=reward,
                    finish_reason=written.finish_reason,
                )
            )
    return samples


def group_tensor(samples: Sequence[Sample]) -> torch.Tensor:
    """Integer group ids [N], one per distinct (role, group id)."""
    ids: dict[tuple[str, str], int] = {}
    return torch.tensor([ids.setdefault((s.role, s.group_id), len(ids)) for s in samples])


def drop_zero_variance(samples: list[Sample]) -> list[Sample]:
    """DAPO's dynamic sampling (arXiv 2503.14476): groups whose rewards all agree teach nothing."""
    if not samples:
        return samples
    rewards = torch.tensor([s.reward for s in samples])
    flat = zero_variance_groups(rewards, group_tensor(samples))
    return [s for s, drop in zip(samples, flat.tolist(), strict=True) if not drop]


def pad_right(rows: Sequence[Sequence[float]], width: int | None = None) -> torch.Tensor:
    """A [B, T] float tensor, zero-padded on the right."""
    width = width or max((len(r) for r in rows), default=1)
    out = torch.zeros(len(rows), max(1, width))
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.as_tensor(row, dtype=torch.float32)
    return out


def compute_advantages(
    samples: Sequence[Sample],
    algorithm: AlgorithmConfig,
    ref_logprobs: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Advantages [N] for the group estimators, or [N, T] for REINFORCE++ (KL in the reward)."""
    rewards = torch.tensor([s.reward for s in samples], dtype=torch.float32)  # [N]
    groups = group_tensor(samples)  # [N]
    if algorithm.advantage in ADVANTAGES:
        return ADVANTAGES[algorithm.advantage](rewards, groups)
    if ref_logprobs is None:
        raise ValueError("REINFORCE++ needs reference log-probs for its per-token KL reward")
    old = pad_right([s.old_logprobs for s in samples])  # [N, T]
    ref = pad_right([r.tolist() for r in ref_logprobs], old.shape[1])  # [N, T]
    mask = pad_right([[1.0] * len(s.completion_ids) for s in samples], old.shape[1])  # [N, T]
    token_kl = KL_ESTIMATORS[algorithm.kl_estimator](old, ref) * mask  # [N, T]
    return reinforce_pp(rewards, token_kl, mask, algorithm.kl_coef)

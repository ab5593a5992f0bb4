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
from selfplay_gym.envs.mode import role_of
from selfplay_gym.envs.vector import Rollout
from selfplay_gym.types import Completion, Episode, Sample

KeepFn = Callable[[str, Episode], bool]
ExamplesFn = Callable[[Episode], Sequence[tuple[str, str, float]]]


def collect_samples(rollout: Rollout, roles: Collection[str], keep: KeepFn) -> list[Sample]:
    """Every completion of a trained role that carries tokens and passes the mode's filter."""
    samples = []
    for episode, completions in zip(rollout.episodes, rollout.completions, strict=True):
        for agent, completion in completions.items():
            if role_of(agent) in roles and completion.completion_ids and keep(agent, episode):
                samples.append(_sample(episode, completions, agent, agent, episode.rewards[agent],
                                       completion.logprobs))
    return samples


def collect_cross_role_samples(rollout: Rollout, roles: Collection[str], examples: ExamplesFn) -> list[Sample]:
    """The mode's cross-role examples (``Mode.cross_role_examples``) of a trained role: the
    writer's completion under the prompt of ``prompt_of``, in its group, with the given reward.
    No sampling log-probs exist for that pairing, so ``old_logprobs`` stays empty (ratio-free losses only)."""
    samples = []
    for episode, completions in zip(rollout.episodes, rollout.completions, strict=True):
        for writer, prompt_of, reward in examples(episode):
            written, prompted = completions.get(writer), completions.get(prompt_of)
            if role_of(prompt_of) in roles and prompted and written and written.completion_ids:
                samples.append(_sample(episode, completions, writer, prompt_of, reward, []))
    return samples


def _sample(episode: Episode, completions: dict[str, Completion], writer: str, prompt_of: str,
            reward: float, old_logprobs: list[float]) -> Sample:
    """``writer``'s completion as an answer to ``prompt_of``'s prompt, in ``prompt_of``'s group."""
    written = completions[writer]
    return Sample(
        role=role_of(prompt_of),
        agent=writer,
        episode_id=episode.episode_id,
        group_id=episode.group_ids[prompt_of],
        prompt_ids=completions[prompt_of].prompt_ids,
        completion_ids=written.completion_ids,
        old_logprobs=old_logprobs,
        reward=reward,
        finish_reason=written.finish_reason,
    )


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

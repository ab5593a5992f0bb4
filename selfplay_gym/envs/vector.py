"""N environments in lockstep, played by any Policy objects, one batched call per policy per phase.

LLM throughput comes from batching: at each tick the collector gathers every pending
observation of every env (a phase's agents never depend on each other's actions), groups
them by policy object, calls each policy once, and steps all envs. Rewards that look across
the batch (R-Zero's repetition penalty) are added after every episode has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from selfplay_gym.envs.env import SelfPlayReasoningEnv
from selfplay_gym.envs.mode import role_of
from selfplay_gym.types import Completion, Episode, Policy, Request


@dataclass
class Rollout:
    """A batch of finished episodes and, per episode, each agent's Completion (token ids etc.)."""

    episodes: list[Episode]
    completions: list[dict[str, Completion]] = field(default_factory=list)
    policy_calls: int = 0


class SelfPlayVectorEnv:
    """``num_envs`` copies of one env, rolled out together.

    >>> venv = SelfPlayVectorEnv.make("rzero", num_envs=8, num_solvers=4)
    >>> rollout = venv.rollout({"questioner": q, "solver": s, "judge": j}, seed=0)
    """

    def __init__(self, env_fns: Sequence[Callable[[], SelfPlayReasoningEnv]]):
        if not env_fns:
            raise ValueError("SelfPlayVectorEnv needs at least one env")
        self.envs = [fn() for fn in env_fns]
        names = {env.mode.name for env in self.envs}
        if len(names) != 1:
            raise ValueError(f"all envs of a vector env must share one mode, got {sorted(names)}")
        self.mode = self.envs[0].mode
        self.roles = self.mode.roles
        self._rollouts = 0

    @classmethod
    def make(cls, mode: str = "rzero", num_envs: int = 8, **env_kwargs: Any) -> SelfPlayVectorEnv:
        if num_envs < 1:
            raise ValueError(f"num_envs must be at least 1, got {num_envs}")
        return cls([lambda: SelfPlayReasoningEnv(mode, **env_kwargs) for _ in range(num_envs)])

    @property
    def num_envs(self) -> int:
        return len(self.envs)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs so a resumed run plays what the killed one would have: the
        rollout count (episode ids) and the state of every task source that keeps a cursor
        (a curriculum, DARC's document blocks), each source once."""
        return {"rollouts": self._rollouts, "tasks": [t.state_dict() for t in self._stateful_tasks()]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._rollouts = int(state.get("rollouts", 0))
        for task, saved in zip(self._stateful_tasks(), state.get("tasks", []), strict=False):
            task.load_state_dict(saved)

    def _stateful_tasks(self) -> list:
        tasks = {id(env.task): env.task for env in self.envs}
        return [t for t in tasks.values() if hasattr(t, "state_dict") and hasattr(t, "load_state_dict")]

    def rollout(self, policies: Mapping[str, Policy], seed: int | None = None) -> Rollout:
        """Play one episode in every env; returns them with batch rewards applied.

        ``policies`` maps each role to a Policy (one object may play several roles: it then
        gets one mixed-role call). ``seed`` seeds env i with ``seed + i``; None continues.
        """
        missing = [r for r in self.roles if r not in policies]
        if missing:
            raise ValueError(
                f"no policy for role(s) {missing}; pass policies for every role of mode "
                f"{self.mode.name!r}: {list(self.roles)} (scripted agents live in "
                "selfplay_gym.agents.scripted)"
            )
        tag = f"r{self._rollouts}"
        self._rollouts += 1
        for i, env in enumerate(self.envs):
            env.reset(seed=None if seed is None else seed + i, options={"episode_id": f"{tag}-e{i}"})
        completions: list[dict[str, Completion]] = [{} for _ in self.envs]
        calls = 0
        while True:
            batches = self._pending_requests(policies)
            if not batches:
                break
            for policy, items in batches.values():
                outputs = policy.generate([request for _, request in items])
                calls += 1
                if len(outputs) != len(items):
                    raise RuntimeError(
                        f"{type(policy).__name__}.generate returned {len(outputs)} completions "
                        f"for {len(items)} requests; it must return exactly one per request"
                    )
                for (env_index, request), output in zip(items, outputs, strict=True):
                    completions[env_index][request.agent] = _as_completion(output, policy)
            for env_index, env in enumerate(self.envs):
                for agent in env.phase_agents():
                    env.step(completions[env_index][agent].text)
        for env in self.envs:
            while env.agents:
                env.step(None)
        episodes = [env.episode for env in self.envs]
        apply_batch_rewards(episodes, self.mode.batch_rewards(episodes))
        return Rollout(episodes, completions, calls)

    def _pending_requests(self, policies: Mapping[str, Policy]) -> dict[int, tuple[Policy, list]]:
        batches: dict[int, tuple[Policy, list]] = {}
        for env_index, env in enumerate(self.envs):
            for agent in env.phase_agents():
                role = role_of(agent)
                request = Request(agent, role, env.observe(agent)["messages"], env.infos[agent])
                policy = policies[role]
                batches.setdefault(id(policy), (policy, []))[1].append((env_index, request))
        return batches


def _as_completion(output: Any, policy: Policy) -> Completion:
    if isinstance(output, Completion):
        return output
    if isinstance(output, str):
        return Completion(text=output)
    raise TypeError(
        f"{type(policy).__name__}.generate must return Completion objects (or str), "
        f"got {type(output).__name__}"
    )


def apply_batch_rewards(
    episodes: Sequence[Episode], terms: Sequence[Mapping[str, Mapping[str, float]]]
) -> None:
    """Add each batch-level term to the episode's rewards and record it in reward_terms."""
    for episode, per_agent in zip(episodes, terms, strict=True):
        for agent, named in per_agent.items():
            for name, value in named.items():
                episode.rewards[agent] = episode.rewards.get(agent, 0.0) + float(value)
                episode.reward_terms.setdefault(agent, {})[name] = float(value)

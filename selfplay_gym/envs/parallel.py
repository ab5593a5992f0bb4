"""The parallel view of a self-play episode: one ``step(actions)`` per phase.

PettingZoo's ``ParallelEnv`` has every live agent act at once; a self-play episode acts in
phases (R-Zero: the questioner, then the solvers, then the judge), and the agents of one phase
never see each other's actions. ``SelfPlayParallelEnv`` plays that episode with one parallel
step per phase, through the AEC env underneath (``env.aec``):

- every agent is live from ``reset`` until the episode ends, and then all terminate together;
- ``infos[agent]["acting"]`` says who acts in the coming step: the agents of the current
  phase. Their observations are their prompts, so a solver acts only once its observation
  holds the question. The other agents' observations are what the mode shows them now (an
  empty chat before they have anything to see), and their actions are ignored;
- rewards are 0.0 until the last step, which carries each agent's episode reward.

>>> env = parallel_env(mode="rzero", num_solvers=2)
>>> observations, infos = env.reset(seed=0)
>>> [agent for agent in env.agents if infos[agent]["acting"]]
['questioner_0']
>>> observations["solver_0"]
{'messages': ()}
"""

from __future__ import annotations

from typing import Any

from pettingzoo import ParallelEnv

from selfplay_gym.envs.env import SelfPlayReasoningEnv
from selfplay_gym.envs.mode import Mode
from selfplay_gym.types import Episode, Messages


class SelfPlayParallelEnv(ParallelEnv):
    """``SelfPlayReasoningEnv`` as a PettingZoo ``ParallelEnv``; takes the same arguments."""

    metadata = SelfPlayReasoningEnv.metadata

    def __init__(self, mode: str | Mode = "rzero", **kwargs: Any):
        self.aec = SelfPlayReasoningEnv(mode, **kwargs)
        self.possible_agents = list(self.aec.possible_agents)
        self.agents: list[str] = []
        self.render_mode = self.aec.render_mode
        self.state_space = self.aec.state_space

    def observation_space(self, agent: str):
        return self.aec.observation_space(agent)

    def action_space(self, agent: str):
        return self.aec.action_space(agent)

    @property
    def episode(self) -> Episode | None:
        """The episode record, as on the AEC env."""
        return self.aec.episode

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.aec.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._observations(), self._infos()

    def step(self, actions: dict[str, Any]):
        if self.aec.episode is None:
            raise RuntimeError("step() before reset(): call env.reset() first")
        if not self.agents:
            raise RuntimeError("step() after the episode ended: call env.reset() to start another")
        phase = self.aec.phase_agents()
        missing = [agent for agent in phase if agent not in actions]
        if missing:
            raise ValueError(
                f"step(actions) has no action for {missing}: every agent of the phase acts "
                f"(infos[agent]['acting'] says who); the others' actions are ignored"
            )
        for agent in phase:  # the AEC env steps them in this order; none sees another's action
            self.aec.step(actions[agent])
        done = self.aec.done
        rewards = {a: self.aec.episode.rewards[a] if done else 0.0 for a in self.agents}
        terminations = dict.fromkeys(self.agents, done)
        truncations = dict.fromkeys(self.agents, False)
        observations, infos = self._observations(), self._infos()
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | None:
        return self.aec.render()

    def state(self) -> str:
        """The episode record as JSON, as ``SelfPlayReasoningEnv.state()``."""
        return self.aec.state()

    def close(self) -> None:
        self.aec.close()

    def _observations(self) -> dict[str, dict[str, Messages]]:
        return {agent: self.aec.observe(agent) for agent in self.agents}

    def _infos(self) -> dict[str, dict[str, Any]]:
        acting = set(self.aec.phase_agents())
        return {a: {**self.aec.infos[a], "acting": a in acting} for a in self.agents}


def parallel_env(mode: str | Mode = "rzero", **kwargs: Any) -> SelfPlayParallelEnv:
    """``SelfPlayParallelEnv(mode, **kwargs)``: PettingZoo's ``parallel_env()`` factory."""
    return SelfPlayParallelEnv(mode, **kwargs)

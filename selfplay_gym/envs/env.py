"""SelfPlayReasoningEnv: one episode of a self-play method as a PettingZoo ``AECEnv``.

The env is a thin adapter: the Mode says who acts, what they see, what their text means and
what they earn; the env keeps PettingZoo's books (agent order, rewards, terminations, dead
steps) and the Episode record. A model's malformed output is data: it is parsed as invalid,
earns the mode's format penalty, and the episode goes on to its clean end. Misuse of the API
raises an error that names the fix.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Any

from gymnasium import logger
from gymnasium.utils import seeding
from pettingzoo import AECEnv

from selfplay_gym.envs.episode_log import format_episode
from selfplay_gym.envs.mode import Mode, Parsed, RewardFn, role_of
from selfplay_gym.envs.registry import make_mode
from selfplay_gym.envs.spaces import AnyText, message_space, observation
from selfplay_gym.types import Episode, Messages, Turn


class SelfPlayReasoningEnv(AECEnv):
    """A self-play reasoning episode: questioner, solvers and judge take turns in phases.

    Args:
        mode: a registered mode name (``selfplay_gym.modes()``) or a Mode instance.
        task: where questions come from (a TaskSource); the mode's default when None. A
            source with ``record_episode(episode)`` is handed every finished episode.
        rewards: per-role reward overrides, ``{"questioner": fn(episode, agent) -> float}``.
        render_mode: None, ``"ansi"`` (``render()`` returns the readable episode log) or
            ``"human"`` (``render()`` prints it, and every episode is printed as it ends).
        max_action_chars: longer actions are invalid (and stored cut to this length).
        **options: the mode's own options (its ``Config`` dataclass fields).
    """

    metadata = {"name": "selfplay_reasoning_v0", "render_modes": ["ansi", "human"], "is_parallelizable": False}
    # Not parallelizable by PettingZoo's aec_to_parallel (agents act in phases, not all at
    # once): selfplay_gym.parallel_env(mode) is the parallel view, one step per phase.

    def __init__(
        self,
        mode: str | Mode = "rzero",
        *,
        task: Any = None,
        rewards: Mapping[str, RewardFn] | None = None,
        render_mode: str | None = None,
        max_action_chars: int = 16_384,
        max_observation_chars: int = 1_000_000,
        **options: Any,
    ):
        super().__init__()
        self.mode = make_mode(mode, **options)
        self.task = task if task is not None else self.mode.default_task()
        if not callable(getattr(self.task, "sample", None)):
            raise TypeError(
                f"task must have a sample(rng) -> TaskItem method (e.g. ArithmeticTask()), "
                f"got {self.task!r}"
            )
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None, 'ansi' or 'human', got {render_mode!r}")
        if max_action_chars < 1:
            raise ValueError(f"max_action_chars must be positive, got {max_action_chars}")
        self.render_mode = render_mode
        self.max_action_chars = max_action_chars
        self.reward_fns = self._merge_rewards(rewards or {})
        self.possible_agents = list(self.mode.agents())
        self._action_spaces = {a: AnyText(max_action_chars) for a in self.possible_agents}
        self._observation_spaces = {
            a: message_space(max_observation_chars) for a in self.possible_agents
        }
        self.state_space = AnyText(sys.maxsize)
        """``state()`` is the episode record as JSON text, of any length."""
        self.np_random, self._seed = seeding.np_random(None)
        self.episode: Episode | None = None
        self._episodes_started = 0
        self._phase: tuple[str, ...] = ()
        self._pending: list[str] = []
        self._prompts: dict[str, Messages] = {}

    # --- PettingZoo API ------------------------------------------------------------------------
    def observation_space(self, agent: str):
        return self._observation_spaces[agent]

    def action_space(self, agent: str):
        return self._action_spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        if seed is not None:
            self.np_random, self._seed = seeding.np_random(seed)
        options = options or {}
        episode_id = str(options.get("episode_id", f"{self._seed}-{self._episodes_started}"))
        self._episodes_started += 1
        item = self.task.sample(self.np_random)
        self.episode = Episode(
            mode=self.mode.name, episode_id=episode_id, seed=seed, task=item.to_dict()
        )
        self.agents = list(self.possible_agents)
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self._start_phase(self.mode.next_phase(self.episode))
        self._update_infos()

    def observe(self, agent: str) -> dict[str, Messages]:
        if self.episode is None:
            raise RuntimeError("observe() before reset(): call env.reset() first")
        if agent in self._prompts:
            return observation(self._prompts[agent])
        return observation(self.mode.observe(agent, self.episode))

    def step(self, action: Any) -> None:
        if self.episode is None:
            raise RuntimeError("step() before reset(): call env.reset() first")
        if not self.agents:
            raise RuntimeError("step() after the episode ended: call env.reset() to start another")
        agent = self.agent_selection
        if self.terminations[agent] or self.truncations[agent]:
            self._was_dead_step(action)
            return
        self._clear_rewards()
        self._cumulative_rewards[agent] = 0.0
        turn = self._read_action(agent, action)
        self.episode.turns.append(turn)
        self.mode.record(turn, self.episode)
        self._pending.remove(agent)
        if self._pending:
            self.agent_selection = self._pending[0]
        else:
            self.mode.end_phase(self._phase, self.episode)
            self._start_phase(self.mode.next_phase(self.episode))
        self._update_infos()
        self._accumulate_rewards()

    def render(self) -> str | None:
        if self.render_mode is None:
            logger.warn("render() needs render_mode='ansi' or 'human'; nothing rendered.")
            return None
        text = format_episode(self.episode) if self.episode is not None else ""
        if self.render_mode == "human":
            print(text, end="\n\n" if text else "")
            return None
        return text

    def state(self) -> str:
        """The global state: the whole episode record as JSON (``Episode.from_json`` reads it).

        Unlike the agents' observations and infos it holds the task's reference answer: it is
        for centralised critics and logging, not for an agent's prompt.
        """
        if self.episode is None:
            raise RuntimeError("state() before reset(): call env.reset() first")
        return self.episode.to_json()

    def close(self) -> None:
        pass

    # --- what the vector env uses ------------------------------------------------------------------
    def phase_agents(self) -> tuple[str, ...]:
        """Agents of the current phase that have not acted yet, in the order they will act.

        Their observations do not depend on each other's actions, so they can be batched.
        """
        return tuple(self._pending)

    @property
    def done(self) -> bool:
        """True once the episode has ended (rewards are final), dead steps or not."""
        return self.episode is not None and not self._pending

    # --- internals ---------------------------------------------------------------------------
    def _merge_rewards(self, overrides: Mapping[str, RewardFn]) -> dict[str, RewardFn]:
        fns = dict(self.mode.reward_functions())
        for role, fn in overrides.items():
            if role not in self.mode.roles:
                raise ValueError(
                    f"rewards={{{role!r}: ...}}: mode {self.mode.name!r} has no role {role!r}; "
                    f"its roles are {list(self.mode.roles)}"
                )
            if not callable(fn):
                raise TypeError(f"rewards[{role!r}] must be callable(episode, agent) -> float")
            fns[role] = fn
        return fns

    def _start_phase(self, agents: tuple[str, ...]) -> None:
        unknown = [a for a in agents if a not in self.possible_agents]
        if unknown:
            raise RuntimeError(f"mode {self.mode.name!r} scheduled unknown agents {unknown}")
        self._phase = tuple(agents)
        self._pending = list(agents)
        self._prompts = {}
        for agent in agents:
            messages = self.mode.observe(agent, self.episode)
            self._prompts[agent] = messages
            self.episode.group_ids[agent] = self.mode.group_id(agent, self.episode, messages)
        if agents:
            self.agent_selection = agents[0]
        else:
            self._finish()

    def _read_action(self, agent: str, action: Any) -> Turn:
        role = role_of(agent)
        if not isinstance(action, str):
            parsed = Parsed(False, error=f"action must be a str, got {type(action).__name__}")
            text = ""
        elif len(action) > self.max_action_chars:
            parsed = Parsed(
                False,
                error=f"action of {len(action)} chars exceeds max_action_chars={self.max_action_chars}",
            )
            text = action[: self.max_action_chars]
        else:
            text = action
            try:
                parsed = self.mode.parse(role, action)
            except Exception as exc:  # a parser bug must not end a run; it is recorded, not hidden
                logger.warn(f"mode {self.mode.name!r} parser raised on a {role} action: {exc!r}")
                parsed = Parsed(False, error=f"parser error: {type(exc).__name__}: {exc}")
        return Turn(agent, role, text, dict(parsed.fields), parsed.valid, parsed.error)

    def _finish(self) -> None:
        episode = self.episode
        for agent in self.possible_agents:
            value = float(self.reward_fns[role_of(agent)](episode, agent))
            if not math.isfinite(value):
                raise ValueError(
                    f"the {role_of(agent)!r} reward function returned {value} for {agent}; "
                    "reward functions must return finite floats"
                )
            episode.rewards[agent] = value
            episode.reward_terms[agent] = {"env": value}
        record = getattr(self.task, "record_episode", None)
        if callable(record):  # a task source that grows from play (AZR's program buffer)
            record(episode)
        self.rewards = {a: episode.rewards[a] for a in self.agents}
        self.terminations = {a: True for a in self.agents}
        self._pending = []
        self._prompts = {}
        self.agent_selection = self.agents[0]
        if self.render_mode == "human":
            self.render()

    def _update_infos(self) -> None:
        episode = self.episode
        public_task = {k: v for k, v in episode.task.items() if k != "reference"}
        self.infos = {
            agent: {
                "role": role_of(agent),
                "group_id": episode.group_ids.get(agent),
                "episode_id": episode.episode_id,
                "task": public_task,
                **self.mode.info(agent, episode),
            }
            for agent in self.agents
        }

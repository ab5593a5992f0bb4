"""What a self-play method is: roles, phase order, prompts, parsers and reward functions.

A mode holds no PettingZoo bookkeeping (the env does that) and no model code. It answers
four questions about an Episode record: who acts next (``next_phase``), what they see
(``observe``), what their text means (``parse`` + ``record``), and what each agent earned
(``reward_functions``). Everything it derives goes into ``episode.fields``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from selfplay_gym.types import Episode, Messages, Turn

RewardFn = Callable[[Episode, str], float]
"""``reward(episode, agent) -> float``: pure, reads the finished episode only."""


@dataclass(frozen=True)
class Parsed:
    """A parser's reading of one action. Parsers return this; they never raise."""

    valid: bool
    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def role_of(agent: str) -> str:
    """``"solver_3" -> "solver"`` (PettingZoo's ``<name>_<number>`` convention)."""
    return agent.rsplit("_", 1)[0]


def agent_index(agent: str) -> int:
    """``"solver_3" -> 3``: which of a role's agents this is."""
    return int(agent.rsplit("_", 1)[1])


def prompt_hash(role: str, messages: Messages) -> str:
    """A short stable id for a prompt; samples of the same prompt form one GRPO group.

    A prompt can quote any text an agent wrote, lone surrogates ('\\ud800') included, which
    strict UTF-8 refuses; ``surrogatepass`` encodes them, and every other text (so every id
    computed before) hashes exactly as with strict UTF-8."""
    payload = json.dumps([role, [dict(m) for m in messages]], sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(payload.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]


@dataclass(frozen=True)
class Recipe:
    """How the published method trains, in names the build step resolves (so that envs import
    nothing from the layers above): which roles learn, on which schedule, with which loss.

    ``stages`` lists the roles each stage trains; stage k > 1 plays the env built with
    ``Mode.next_stage_options(episodes of stage k-1)`` (DARC's curriculum). ``schedule`` is a
    name of ``algorithms.schedules.schedule_from_name`` and ``algorithm`` a key of
    ``algorithms.losses.PRESETS``. ``adapters`` maps roles to LoRA adapters where the default
    (one adapter per role, or one "policy" adapter for a ``single_policy`` mode) is not it.
    """

    stages: tuple[tuple[str, ...], ...]
    schedule: str = "joint"
    algorithm: str = "grpo"
    adapters: dict[str, str] = field(default_factory=dict)


class _DefaultRecipe:
    """``Mode.recipe`` of a mode that sets none, computed from the class it is read on."""

    def __get__(self, instance: Any, owner: type[Mode]) -> Recipe:
        return Recipe(stages=(tuple(r for r in owner.roles if r not in owner.scripted_roles),))


class Mode(ABC):
    """Base class of a self-play method. Subclasses set the class attributes below.

    ``Config`` is a dataclass whose fields are the mode's options; the env builds it from the
    keyword arguments it receives and hands it to the constructor.
    """

    name: ClassVar[str]
    version: ClassVar[int] = 0
    roles: ClassVar[tuple[str, ...]]
    Config: ClassVar[type]
    scripted_roles: ClassVar[dict[str, str]] = {}
    """Roles the published method plays by rule, not by the LLM: role -> scripted agent name."""
    embedded_model: ClassVar[str] = "tiny"
    """The embedded model ``--model tiny`` means for this mode: "tiny" (warm-started on the
    arithmetic formats) or "tiny-code" (on the azr formats, ``agents.tiny_code``)."""
    single_policy: ClassVar[bool] = False
    """True when one policy (one adapter) plays every LLM role, as in AERO and ALIVE."""
    recipe: ClassVar[Recipe] = _DefaultRecipe()  # type: ignore[assignment]
    """The published training recipe: what ``selfplay-gym train --mode NAME`` runs by default.
    A mode that sets none trains every LLM role (those not in ``scripted_roles``) jointly with
    GRPO: ``Recipe(stages=(llm_roles,))``."""

    def __init__(self, config: Any = None):
        self.config = config if config is not None else self.Config()

    @classmethod
    def from_options(cls, **options: Any) -> Mode:
        """Build the mode from keyword options, with an error that lists the valid ones."""
        names = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(
                f"mode {cls.name!r} has no option(s) {unknown}; valid options are "
                f"{sorted(names)} (plus the env's own: task, rewards, render_mode, "
                f"max_action_chars)"
            )
        return cls(cls.Config(**options))

    def next_stage_options(self, episodes: Sequence[Episode]) -> dict[str, Any]:
        """Env options of the next stage, from this stage's episodes (multi-stage recipes)."""
        raise ValueError(f"mode {self.name!r} trains in one stage (its recipe has one); only a "
                         f"multi-stage recipe asks for the next stage's options")

    def default_task(self) -> Any:
        """The task source used when the env is given none: the embedded arithmetic domain."""
        from selfplay_gym.envs.tasks import ArithmeticTask

        return ArithmeticTask()

    def task_from(self, source: Any) -> Any:
        """How this mode plays a task source of the user's (``--task FILE``): where its default
        task wraps a source of its own (DARC's ``DocumentPrompts``: every document at each
        difficulty, n times), the same wrapper around ``source``; else ``source`` itself."""
        default = self.default_task()
        if dataclasses.is_dataclass(default) and any(
                f.name == "source" for f in dataclasses.fields(default)):
            return dataclasses.replace(default, source=source)
        return source

    # --- who plays -------------------------------------------------------------------------
    @abstractmethod
    def agents(self) -> tuple[str, ...]:
        """Every agent that can act in an episode, in turn order."""

    @abstractmethod
    def next_phase(self, episode: Episode) -> tuple[str, ...]:
        """Agents that act next; their observations must not depend on each other's actions,
        so a vector env can batch them into one call. An empty tuple ends the episode."""

    # --- what they see and say ---------------------------------------------------------------
    @abstractmethod
    def observe(self, agent: str, episode: Episode) -> Messages:
        """The chat the agent sees now; an empty tuple before it has anything to see."""

    @abstractmethod
    def parse(self, role: str, text: str) -> Parsed:
        """Read one action. Never raises: malformed text is ``Parsed(valid=False, error=...)``."""

    @abstractmethod
    def record(self, turn: Turn, episode: Episode) -> None:
        """Fold a parsed turn into ``episode.fields``."""

    def end_phase(self, agents: Sequence[str], episode: Episode) -> None:  # noqa: B027
        """Derive fields once a whole phase has acted (majority votes, entropies, ...)."""

    # --- what they earn ----------------------------------------------------------------------
    @abstractmethod
    def reward_functions(self) -> dict[str, RewardFn]:
        """One reward function per role; the env may override any of them per call."""

    def batch_rewards(self, episodes: Sequence[Episode]) -> list[dict[str, dict[str, float]]]:
        """Reward terms that need the whole batch, as ``[{agent: {term: value}}]`` per episode.

        Applied by the vector env after the episodes end; a single env never sees them.
        """
        return [{} for _ in episodes]

    def group_id(self, agent: str, episode: Episode, messages: Messages) -> str:
        """Which samples form one advantage group: by default, the same role and prompt."""
        return f"{role_of(agent)}:{prompt_hash(role_of(agent), messages)}"

    def keep_for_training(self, agent: str, episode: Episode) -> bool:
        """The mode's sample filter (R-Zero's consistency band, say). The trainer calls it."""
        return True

    def cross_role_examples(self, episode: Episode) -> list[tuple[str, str, float]]:
        """Completions to train under another agent's prompt, as ``(writer, prompt_of, reward)``:
        AERO trains the refiner's correction as an answer to the bare question. The writer's
        tokens were not sampled under that prompt, so the trainer uses these only under a loss
        with no importance ratio (``losses.RATIO_FREE_LOSSES``: KTO, NLL). Default: none."""
        return []

    def info(self, agent: str, episode: Episode) -> dict[str, Any]:
        """The structured fields published in ``infos[agent]``; by default all of them."""
        return dict(episode.fields)

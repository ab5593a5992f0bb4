"""ALIVE: one policy masks a passage, fills the blank, and reviews the fillings in words.

Source: "ALIVE: Awakening LLM Reasoning via Adversarial Learning and Instructive Verbal
Evaluation" (arXiv 2602.05472). **No code is public and only the abstract could be read: this
mode is a reconstruction.** The paper [paper] says one policy poses, solves and judges from
raw corpora with verbal feedback; a secondary survey names the three roles and the masked-span
task. All formats, prompts and rewards are ours. See shared/methods/alive*.md.

This module is the mode: config, turn order, observations, records and rewards per role. Its
pure parts live beside it and are re-exported here: the prompt texts in ``alive_prompts``, the
parsers in ``alive_parse``, the reward terms in ``alive_rewards``.

## Roles (one policy plays all [paper]: ``single_policy = True``)
- ``constructor_0``: hides one short span of a raw passage behind ``[MASK]``. The span is the
  verifiable ground truth: it comes from the corpus, not from a label.
- ``solver_0..solver_{n-1}``: n independent reconstructions of the span.
- ``reviewer_0..reviewer_{n-1}``: reviewer i critiques solver i and gives a verdict (one
  review per solution, so reviews are independent and batchable).
- ``reviser_0..reviser_{n-1}`` (``revise=True``): solver i's second turn after its review;
  gives the self-correction rate, a metric the paper reports [paper].

## Turn order and termination
constructor_0 -> solvers -> reviewers -> (revisers), each one batchable phase. An invalid mask
ends the episode after the constructor.

## Observation
Chat messages. Constructor: the passage (``task["document"]``). Solver: the masked passage.
Reviewer: masked passage, solver i's full text, hidden span. Reviser: solver i's chat plus the
review with the span redacted ("[HIDDEN]"), so a leaky critique cannot hand over the answer.
Solver and reviser ``infos`` hold no span, critique or document.

## Action
Constructor (``mask_format="span"``, the default): ``<answer>span</answer>`` (the last block);
valid iff the span is a whole word or number of the passage and 1 <= len(span) <=
``max_span_chars``; the env masks its first occurrence. ``mask_format="copy"``: the policy
writes the masked passage itself, ``<masked>passage with one [MASK]</masked><answer>span
</answer>`` (last block of each; tags, not JSON, since passages hold quotes and newlines),
valid iff exactly one ``[MASK]`` and the span put back gives the passage
(whitespace-normalised: nothing invented). Both pose the same task; "span" costs a few tokens
instead of a whole passage and cannot corrupt it, which is what a small model needs.
Solver, reviser: the last ``\\boxed{}``.
Reviewer: a non-empty critique and ``<verdict>correct|partially|wrong</verdict>`` (last tag,
any case; "partial", "incorrect" accepted).

## Rewards (reconstruction; p = the n solvers' pass rate by ``span_match``)
- Constructor: ``1 - p if p > 0 else 0``, adversarial after PretrainZero's min-max mask game
  (arXiv 2512.03442), with a 0-at-0% guard against unrecoverable masks; or SPICE-style
  ``4 p (1 - p)`` (``constructor_reward="variance"``). Invalid mask: -1.
- Solver: its review's verdict, correct 1 / partially 0.5 / wrong 0 (verbal review as the
  signal [paper], scale ours), or the span match when there is no verdict;
  ``solver_reward="match"``: the span match (1/0). No box: ``solver_format_penalty`` (0).
- Reviewer: 1 if its verdict agrees with the span match (correct iff match); 0.5 for
  "partially" on a non-match sharing a word or digit with the span; else 0. No verdict or
  no critique: -1. ``reviewer_reward="balanced"`` weighs it by ``class_balance_weight``.
- Reviser: 1 if the revised answer matches the span, else 0; no box: solver_format_penalty.

## Groups and training filter
Solvers, reviewers and revisers: one group per role and episode. Constructors: one group per
rollout (``constructor_group="batch"``) or per passage ("passage"). Samples other than the
constructor's are dropped for an invalid mask.

## Arguments
``AliveConfig``. n = ``num_solvers`` = 8 for CPU runs; the survey reports N = 16.

## Version history
- v0: initial reconstruction.
- v1: ``mask_format="span"`` is the default (the constructor names the span; "copy" stays an
  option), with its own constructor prompt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from selfplay_gym.envs.mode import Mode, Parsed, Recipe, RewardFn, role_of
from selfplay_gym.envs.modes.alive_parse import (
    HIDDEN,
    MASK,
    VERDICT_WORDS,
    parse_boxed,
    parse_mask,
    parse_review,
    parse_span,
    redact,
)
from selfplay_gym.envs.modes.alive_prompts import (
    CONSTRUCTOR_SYSTEM,
    REVIEWER_SYSTEM,
    REVISE_USER,
    SOLVER_SYSTEM,
    SPAN_CONSTRUCTOR_SYSTEM,
)
from selfplay_gym.envs.modes.alive_rewards import (
    VERDICT_SCORES,
    class_balance_weight,
    constructor_reward,
    reviewer_reward,
    shares_token,
    span_match,
)
from selfplay_gym.envs.tasks import WordProblemCorpus
from selfplay_gym.types import Episode, Messages, Turn

__all__ = [
    "CONSTRUCTOR_SYSTEM",
    "HIDDEN",
    "MASK",
    "MASK_FORMATS",
    "REVIEWER_SYSTEM",
    "REVISE_USER",
    "SLOTS",
    "SOLVER_SYSTEM",
    "SPAN_CONSTRUCTOR_SYSTEM",
    "VERDICT_SCORES",
    "VERDICT_WORDS",
    "AliveConfig",
    "AliveMode",
    "MaskFormat",
    "class_balance_weight",
    "constructor_reward",
    "parse_boxed",
    "parse_mask",
    "parse_review",
    "parse_span",
    "redact",
    "reviewer_reward",
    "shares_token",
    "span_match",
]

SLOTS = {
    "solver": (("answers", "answer"),),
    "reviewer": (("verdicts", "verdict"), ("critiques", "critique")),
    "reviser": (("revised_answers", "answer"),),
}
"""Where each role's parsed values go: ``fields[list name][agent index] = parsed[key]``."""


@dataclass
class AliveConfig:
    num_solvers: int = 8
    """n: solutions (and reviews) per mask; the survey of the paper reports N = 16."""
    revise: bool = False
    """Add the revisers: each solver's second turn after its review."""
    max_span_chars: int = 32
    """Longest span the constructor may hide."""
    mask_format: str = "span"
    """'span': the constructor names the span only, in ``<answer>``, and the env masks the
    span's first whole-word occurrence; 'copy': it writes the whole masked passage (the span
    put back must give the passage). Same task; copying costs a passage of tokens and a
    ~1M-parameter model never copies one verbatim."""
    solver_reward: str = "verdict"
    """'verdict': the reviewer's verdict; 'match': the span match."""
    reviewer_reward: str = "agreement"
    """'agreement': 1 if the verdict agrees with the match; 'balanced': that times
    ``class_balance_weight``, so matches and misses count equally."""
    constructor_reward: str = "adversarial"
    """'adversarial': 1 - p if p > 0 else 0; 'variance': 4 p (1 - p)."""
    constructor_group: str = "batch"
    """'batch': all constructors of a rollout share one baseline (a fresh passage per episode
    makes a per-passage group a singleton, and GRPO gives a singleton no advantage);
    'passage': one group per prompt, for M masks per passage when the task repeats passages."""
    constructor_format_penalty: float = -1.0
    solver_format_penalty: float = 0.0
    reviewer_format_penalty: float = -1.0

    def __post_init__(self) -> None:
        if self.num_solvers < 1:
            raise ValueError(f"num_solvers must be at least 1, got {self.num_solvers}")
        if self.max_span_chars < 1:
            raise ValueError(f"max_span_chars must be at least 1, got {self.max_span_chars}")
        for name, allowed in (("solver_reward", ("verdict", "match")),
                              ("reviewer_reward", ("agreement", "balanced")),
                              ("constructor_reward", ("adversarial", "variance")),
                              ("constructor_group", ("batch", "passage")),
                              ("mask_format", tuple(MASK_FORMATS))):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")


class MaskFormat(NamedTuple):
    """What ``AliveConfig.mask_format`` sets: the constructor's prompt and its reply's parser."""

    system: str
    parse: Callable[..., Parsed]


MASK_FORMATS = {"span": MaskFormat(SPAN_CONSTRUCTOR_SYSTEM, parse_span),
                "copy": MaskFormat(CONSTRUCTOR_SYSTEM, parse_mask)}


def _chat(system: str, user: str) -> Messages:
    return ({"role": "system", "content": system}, {"role": "user", "content": user})


def _index(agent: str) -> int:
    return int(agent.rsplit("_", 1)[1])


def _turn(episode: Episode, agent: str) -> Turn | None:
    return next((t for t in episode.turns if t.agent == agent), None)


class AliveMode(Mode):
    name = "alive"
    version = 1
    roles = ("constructor", "solver", "reviewer", "reviser")
    recipe = Recipe(stages=(("constructor", "solver", "reviewer"),), schedule="joint")
    """One policy learns all roles at once from the batch's rewards (paper: joint updates)."""
    Config = AliveConfig
    single_policy = True

    def __init__(self, config: AliveConfig | None = None):
        super().__init__(config)
        if not self.config.revise:  # so a rollout needs no reviser policy it never calls
            self.roles = AliveMode.roles[:3]

    def default_task(self) -> WordProblemCorpus:
        return WordProblemCorpus()

    def _many(self, role: str) -> tuple[str, ...]:
        return tuple(f"{role}_{i}" for i in range(self.config.num_solvers))

    def agents(self) -> tuple[str, ...]:
        extra = self._many("reviser") if self.config.revise else ()
        return ("constructor_0", *self._many("solver"), *self._many("reviewer"), *extra)

    def next_phase(self, episode: Episode) -> tuple[str, ...]:
        fields = episode.fields
        if "masked" not in fields:
            return ("constructor_0",)
        if fields["masked"] is None:
            return ()
        if "pass_rate" not in fields:
            return self._many("solver")
        if "reviewer_accuracy" not in fields:
            return self._many("reviewer")
        if self.config.revise and "self_correction_rate" not in fields:
            return self._many("reviser")
        return ()

    # --- prompts ---------------------------------------------------------------------------
    def observe(self, agent: str, episode: Episode) -> Messages:
        role, fields = role_of(agent), episode.fields
        if role == "constructor":
            system = MASK_FORMATS[self.config.mask_format].system
            return _chat(system, episode.task.get("document") or "(no passage)")
        masked = fields.get("masked")
        if not masked:
            return ()
        if role == "solver":
            return _chat(SOLVER_SYSTEM, masked)
        solver = _turn(episode, f"solver_{_index(agent)}")
        solution = (solver.text if solver else "") or "(empty)"
        if role == "reviewer":
            user = f"Passage: {masked}\n\nSolution:\n{solution}\n\nHidden span: {fields['span']}"
            return _chat(REVIEWER_SYSTEM, user)
        review = _turn(episode, f"reviewer_{_index(agent)}")
        if review is None:
            return ()
        critique = redact(review.text, fields["span"]) or "(no review)"
        return (*_chat(SOLVER_SYSTEM, masked), {"role": "assistant", "content": solution},
                {"role": "user", "content": REVISE_USER.format(critique=critique)})

    # --- parsing ---------------------------------------------------------------------------
    def parse(self, role: str, text: str) -> Parsed:
        if role == "constructor":  # syntax here; record() checks it against the passage
            return MASK_FORMATS[self.config.mask_format].parse(text, None, self.config.max_span_chars)
        return parse_review(text) if role == "reviewer" else parse_boxed(text)

    def record(self, turn: Turn, episode: Episode) -> None:
        fields = episode.fields
        if turn.role == "constructor":
            if turn.valid:  # the full check needs the passage, which parse() does not see
                passage = episode.task.get("document") or ""
                full = MASK_FORMATS[self.config.mask_format].parse(turn.text, passage, self.config.max_span_chars)
                turn.valid, turn.error, turn.parsed = full.valid, full.error, dict(full.fields)
            fields["mask_valid"] = turn.valid
            fields["masked"] = turn.parsed["masked"] if turn.valid else None
            fields["span"] = turn.parsed["span"] if turn.valid else None
            return
        for name, key in SLOTS[turn.role]:
            slots = fields.setdefault(name, [None] * self.config.num_solvers)
            slots[_index(turn.agent)] = turn.parsed.get(key)

    def end_phase(self, agents, episode: Episode) -> None:
        fields, role = episode.fields, role_of(agents[0]) if agents else ""
        span = fields.get("span")
        if role == "solver":
            fields["correct"] = [span_match(a, span) for a in fields["answers"]]
            fields["pass_rate"] = sum(fields["correct"]) / len(fields["correct"])
        elif role == "reviewer":
            expected = ["correct" if c else "wrong" for c in fields["correct"]]
            agree = [v == e for v, e in zip(fields["verdicts"], expected, strict=True)]
            fields["reviewer_accuracy"] = sum(agree) / len(agree)
            fields["critique_leaks"] = sum(redact(c, span) != c for c in fields["critiques"] if c)
        elif role == "reviser":
            fields["revised_correct"] = [span_match(a, span) for a in fields["revised_answers"]]
            pairs = zip(fields["correct"], fields["revised_correct"], strict=True)
            fixed = [after for before, after in pairs if not before]
            fields["wrong_first"], fields["fixed"] = len(fixed), sum(fixed)
            fields["self_correction_rate"] = sum(fixed) / len(fixed) if fixed else None

    # --- rewards ---------------------------------------------------------------------------
    def reward_functions(self) -> dict[str, RewardFn]:
        return {role: getattr(self, f"reward_{role}") for role in AliveMode.roles}

    def reward_constructor(self, episode: Episode, agent: str) -> float:
        if episode.fields.get("masked") is None:
            return self.config.constructor_format_penalty
        return constructor_reward(episode.fields["pass_rate"], self.config.constructor_reward)

    def reward_solver(self, episode: Episode, agent: str) -> float:
        turn, fields, i = _turn(episode, agent), episode.fields, _index(agent)
        if turn is None or "correct" not in fields:
            return 0.0
        if not turn.valid:
            return self.config.solver_format_penalty
        verdict = fields.get("verdicts", [None] * self.config.num_solvers)[i]
        if self.config.solver_reward == "verdict" and verdict is not None:
            return VERDICT_SCORES[verdict]
        return 1.0 if fields["correct"][i] else 0.0

    def reward_reviewer(self, episode: Episode, agent: str) -> float:
        turn, fields, i = _turn(episode, agent), episode.fields, _index(agent)
        if turn is None:
            return 0.0
        if not turn.valid:
            return self.config.reviewer_format_penalty
        overlap = shares_token(fields["answers"][i], fields["span"])
        reward = reviewer_reward(fields["verdicts"][i], fields["correct"][i], overlap)
        if self.config.reviewer_reward == "balanced":
            reward *= class_balance_weight(fields["correct"][i], sum(fields["correct"]), len(fields["correct"]))
        return reward

    def reward_reviser(self, episode: Episode, agent: str) -> float:
        turn = _turn(episode, agent)
        if turn is None or "revised_correct" not in episode.fields:
            return 0.0
        if not turn.valid:
            return self.config.solver_format_penalty
        return 1.0 if episode.fields["revised_correct"][_index(agent)] else 0.0

    # --- grouping, filtering, infos --------------------------------------------------------------
    def group_id(self, agent: str, episode: Episode, messages: Messages) -> str:
        role = role_of(agent)
        if role != "constructor":
            return f"{role}:{episode.episode_id}"
        if self.config.constructor_group == "batch":
            return "constructor:batch"
        return super().group_id(agent, episode, messages)

    def keep_for_training(self, agent: str, episode: Episode) -> bool:
        return role_of(agent) == "constructor" or episode.fields.get("masked") is not None

    def info(self, agent: str, episode: Episode) -> dict:
        """Solvers and revisers get no span: not in fields, nor as the task's raw document
        (this "task" entry overrides the env's, which is the whole passage)."""
        fields = dict(episode.fields)
        if role_of(agent) in ("solver", "reviser"):
            fields.pop("span", None)
            fields.pop("critiques", None)
            task = {k: v for k, v in episode.task.items() if k not in ("document", "reference")}
            fields["task"] = task
        return fields

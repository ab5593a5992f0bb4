"""AERO: one model asks, answers, judges and corrects itself, and learns where it disagrees.

Source: "AERO: Autonomous Evolutionary Reasoning Optimization via Endogenous Dual-Loop
Feedback" (arXiv 2602.03084) and its code (mira-ai-lab/AERO: synth/inner_loop.py,
answer_analyzer.py, answerer.py). Defaults follow the code (entropy over the *total* sample
count, exact groups merged greedily, ICC on the top-2 clusters), except ``equivalence``:
"math_verify" is a cheap deterministic stand-in for the code's LLM judge, kept as "llm".
AERO trains with KTO; the rewards are the policy-gradient reading of its labels, which are
also stored as ``fields["kto_labels"]`` (see ``aero_kto_labels``); under KTO the trainer also
takes their cross-role example (``cross_role_examples``). One policy plays all roles.

## Roles
- ``generator_0``: writes one new problem as JSON (``question`` + ``meta``).
- ``solver_0 .. solver_{n-1}``: n independent solutions (one group), answers in ``\\boxed{}``.
- ``judge_0``: with ``equivalence="llm"`` only, says which distinct answers are the same.
- ``refiner_0``, ``refiner_1``: Independent Counterfactual Correction (ICC): each gets one
  representative solution of the top-2 clusters, assumes it is wrong and re-solves.

## Turn order
generator_0 -> solvers (one phase) -> judge_0 ("llm" and >= 2 distinct answers only) ->
refiner_0, refiner_1 (one phase; zone ZPD with >= 2 clusters only). An invalid question
ends the episode after the generator.

## Observation
Chat messages. Generator: a "distinguished professor" problem-setter prompt for the task's
domain. Solver: a gold-standard solution template + the question. Judge: the question and the
numbered distinct answers. Refiner: a reviewer prompt, the question, the candidate solution.

## Action
Text. Generator: ``{"question": str, "meta": {...}}`` (fences and prose tolerated; the last
object with a "question" key counts). Judge: ``{"same": [[1, 3], [2]]}`` over the numbered
answers, numbers left out stay alone. Solver, refiner: the last ``\\boxed{}`` is the answer.

## Rewards
Answers are grouped by exact string (unparsable dropped) and merged greedily by equivalence;
H̄ is the normalised entropy of the cluster shares (``normalized_entropy``): < 0.3 mastery,
0.3-0.7 ZPD, > 0.7 or no parsable answer chaos. ICC converges when both corrected answers
parse and agree; that answer is the pseudo-label a*.
- Generator: +1 in the ZPD, -1 otherwise ("binary"), or ``zpd_bump_reward`` ("bump");
  ``format_penalty`` (-1) for an invalid question.
- Solver: ``label_reward``: 0 without a*, else +1 if its answer is equivalent to a*, else -1.
- Refiner: ``label_reward`` on its corrected answer. Convergence makes both refiners agree
  with a*, so a converged pair is always +1/+1: no contrast inside the pair (AERO has no
  undesirable refiner data either; its examples are the corrections of wrong candidates).
- Judge: 0; ``format_penalty`` for an unusable merge under "llm".

## Training filter
Solver and refiner samples are kept only for converged episodes (AERO makes none otherwise);
with ``examples="aero"`` only those AERO makes an example of (``aero_kto_labels``).

## Version history
- v0: initial release.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selfplay_gym.envs.graders import (
    Grader,
    GraderBudget,
    exact_grader,
    get_grader,
    space_stripped,
)
from selfplay_gym.envs.mode import Mode, Parsed, Recipe, RewardFn, role_of
from selfplay_gym.envs.modes.aero_prompts import (
    GENERATOR_SYSTEM,
    GENERATOR_USER,
    JUDGE_SYSTEM,
    JUDGE_USER,
    REFINER_SYSTEM,
    REFINER_USER,
    SOLVER_SYSTEM,
)
from selfplay_gym.envs.modes.aero_rules import (
    CORRECTED_MAX_CLUSTERS,
    aero_kto_labels,
    entropy_zone,
    exact_groups,
    label_reward,
    merge_groups,
    normalized_entropy,
    parse_answer,
    parse_merge,
    parse_question,
    zpd_bump_reward,
    zpd_reward,
)
from selfplay_gym.types import Episode, Messages, Turn

__all__ = ["CORRECTED_MAX_CLUSTERS", "AeroConfig", "AeroMode", "aero_kto_labels", "entropy_zone",
           "exact_groups", "label_reward", "merge_groups", "normalized_entropy", "parse_answer",
           "parse_merge", "parse_question", "zpd_bump_reward", "zpd_reward"]


@dataclass
class AeroConfig:
    num_solvers: int = 16
    """n: solver samples per question (AERO's sampling_n)."""
    mastery_threshold: float = 0.3
    """H̄ below this is mastery (too easy)."""
    chaos_threshold: float = 0.7
    """H̄ above this is chaos (too hard); in between is the ZPD."""
    entropy_normalization: str = "original"
    """'original': H / log2(n total); 'corrected': H / log2(min(#parsed, 4)), capped at 1."""
    equivalence: str = "math_verify"
    """How answers are merged: 'exact' (space-insensitive equality), 'math_verify', 'llm'."""
    space_shortcut: bool = True
    """Answers equal once spaces are removed are the same before any other check (code:
    ``56`` and ``5 6`` never reach the judge); False: the grader alone decides."""
    unclosed_box: str = "previous"
    """A last ``\\boxed{`` left unclosed: 'previous' takes the last closed box (code), 'none'
    makes the answer unparsable."""
    grader_budget_s: float = 10.0
    """Seconds of answer comparisons for one episode's clusters, then exact match only,
    counted in ``fields["grader_over_budget"]`` (``graders.GraderBudget``)."""
    raw_question_fallback: bool = False
    """True: an output that is not one JSON object with a string "question" is itself the
    question (code). False: the JSON is found inside fences or prose, else the output is
    invalid and earns ``format_penalty``."""
    generator_reward: str = "binary"
    """'binary': +1 ZPD / -1 otherwise; 'bump': cosine bump peaking mid-ZPD."""
    format_penalty: float = -1.0
    """For an invalid question (generator) or an unusable merge (judge)."""
    examples: str = "all"
    """Which solver/refiner samples of a converged episode train. 'all': every solver and both
    refiners (their rewards' signs). 'aero': AERO's own set, the top-2 representatives whose
    answer is not a* and the refiners whose candidate was wrong; with the cross-role example
    that KTO adds, exactly AERO's KTO data. For KTO: GRPO would see groups of one or two."""

    def __post_init__(self) -> None:
        if self.num_solvers < 2:
            raise ValueError(f"num_solvers must be at least 2, got {self.num_solvers}")
        if not 0.0 <= self.mastery_threshold < self.chaos_threshold <= 1.0:
            raise ValueError(
                "need 0 <= mastery_threshold < chaos_threshold <= 1, got "
                f"{self.mastery_threshold}, {self.chaos_threshold}"
            )
        for name, allowed in (
            ("entropy_normalization", ("original", "corrected")),
            ("equivalence", ("exact", "math_verify", "llm")),
            ("unclosed_box", ("previous", "none")),
            ("generator_reward", ("binary", "bump")),
            ("examples", ("all", "aero")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")


# --- parsers (never raise) ---------------------------------------------------------------------

def _chat(system: str, user: str) -> Messages:
    return ({"role": "system", "content": system}, {"role": "user", "content": user})


def _index(agent: str) -> int:
    return int(agent.rsplit("_", 1)[1])


class AeroMode(Mode):
    name = "aero"
    version = 0
    roles = ("generator", "solver", "judge", "refiner")
    recipe = Recipe(stages=(("generator", "solver", "refiner"),), schedule="staggered",
                    algorithm="kto")
    """AERO as published: KTO on its labels, Solver/Refiner data one round behind the
    Generator's plus a replay pool (``algorithms.replay.StaggeredReplay``). GRPO on the rewards
    is the alternative: ``--algorithm grpo``."""
    Config = AeroConfig
    single_policy = True

    def solvers(self) -> tuple[str, ...]:
        return tuple(f"solver_{i}" for i in range(self.config.num_solvers))

    def agents(self) -> tuple[str, ...]:
        return ("generator_0", *self.solvers(), "judge_0", "refiner_0", "refiner_1")

    def next_phase(self, episode: Episode) -> tuple[str, ...]:
        fields = episode.fields
        if "question" not in fields:
            return ("generator_0",)
        if fields["question"] is None:
            return ()
        if "groups" not in fields:
            return self.solvers()
        if "zone" not in fields:
            return ("judge_0",)
        if "refiner_candidates" in fields and "corrections" not in fields:
            return ("refiner_0", "refiner_1")
        return ()

    # --- prompts ---------------------------------------------------------------------------
    def observe(self, agent: str, episode: Episode) -> Messages:
        role, fields = role_of(agent), episode.fields
        question = fields.get("question")
        if role == "generator":
            domain = episode.task.get("domain") or "mathematics"
            return _chat(GENERATOR_SYSTEM.format(domain=domain), GENERATOR_USER)
        if not question:
            return ()
        if role == "solver":
            return _chat(SOLVER_SYSTEM, question)
        if role == "judge" and "groups" in fields and self.config.equivalence == "llm":
            keys = [fields["answers"][g[0]] for g in fields["groups"]]
            listed = "\n".join(f"{i + 1}. {key}" for i, key in enumerate(keys))
            return _chat(JUDGE_SYSTEM, JUDGE_USER.format(question=question, answers=listed))
        if role == "refiner" and "refiner_candidates" in fields:
            solver = f"solver_{fields['refiner_candidates'][_index(agent)]}"
            candidate = next(t.text for t in episode.turns if t.agent == solver)
            user = REFINER_USER.format(question=question, candidate=candidate)
            return _chat(REFINER_SYSTEM, user)
        return ()

    # --- parsing and derived fields ------------------------------------------------------------
    def parse(self, role: str, text: str) -> Parsed:
        if role == "generator":
            return parse_question(text, self.config.raw_question_fallback)
        return parse_merge(text) if role == "judge" else parse_answer(text, self.config.unclosed_box)

    def record(self, turn: Turn, episode: Episode) -> None:
        fields = episode.fields
        if turn.role == "generator":
            fields["question"] = turn.parsed["question"] if turn.valid else None
            fields["meta"] = turn.parsed.get("meta", {})
            if not turn.valid:
                fields["kto_labels"] = aero_kto_labels(fields)
        elif turn.role == "solver":
            answers = fields.setdefault("answers", [None] * self.config.num_solvers)
            answers[_index(turn.agent)] = turn.parsed.get("answer")
        elif turn.role == "judge":
            fields["judge_same"] = turn.parsed.get("same")
        else:
            corrections = fields.setdefault("corrections", [None, None])
            corrections[_index(turn.agent)] = turn.parsed.get("answer")

    @property
    def grader(self) -> Grader:
        """The one answer comparison outside the judge's turn (``llm`` uses math_verify there):
        clusters, ICC convergence and the candidates' check against a*."""
        grader = get_grader("exact" if self.config.equivalence == "exact" else "math_verify")
        return space_stripped(grader) if self.config.space_shortcut else grader

    def same(self, a: str, b: str) -> bool:
        return self.grader(a, b)

    def end_phase(self, agents: Sequence[str], episode: Episode) -> None:
        fields, role = episode.fields, role_of(agents[0]) if agents else ""
        if role == "solver":
            groups = exact_groups(fields["answers"])
            if self.config.equivalence == "llm" and self.config.space_shortcut:
                keys = [fields["answers"][g[0]] for g in groups]
                groups = merge_groups(groups, lambda g, f: exact_grader(keys[g], keys[f]))
            fields["groups"] = groups
            if self.config.equivalence != "llm" or len(groups) < 2:
                keys, grader = [fields["answers"][g[0]] for g in groups], GraderBudget(
                    self.grader, self.config.grader_budget_s)
                clusters = merge_groups(groups, lambda g, f: grader(keys[g], keys[f]))
                fields["grader_over_budget"] = grader.over_budget
                self._position(fields, clusters)
        elif role == "judge":
            self._position(fields, self._judge_clusters(fields))
        elif role == "refiner":
            self._correct(fields)

    def cross_role_examples(self, episode: Episode) -> list[tuple[str, str, float]]:
        """AERO's desirable solver example: refiner_0's correction as the answer to the bare
        question (solver_0's prompt; every solver has the same one), once ICC converged."""
        labels = episode.fields.get("kto_labels", [])
        return [(lab["agent"], f"{lab['role']}_0", 1.0 if lab["desirable"] else -1.0)
                for lab in labels if lab["role"] != role_of(lab["agent"])]

    def _judge_clusters(self, fields: dict[str, Any]) -> list[list[int]]:
        """Clusters from the judge's blocks; an unusable answer falls back to exact groups."""
        groups, blocks = fields["groups"], fields.get("judge_same")
        numbers = [n for block in blocks or [] for n in block]
        usable = all(1 <= n <= len(groups) for n in numbers) and len(set(numbers)) == len(numbers)
        fields["judge_valid"] = blocks is not None and usable
        block_of = list(range(len(groups)))
        if fields["judge_valid"]:
            for block in filter(None, blocks):
                for n in block:
                    block_of[n - 1] = block[0] - 1
        return merge_groups(groups, lambda g, f: block_of[g] == block_of[f])

    def _position(self, fields: dict[str, Any], clusters: list[list[int]]) -> None:
        cfg = self.config
        fields["clusters"] = clusters
        fields["cluster_answers"] = [fields["answers"][c[0]] for c in clusters]
        sizes = [len(c) for c in clusters]
        fields["entropy"] = normalized_entropy(sizes, cfg.num_solvers, cfg.entropy_normalization)
        fields["zone"] = entropy_zone(fields["entropy"], cfg.mastery_threshold, cfg.chaos_threshold)
        fields["converged"], fields["pseudo_label"] = False, None
        if fields["zone"] == "ZPD" and len(clusters) >= 2:
            fields["refiner_candidates"] = [clusters[0][0], clusters[1][0]]
        fields["kto_labels"] = aero_kto_labels(fields)

    def _correct(self, fields: dict[str, Any]) -> None:
        """ICC's verdict: converged iff both corrections parse and agree; a* = the first."""
        first, second = fields["corrections"]
        fields["converged"] = bool(first and second and self.same(second, first))
        if fields["converged"]:
            fields["pseudo_label"] = first
            correct = [self.same(answer, first) for answer in fields["cluster_answers"]]
            fields["candidate_correct"] = correct[:2]
            fields["refiner_correct"] = [self.same(answer, first) for answer in (first, second)]
            fields["solver_correct"] = [False] * self.config.num_solvers
            for cluster, ok in zip(fields["clusters"], correct, strict=True):
                for i in cluster:
                    fields["solver_correct"][i] = ok
        fields["kto_labels"] = aero_kto_labels(fields)

    # --- rewards ---------------------------------------------------------------------------
    def reward_functions(self) -> dict[str, RewardFn]:
        return {
            "generator": self.generator_reward,
            "solver": self.solver_reward,
            "judge": self.judge_reward,
            "refiner": self.refiner_reward,
        }

    def generator_reward(self, episode: Episode, agent: str) -> float:
        fields, cfg = episode.fields, self.config
        if fields.get("question") is None:
            return cfg.format_penalty
        if cfg.generator_reward == "bump":
            return zpd_bump_reward(fields["entropy"], cfg.mastery_threshold, cfg.chaos_threshold)
        return zpd_reward(fields["zone"])

    def solver_reward(self, episode: Episode, agent: str) -> float:
        return self._label(episode, agent, "solver_correct")

    def refiner_reward(self, episode: Episode, agent: str) -> float:
        return self._label(episode, agent, "refiner_correct")

    def _label(self, episode: Episode, agent: str, key: str) -> float:
        converged = bool(episode.fields.get("converged"))
        return label_reward(converged, converged and episode.fields[key][_index(agent)])

    def judge_reward(self, episode: Episode, agent: str) -> float:
        if self.config.equivalence != "llm" or "judge_valid" not in episode.fields:
            return 0.0
        return 0.0 if episode.fields["judge_valid"] else self.config.format_penalty

    # --- grouping and filtering ----------------------------------------------------------------
    def group_id(self, agent: str, episode: Episode, messages: Messages) -> str:
        role = role_of(agent)
        if role in ("solver", "refiner"):
            return f"{role}:{episode.episode_id}"
        return super().group_id(agent, episode, messages)

    def keep_for_training(self, agent: str, episode: Episode) -> bool:
        role = role_of(agent)
        if role not in ("solver", "refiner"):
            return True
        if self.config.examples == "aero":
            labels = episode.fields.get("kto_labels", [])
            return any(lab["agent"] == agent and lab["role"] == role for lab in labels)
        return bool(episode.fields.get("converged"))

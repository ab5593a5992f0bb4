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

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from selfplay_gym.envs.mode import Mode, Parsed, Recipe, RewardFn, role_of
from selfplay_gym.envs.verify import equivalent, extract_answer
from selfplay_gym.types import Episode, Messages, Turn

GENERATOR_SYSTEM = (
    "You are a distinguished professor and an expert designer of competition problems in "
    "{domain}. Write ONE new problem of medium-to-hard difficulty that needs several steps of "
    "reasoning and has a single, clean, checkable final answer (an integer, a simple fraction "
    "or a short exact expression). Vary the topic from one problem to the next.\n"
    "Output strict JSON only, with no Markdown fences and no text outside the object:\n"
    '{{"question": "the complete problem statement", "meta": {{"knowledge_points": ["..."], '
    '"domain": "...", "background": "one or two sentences of context"}}}}'
)
GENERATOR_USER = "Write the problem now."
SOLVER_SYSTEM = (
    "You are a senior research fellow writing a gold-standard solution. Follow this structure:\n"
    "1. Analysis: what is asked and which ideas apply.\n2. Symbols: the given quantities and "
    "the unknowns.\n3. Derivation: the reasoning step by step, symbolically before "
    "numerically.\n4. Computation: careful arithmetic.\n5. Final answer: state it once as "
    "\\boxed{answer}."
)
JUDGE_SYSTEM = (
    "You check whether final answers to one problem state the same value. Consider "
    "simplification, equivalent forms (0.5 = 1/2), scientific notation and units."
)
JUDGE_USER = (
    "Problem:\n{question}\n\nAnswers:\n{answers}\n\nGroup the numbers of the answers that are "
    'equivalent. Reply with strict JSON only, for example {{"same": [[1, 3], [2]]}}: each inner '
    "list holds answers with the same value; list every number once."
)
REFINER_SYSTEM = (
    "You are a rigorous reviewer. The candidate solution below is suspected to be WRONG: assume "
    "it contains an error. Find the flawed step and say briefly why it is wrong, then re-solve "
    "the problem from first principles without trusting the candidate's conclusion. End with "
    "the corrected final answer as \\boxed{answer}."
)
REFINER_USER = (
    "### Problem\n{question}\n\n### Suspected Incorrect Solution\n{candidate}\n\n"
    "### Your Correction\n"
)
CORRECTED_MAX_CLUSTERS = 4
"""``"corrected"`` measures H against the spread of at most 4 equally likely answers."""


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
            ("generator_reward", ("binary", "bump")),
            ("examples", ("all", "aero")),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")


# --- parsers (never raise) ---------------------------------------------------------------------
def _json_objects(text: str, key: str) -> list[dict[str, Any]]:
    """Top-level JSON objects in ``text`` (fences and prose around them ignored) holding ``key``."""
    decoder, found, pos = json.JSONDecoder(), [], text.find("{")
    while pos >= 0:
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            pos = text.find("{", pos + 1)
            continue
        if isinstance(value, dict) and key in value:
            found.append(value)
        pos = text.find("{", end)
    return found


def parse_question(text: str) -> Parsed:
    """The generator's JSON: the last object with a non-empty string ``question``."""
    objects = _json_objects(text, "question")
    if not objects:
        return Parsed(False, error='no JSON object with a "question" key')
    question, meta = objects[-1]["question"], objects[-1].get("meta")
    if not isinstance(question, str) or not question.strip():
        return Parsed(False, error='"question" must be a non-empty string')
    meta = meta if isinstance(meta, dict) else {}
    return Parsed(True, {"question": question.strip(), "meta": meta})


def _number(item: Any) -> int | None:
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    return int(item) if isinstance(item, str) and item.strip().isdigit() else None


def parse_merge(text: str) -> Parsed:
    """The judge's ``{"same": [[1, 3], [2]]}``; a bare number is a block of one."""
    objects = _json_objects(text, "same")
    if not objects or not isinstance(objects[-1]["same"], list):
        return Parsed(False, error='no JSON object with a "same" list')
    blocks = []
    for block in objects[-1]["same"]:
        items = block if isinstance(block, list) else [block]
        numbers = [_number(item) for item in items]
        if None in numbers:
            return Parsed(False, error=f'"same" must hold lists of answer numbers, got {block!r}')
        blocks.append(numbers)
    return Parsed(True, {"same": blocks})


def parse_answer(text: str) -> Parsed:
    answer = extract_answer(text)
    return Parsed(answer is not None, {"answer": answer}, None if answer else "no \\boxed{} answer")


# --- clustering and positioning (pure) ---------------------------------------------------------
def exact_groups(answers: Sequence[str | None]) -> list[list[int]]:
    """Indices of identical answers, largest group first (ties: first appearance); None dropped."""
    groups: dict[str, list[int]] = {}
    for index, answer in enumerate(answers):
        if answer:
            groups.setdefault(answer, []).append(index)
    return sorted(groups.values(), key=len, reverse=True)


def merge_groups(groups: Sequence[list[int]], same: Callable[[int, int], bool]) -> list[list[int]]:
    """AERO's greedy merge: each group (in order) joins the first cluster whose founding group it
    matches, ``same(group, founder)`` over group positions. A cluster lists its founding group
    first, so ``cluster[0]`` is the representative; clusters come largest first."""
    clusters: list[list[int]] = []
    founders: list[int] = []
    for g, group in enumerate(groups):
        k = next((k for k, f in enumerate(founders) if same(g, f)), None)
        if k is None:
            clusters.append(list(group))
            founders.append(g)
        else:
            clusters[k].extend(group)
    return sorted(clusters, key=len, reverse=True)


def normalized_entropy(
    sizes: Sequence[int], num_samples: int, normalization: str = "original"
) -> float | None:
    """H̄ of the answer clusters; None when no answer parsed.

    p_k = |C_k| / m (m = parsed answers), H = -sum p_k log2 p_k.
    ``"original"`` (AERO's code): H̄ = H / log2(n), n = all samples, parsed or not. With n = 16
    a two-way split has H <= 1 bit, so H̄ <= 0.25: every bimodal question is "mastery" and the
    ZPD needs >= 3 clusters; the zone of one distribution also shifts with n.
    ``"corrected"``: H̄ = min(1, H / log2(min(m, 4))). The reference is the spread of four equally
    likely answers, the n at which AERO's own normalisation puts a 50/50 split at the ZPD centre
    (H̄ = 0.5), made independent of n; with fewer than four parsed answers the most spread-out
    distribution they allow is the reference, so H̄ stays in [0, 1]. 8/8 -> 0.5 (ZPD),
    12/4 -> 0.41, 8/4/4 -> 0.75 (chaos), 4x4 and all-distinct -> 1.
    """
    parsed = sum(sizes)
    if parsed == 0:
        return None
    bits = max(0.0, -sum(s / parsed * math.log2(s / parsed) for s in sizes if s))
    scale = num_samples if normalization == "original" else min(parsed, CORRECTED_MAX_CLUSTERS)
    return 0.0 if scale <= 1 else min(1.0, bits / math.log2(scale))


def entropy_zone(entropy: float | None, mastery: float = 0.3, chaos: float = 0.7) -> str:
    """AERO's zones: H̄ < mastery -> "mastery", <= chaos -> "ZPD", above or None -> "chaos"."""
    if entropy is None or entropy > chaos:
        return "chaos"
    return "mastery" if entropy < mastery else "ZPD"


# --- rewards (pure) ----------------------------------------------------------------------------
def zpd_reward(zone: str) -> float:
    """AERO's generator label as a reward: +1 for a ZPD question, -1 otherwise (aero.md)."""
    return 1.0 if zone == "ZPD" else -1.0


def zpd_bump_reward(entropy: float | None, mastery: float = 0.3, chaos: float = 0.7) -> float:
    """A smooth generator reward: cos(pi d / 2) with d = |H̄ - c| / w, c and w the ZPD's centre and
    half-width; -1 for d >= 2 or no parsable answer. +1 at the centre, 0 at the ZPD edges (so its
    sign agrees with ``zpd_reward``), -1 a half-width outside; continuous with a continuous slope.
    """
    if entropy is None:
        return -1.0
    d = abs(entropy - (mastery + chaos) / 2) / ((chaos - mastery) / 2)
    return math.cos(math.pi * d / 2) if d < 2 else -1.0


def label_reward(converged: bool, correct: bool) -> float:
    """AERO's solver and refiner labels as a reward (aero.md, "Env sketch"): 0 when ICC did not
    converge (AERO makes no data), else +1 for an answer equivalent to a*, -1 otherwise."""
    if not converged:
        return 0.0
    return 1.0 if correct else -1.0


def aero_kto_labels(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """AERO's KTO examples (inner_loop.py) as ``{"agent", "role", "desirable"}``: the completion
    of ``agent`` trained under ``role``'s prompt. Generator: desirable iff ZPD (an invalid
    question is undesirable). Converged: refiner_0's correction under the solver prompt is
    desirable; each top-2 representative solver whose answer is not a* is undesirable; the
    refiner whose candidate was wrong is desirable under its own prompt."""
    if fields.get("question") is None:
        return [{"agent": "generator_0", "role": "generator", "desirable": False}]
    zpd = fields.get("zone") == "ZPD"
    labels = [{"agent": "generator_0", "role": "generator", "desirable": zpd}]
    if fields.get("converged"):
        wrong = [i for i, ok in enumerate(fields["candidate_correct"]) if not ok]
        labels.append({"agent": "refiner_0", "role": "solver", "desirable": True})
        for i in wrong:
            solver = fields["refiner_candidates"][i]
            labels.append({"agent": f"solver_{solver}", "role": "solver", "desirable": False})
        labels += [{"agent": f"refiner_{i}", "role": "refiner", "desirable": True} for i in wrong]
    return labels


def _chat(system: str, user: str) -> Messages:
    return ({"role": "system", "content": system}, {"role": "user", "content": user})


def _index(agent: str) -> int:
    return int(agent.rsplit("_", 1)[1])


def _same_exact(a: str, b: str) -> bool:
    """The original's short-circuit before it asks the model: equality with spaces removed."""
    return a.replace(" ", "") == b.replace(" ", "")


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
            return parse_question(text)
        return parse_merge(text) if role == "judge" else parse_answer(text)

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

    def same(self, a: str, b: str) -> bool:
        """Answer equivalence outside the judge's one turn (``llm`` uses math_verify here)."""
        return _same_exact(a, b) if self.config.equivalence == "exact" else equivalent(a, b)

    def end_phase(self, agents: Sequence[str], episode: Episode) -> None:
        fields, role = episode.fields, role_of(agents[0]) if agents else ""
        if role == "solver":
            groups = fields["groups"] = exact_groups(fields["answers"])
            if self.config.equivalence != "llm" or len(groups) < 2:
                keys = [fields["answers"][g[0]] for g in groups]
                clusters = merge_groups(groups, lambda g, f: self.same(keys[g], keys[f]))
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

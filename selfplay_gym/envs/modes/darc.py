"""DARC: a Questioner writes document-grounded questions at a target difficulty; the Solver then
learns them, easy to hard, by distilling its own document-aware answers into document-free ones.

Source: "DARC: Decoupled Asymmetric Reasoning Curriculum for LLM Evolution" (arXiv 2601.13761)
and its code (RUCBM/DARC: reward_function/difficulty_aware_{questioner,solver}.py,
vllm_service_init/start_vllm_server_difficulty_aware.py). Every default follows the code; our
notes on the paper record no formula that differs. One mode holds both stages (``stage=1`` /
``stage=2``): they share prompts, parsers and answer types (envs/curriculum.py holds the
parsers and text checks).

## Roles
Stage 1 (Questioner training; the three Solver roles are the frozen base model):
- ``questioner_0``: document + difficulty + answer type -> one JSON object with a question.
- ``solver_0..solver_{m-1}``: the Solver *with* the document; their majority is gold. The
  Questioner's own "answer" is recorded and ignored (code: USE_TEXT_SOLVER_FOR_ANSWER=1).
- ``student_0..student_{m-1}``: the Solver *without* the document; solve rate s vs gold.
- ``judge_0`` (``relatedness_judge=True``): is the question related to the document? yes/no.
Stage 2 (asymmetric self-distillation; the trained Solver plays both views, one adapter):
- ``teacher_0..teacher_{k-1}``: document + question; majority = label, top vote share = v.
- ``student_0..student_{k-1}``: the question only; the only trained samples.

## Turn order
Stage 1: questioner_0, then solvers + students (+ judge) in one batchable phase; an invalid
question ends the episode. Stage 2: teachers + students in one phase, on the question of the
task item (a ``CurriculumItem`` from ``CurriculumTask``; see envs/curriculum.py).

## Observation
Questioner: DARC's prompt (document, difficulty definition, answer type, rules, a JSON example).
With the document: "Read the following context and answer the question." Without: the question.
Categorical questions get DARC's "only put the letter in the box" instruction.

## Action
Questioner: one JSON object (bare or ```json-fenced) with exactly ``QUESTION_KEYS``
(``strict_keys=False``: "question" required, other keys free); categorical questions need >= 3
option letters. Solver, student, teacher: the last ``\\boxed{}`` is the answer. Judge: yes/no.

## Rewards
- Questioner: ``difficulty_reward(s, d)``; -1 for no valid gold, a copied question
  (``copy_ratio`` > 0.8) or an unrelated one; the vector env then applies the per-document
  ``ranking_penalties`` (floor 0).
- Stage-1 solver/student: 1 if equivalent to gold, else 0 (frozen; for logs). Teacher: 0.
- Judge: 0, or ``judge_format_penalty`` without a yes/no.
- Stage-2 student: ``distill_reward``: 0.95 acc + 0.05 fmt vs the teacher label, 0 if fmt = 0.

## Training filter
Teachers never train. Stage-2 students train only when v >= ``min_vote_fraction`` (0.3). DARC
zeroes their advantage after GRPO; v is shared by the whole group, so dropping the group is the
same update up to the loss normaliser (their tokens no longer count in a token mean).

## Termination
After the answer phase, or after the Questioner when its question is invalid.

## Arguments
``DarcConfig``. Stage 1 defaults to ``WordProblemCorpus``; give every env one shared
``DocumentPrompts`` so a batch holds n samples per prompt and all difficulties of a document.
Stage 2 needs ``curriculum=`` (or ``task=``) a ``CurriculumTask(build_curriculum(episodes))``.

## Training (for the trainer, not the env)
Two stages in sequence: train ``questioner`` on stage-1 rollouts; build the curriculum from the
trained Questioner's episodes; then train the Solver on stage-2 rollouts, where ``teacher`` and
``student`` must map to one adapter (``single_policy`` is False because the stages train
different models). Stage-1 ``solver``/``student``/``judge`` are the base model, untrained.

## Version history
- v0: initial release.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from selfplay_gym.envs.curriculum import (
    VALIDATORS,
    CurriculumTask,
    DocumentPrompts,
    build_curriculum,
    canonical_gold,
    copy_ratio,
    has_options,
    matches_gold,
    parse_boxed,
    parse_question_json,
    parse_verdict,
    usable,
)
from selfplay_gym.envs.mode import Mode, Parsed, Recipe, RewardFn, role_of
from selfplay_gym.envs.tasks import WordProblemCorpus
from selfplay_gym.envs.verify import equivalent, majority_vote
from selfplay_gym.types import Episode, Messages, Turn

DEFINITIONS = {
    1: "Easy: uses 1-2 spans; 1-2 reasoning steps; simple inference or transformation.",
    2: "Moderate: uses at least 2 distinct spans; 2-3 reasoning steps; combines multiple facts.",
    3: "Hard: uses 3+ distant spans across the document; 5+ reasoning steps; requires global "
       "synthesis, constrained reasoning, or multi-stage calculations.",
}
ANSWER_RULES = {
    "integer": "a JSON integer", "float": "a JSON number with a decimal point",
    "categorical": "one option letter as a JSON string; list at least 3 options in the "
                   "question, one per line, as 'A. ...', 'B. ...', 'C. ...'",
    "boolean": 'the JSON string "true" or "false"', "string": "one to three words",
    "expression": "a short mathematical expression as a JSON string",
}
EXAMPLE = {
    "analysis": "Easy: one fact (23 coins, exactly one counterfeit), one subtraction step.",
    "question": "A collection contains 23 coins. Exactly one of them is counterfeit. "
                "How many of the coins are genuine?",
    "intermediate_results": {"step1_count_genuine": "23 - 1 = 22 genuine coins."},
    "answer": 22, "solving_time_estimate": 1,
    "required_concepts": ["Basic counting", "Subtraction"],
    "potential_errors": ["Subtracting more than one coin"],
}
MCQ_EXAMPLE = EXAMPLE | {"question": EXAMPLE["question"] + "\nA. 21\nB. 22\nC. 23\nD. 24",
                         "answer": "B"}
QUESTIONER_PROMPT = """Your task is to generate a single self-contained question and its correct \
answer inspired by the given document. The question must strictly satisfy both the difficulty \
level and the answer_type constraints. Output exactly one JSON object; all reasoning goes in \
its "analysis" field.

## Document
[BEGIN]
{document}
[END]

## Difficulty Level
difficulty_id: {difficulty}. Follow this operational definition: {definition}

## Answer Type
answer_type: {answer_type}. The "answer" field must be {answer_rule}.

## Core Requirements for the Question
1. Inspired by the document, but self-contained: understandable by someone who sees only it.
2. Never mention "the document" or "the text"; define every variable in the question itself.
3. Its reasoning steps and the spans it combines must match the difficulty level.
4. The answer must be unique, unambiguous and consistent with the document.
5. Don't copy the question from the document.

## Output Format (STRICT)
Exactly one JSON object with exactly these keys: "analysis" (string), "question" (string), \
"intermediate_results" (object), "answer", "solving_time_estimate" (number, minutes), \
"required_concepts" (array of strings), "potential_errors" (array of strings).

## Example (structure only; do not copy)
{example}"""
SOLVER_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
CATEGORICAL_INSTRUCTION = ("\nPlease reason step by step, and put your final answer option within "
                           "\\boxed{}. Only put the letter in the box, e.g. \\boxed{A}. There is "
                           "only one correct answer.")
CONTEXT_USER = ("Read the following context and answer the question.\n\n"
                "Context:\n{document}\n\nQuestion: {question}")
JUDGE_SYSTEM = "You are a precise judge. Reply with yes or no only."
JUDGE_USER = ("Do you think this question `{question}` is related to the following text:"
              "{document}\n\nReturn with yes or no, no other text.")


# --- reward terms (pure) -----------------------------------------------------------------------
def difficulty_reward(
    s: float | None, difficulty: int, targets: Sequence[float] = (0.8, 0.5, 0.2)
) -> float:
    """DARC's Questioner reward: ``1 - |s - tau_d|`` if s > 0, -0.1 if s = 0, -1 if invalid.

    s: the no-document solve rate (None: no valid gold or no usable answer); tau_d =
    ``targets[d - 1]``, {1: 0.8, 2: 0.5, 3: 0.2} (difficulty_aware_questioner.py).
    """
    if s is None or s < 0 or not 1 <= difficulty <= len(targets):
        return -1.0
    return -0.1 if s == 0 else 1.0 - abs(s - targets[difficulty - 1])


def ranking_penalties(
    items: Sequence[tuple[Hashable, int, float, float] | None],
    margin: float = 0.2,
    weight: float = 0.5,
) -> list[float]:
    """DARC's per-document ranking term: each reward's change (<= 0), in input order.

    ``items[i] = (document, difficulty, s, reward)``, None if ineligible (DARC ranks questions
    with s >= 0 and reward >= 0 after the copy/relatedness checks). Per document, stable-sort by
    difficulty; for each adjacent pair with d_lo < d_hi, ``pen = max(0, s_hi + margin - s_lo)``
    and both rewards become ``max(0, r - weight * pen)``: the floor is on the reward.
    """
    rewards = [item[3] if item else 0.0 for item in items]
    by_doc: dict[Hashable, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        if item is not None:
            by_doc[item[0]].append(i)
    for members in by_doc.values():
        members.sort(key=lambda i: items[i][1])
        for lo, hi in zip(members, members[1:], strict=False):
            pen = max(0.0, items[hi][2] + margin - items[lo][2])
            if items[hi][1] > items[lo][1] and pen > 0:
                rewards[lo] = max(0.0, rewards[lo] - weight * pen)
                rewards[hi] = max(0.0, rewards[hi] - weight * pen)
    return [new - item[3] if item else 0.0 for new, item in zip(rewards, items, strict=True)]


def solve_rate(answers: Sequence[str | None], correct: Sequence[bool]) -> float | None:
    """s = matches / m over the no-document answers; None (invalid) if none is usable.

    As DARC's server: a missing box reads "None", which counts in m and never matches; when no
    sample has a usable answer the question scores -1. (It also leaves empty ``\\boxed{}``
    samples out of m; here they count, as wrong.)
    """
    return sum(correct) / len(answers) if any(map(usable, answers)) else None


def distill_reward(
    answer: str | None, fmt: bool, label: str | None, format_weight: float = 0.05
) -> float:
    """DARC's stage-2 student reward: ``(1 - w) acc + w fmt`` with w = 0.05, and 0 if fmt = 0.

    fmt: a ``\\boxed{}`` plus some text outside it; acc: the boxed answer is equivalent to the
    teacher majority label (difficulty_aware_solver.py).
    """
    if not fmt:
        return 0.0
    acc = usable(answer) and bool(label) and equivalent(answer, label)
    return (1.0 - format_weight) * float(acc) + format_weight


# --- the mode ----------------------------------------------------------------------------------
@dataclass
class DarcConfig:
    stage: int = 1
    """1: Questioner vs a frozen Solver; 2: Solver self-distillation on a curriculum."""
    num_solvers: int = 10
    """m (stage 1): frozen-Solver samples with, and again without, the document."""
    num_samples: int = 8
    """k (stage 2): teacher samples and student samples per question."""
    answer_type: str = "integer"
    """A key of VALIDATORS; a task item's own ``answer_type`` (CurriculumItem) wins."""
    strict_keys: bool = True
    """Exactly QUESTION_KEYS (code); False: "question" required, other keys free."""
    relatedness_judge: bool = False
    """Add judge_0 (DARC asks an external LLM; "no" costs the Questioner -1)."""
    target_accuracy: tuple[float, ...] = (0.8, 0.5, 0.2)
    """tau_d: the no-document solve rate each difficulty 1, 2, 3 should reach."""
    difficulties: tuple[int, ...] = (1, 2, 3)
    """The levels stage 1's default task asks for, each document at each (DARC: all three);
    fewer keep the curriculum within what a small Solver can learn."""
    copy_ngram: int = 6
    copy_threshold: float = 0.8
    """A question whose ``copy_ratio`` exceeds this earns -1."""
    ranking_margin: float = 0.2
    ranking_weight: float = 0.5
    """pen = max(0, s_hi + margin - s_lo), subtracted times weight; weight 0 turns it off."""
    format_weight: float = 0.05
    """w in the stage-2 student reward (1 - w) acc + w fmt."""
    min_vote_fraction: float = 0.3
    """Stage-2 students train only when this share of teachers agree (DARC: >= 3 of 8)."""
    judge_format_penalty: float = -1.0
    curriculum: CurriculumTask | None = None
    """Stage 2's default task; one object given to every env of a vector env shares its cursor."""

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 (questioner) or 2 (solver), got {self.stage!r}")
        if self.num_solvers < 1 or self.num_samples < 1:
            raise ValueError(f"num_solvers and num_samples must be at least 1, got "
                             f"{self.num_solvers} and {self.num_samples}")
        if self.answer_type not in VALIDATORS:
            raise ValueError(
                f"answer_type must be one of {sorted(VALIDATORS)}, got {self.answer_type!r}")
        self.target_accuracy = tuple(self.target_accuracy)
        self.difficulties = tuple(self.difficulties)
        if not self.difficulties or not set(self.difficulties) <= {1, 2, 3}:
            raise ValueError(f"difficulties must be a non-empty subset of (1, 2, 3): {self.difficulties}")
        if len(self.target_accuracy) != 3 or not all(0 <= t <= 1 for t in self.target_accuracy):
            raise ValueError(f"target_accuracy needs 3 values in [0, 1]: {self.target_accuracy}")
        if not (0 <= self.format_weight <= 1 and 0 <= self.min_vote_fraction <= 1):
            raise ValueError("format_weight and min_vote_fraction must lie in [0, 1]")
        if self.curriculum is not None and not isinstance(self.curriculum, CurriculumTask):
            raise TypeError("curriculum must be a CurriculumTask, e.g. "
                            "CurriculumTask(build_curriculum(stage1_episodes))")


def _index(agent: str) -> int:
    return int(agent.rsplit("_", 1)[1])


class DarcMode(Mode):
    name = "darc"
    version = 0
    roles = ("questioner", "solver", "student", "judge", "teacher")
    recipe = Recipe(
        stages=(("questioner",), ("student",)), algorithm="darc",
        adapters={"questioner": "questioner", "solver": "solver", "student": "solver",
                  "teacher": "solver", "judge": "solver"},
    )
    """Stage 1 trains the Questioner against the untrained (so base-model) "solver" adapter;
    stage 2 trains that adapter as student and teacher on the curriculum stage 1 wrote."""
    """Every role of either stage; an instance narrows ``roles`` to its stage's."""
    Config = DarcConfig

    def __init__(self, config: DarcConfig | None = None):
        super().__init__(config)
        judge = ("judge",) if self.config.relatedness_judge else ()
        stage_roles = ("questioner", "solver", "student", *judge), ("teacher", "student")
        self.roles = stage_roles[self.config.stage - 1]

    def next_stage_options(self, episodes: Sequence[Episode]) -> dict:
        """Stage 2 on the curriculum of stage 1's valid questions, easy -> hard; if none passed
        every check, on every parsed question (DARC's own build keeps those too)."""
        items = build_curriculum(episodes) or build_curriculum(episodes, strict=False)
        if not items:
            raise ValueError(
                "stage 1 wrote no parsable question, so stage 2 has no curriculum: train the "
                "Questioner longer, or start from a model that writes DARC's JSON")
        return {"stage": 2, "curriculum": CurriculumTask(items)}

    def default_task(self):
        if self.config.stage == 1:  # every document at each difficulty, num_samples times
            return DocumentPrompts(WordProblemCorpus(), self.config.difficulties,
                                   samples_per_prompt=self.config.num_samples)
        if self.config.curriculum is None:
            raise ValueError("DARC stage 2 needs questions: pass curriculum=CurriculumTask("
                             "build_curriculum(stage1_episodes)) or task=CurriculumTask(...)")
        return self.config.curriculum

    def _view(self, role: str) -> tuple[str, ...]:
        n = self.config.num_solvers if self.config.stage == 1 else self.config.num_samples
        return tuple(f"{role}_{i}" for i in range(n))

    def agents(self) -> tuple[str, ...]:
        if self.config.stage == 2:
            return self._view("teacher") + self._view("student")
        judge = ("judge_0",) if self.config.relatedness_judge else ()
        return ("questioner_0", *self._view("solver"), *self._view("student"), *judge)

    def next_phase(self, episode: Episode) -> tuple[str, ...]:
        fields = episode.fields
        if self.config.stage == 2:
            self.question(episode)  # a task item without a question is misuse: raise now
            return () if "label" in fields else self.agents()
        if "question" not in fields:
            self.difficulty(episode)
            return ("questioner_0",)
        return () if fields["question"] is None or "status" in fields else self.agents()[1:]

    # --- prompts ---------------------------------------------------------------------------
    def difficulty(self, episode: Episode) -> int:
        d = episode.task.get("difficulty")
        if isinstance(d, bool) or d not in DEFINITIONS:
            raise ValueError(f"DARC needs a task difficulty in {sorted(DEFINITIONS)}, got {d!r}: "
                             "use a task with difficulties=(1, 2, 3)")
        return int(d)

    def question(self, episode: Episode) -> str:
        if self.config.stage == 1:
            return episode.fields.get("question") or ""
        question = episode.task.get("question")
        if not isinstance(question, str) or not question.strip():
            raise ValueError("a DARC stage-2 task item must carry a question: use "
                             "task=CurriculumTask(build_curriculum(stage1_episodes))")
        return question

    def answer_type(self, episode: Episode) -> str:
        answer_type = episode.task.get("answer_type")
        return answer_type if answer_type in VALIDATORS else self.config.answer_type

    def observe(self, agent: str, episode: Episode) -> Messages:
        role, document = role_of(agent), episode.task.get("document") or ""
        answer_type = self.answer_type(episode)
        if role == "questioner":
            d = self.difficulty(episode)
            example = MCQ_EXAMPLE if answer_type == "categorical" else EXAMPLE
            prompt = QUESTIONER_PROMPT.format(
                document=document, difficulty=d, definition=DEFINITIONS[d],
                answer_type=answer_type, answer_rule=ANSWER_RULES[answer_type],
                example=json.dumps(example, indent=2))
            return ({"role": "user", "content": prompt},)
        question = self.question(episode)
        if not question:
            return ()
        if role == "judge":
            user = JUDGE_USER.format(question=question, document=document)
            return ({"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user})
        if role in ("solver", "teacher"):
            question = CONTEXT_USER.format(document=document, question=question)
        if answer_type == "categorical":
            return ({"role": "user", "content": question + CATEGORICAL_INSTRUCTION},)
        return ({"role": "system", "content": SOLVER_SYSTEM}, {"role": "user", "content": question})

    # --- parsing ---------------------------------------------------------------------------
    def parse(self, role: str, text: str) -> Parsed:
        if role == "questioner":  # the option check needs the episode's answer type: record()
            return parse_question_json(text, self.config.strict_keys)
        return parse_verdict(text) if role == "judge" else parse_boxed(text)

    def record(self, turn: Turn, episode: Episode) -> None:
        fields = episode.fields
        if turn.role == "questioner":
            question = turn.parsed.get("question") if turn.valid else None
            fields["answer_type"] = self.answer_type(episode)
            if question and fields["answer_type"] == "categorical" and not has_options(question):
                turn.valid, turn.error = False, "multiple-choice question with fewer than 3 options"
                question = None
            fields["question"], fields["questioner_answer"] = question, turn.parsed.get("answer")
        elif turn.role == "judge":
            fields["related"] = turn.parsed.get("related")
        else:
            key = {"solver": "doc_answers", "teacher": "teacher_answers"}.get(turn.role, "answers")
            n = len(self._view(turn.role))
            fields.setdefault(key, [None] * n)[_index(turn.agent)] = turn.parsed.get("answer")
            if turn.role == "student":
                formats = fields.setdefault("formats", [False] * n)
                formats[_index(turn.agent)] = turn.parsed.get("format", False)

    def end_phase(self, agents, episode: Episode) -> None:
        fields = episode.fields
        if role_of(agents[0]) == "questioner":
            return
        if self.config.stage == 2:  # exact-string vote, ties to the first seen (solver code)
            answers = [a.strip() if usable(a) else None for a in fields["teacher_answers"]]
            vote = majority_vote(answers, lambda a, b: a == b)
            fields["label"], fields["vote_fraction"] = vote.answer, vote.agreement
            return
        answer_type = fields["answer_type"]
        vote = majority_vote([a if usable(a) else None for a in fields["doc_answers"]])
        gold = canonical_gold(vote.answer, answer_type)
        fields["gold"], fields["gold_agreement"] = gold, vote.valid_agreement
        for key, source in (("doc_correct", "doc_answers"), ("correct", "answers")):
            fields[key] = [gold is not None and matches_gold(a, gold, answer_type)
                           for a in fields[source]]
        s = None if gold is None else solve_rate(fields["answers"], fields["correct"])
        document = episode.task.get("document") or ""
        ratio = copy_ratio(fields["question"], document, self.config.copy_ngram)
        fields["solve_rate"], fields["copy_ratio"] = s, ratio
        fields["status"] = (
            "no_gold" if gold is None else "no_student_answer" if s is None
            else "copied" if ratio > self.config.copy_threshold
            else "unrelated" if fields.get("related") is False else "ok"
        )

    # --- rewards ---------------------------------------------------------------------------
    def reward_functions(self) -> dict[str, RewardFn]:
        return {"questioner": self.questioner_reward, "solver": self.label_reward,
                "student": self.student_reward, "judge": self.judge_reward,
                "teacher": self.teacher_reward}

    def questioner_reward(self, episode: Episode, agent: str) -> float:
        fields = episode.fields
        if fields.get("status") != "ok":
            return -1.0
        targets = self.config.target_accuracy
        return difficulty_reward(fields["solve_rate"], self.difficulty(episode), targets)

    def label_reward(self, episode: Episode, agent: str) -> float:
        key = "correct" if role_of(agent) == "student" else "doc_correct"
        return float(episode.fields[key][_index(agent)]) if key in episode.fields else 0.0

    def student_reward(self, episode: Episode, agent: str) -> float:
        fields = episode.fields
        if self.config.stage == 1:
            return self.label_reward(episode, agent)
        i = _index(agent)
        return distill_reward(fields["answers"][i], fields["formats"][i], fields.get("label"),
                              self.config.format_weight)

    def teacher_reward(self, episode: Episode, agent: str) -> float:
        """0: teacher samples are labels and a confidence, never trained."""
        return 0.0

    def judge_reward(self, episode: Episode, agent: str) -> float:
        turn = next((t for t in episode.turns if t.agent == agent), None)
        return 0.0 if turn is None or turn.valid else self.config.judge_format_penalty

    def batch_rewards(self, episodes: Sequence[Episode]) -> list[dict[str, dict[str, float]]]:
        if self.config.stage == 2 or not self.config.ranking_weight:
            return [{} for _ in episodes]
        items = []
        for ep in episodes:
            s, reward = ep.fields.get("solve_rate"), ep.rewards.get("questioner_0", -1.0)
            ok = ep.fields.get("status") == "ok" and s is not None and reward >= 0
            key = (ep.task.get("document"), ep.task.get("difficulty"), s, reward)
            items.append(key if ok else None)
        deltas = ranking_penalties(items, self.config.ranking_margin, self.config.ranking_weight)
        pairs = zip(deltas, items, strict=True)
        return [{"questioner_0": {"ranking": d}} if item else {} for d, item in pairs]

    # --- grouping and filtering ----------------------------------------------------------------
    def group_id(self, agent: str, episode: Episode, messages: Messages) -> str:
        """Questioner and judge: by prompt (DARC: n=8 per prompt); the rest: by episode."""
        role = role_of(agent)
        if role in ("questioner", "judge"):
            return super().group_id(agent, episode, messages)
        return f"{role}:{episode.episode_id}"

    def keep_for_training(self, agent: str, episode: Episode) -> bool:
        if self.config.stage == 1:
            return True
        if role_of(agent) == "teacher":
            return False
        return episode.fields.get("vote_fraction", 0.0) >= self.config.min_vote_fraction

    def info(self, agent: str, episode: Episode) -> dict:
        return {"question": self.question(episode), **episode.fields}


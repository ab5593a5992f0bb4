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
Every comparison goes through the ``grader``; "None" in any markup is never gold or a label.

## Training filter
Teachers never train. Stage-2 students train only when v >= ``min_vote_fraction`` (0.3). DARC
zeroes their advantage after GRPO; v is shared by the whole group, so dropping the group is the
same update up to the loss normaliser (their tokens no longer count in a token mean).

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
from collections.abc import Sequence
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
from selfplay_gym.envs.graders import Grader, GraderBudget, get_grader
from selfplay_gym.envs.mode import Mode, Parsed, Recipe, RewardFn, agent_index, role_of
from selfplay_gym.envs.modes.darc_prompts import (
    ANSWER_RULES,
    CATEGORICAL_INSTRUCTION,
    CONTEXT_USER,
    DEFINITIONS,
    EXAMPLE,
    JUDGE_SYSTEM,
    JUDGE_USER,
    MCQ_EXAMPLE,
    QUESTIONER_PROMPT,
    SOLVER_SYSTEM,
)
from selfplay_gym.envs.modes.darc_rewards import (
    difficulty_reward,
    distill_reward,
    ranking_penalties,
    solve_rate,
)
from selfplay_gym.envs.tasks import WordProblemCorpus
from selfplay_gym.envs.verify import majority_vote
from selfplay_gym.types import Episode, Messages, Turn

__all__ = ["DarcConfig", "DarcMode", "difficulty_reward", "distill_reward", "ranking_penalties",
           "solve_rate"]


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
    grader: str = "math_verify"
    """Answer comparison (gold vote, solve rate, student reward): 'math_verify' or 'mathruler'."""
    grader_budget_s: float = 10.0
    """Comparison seconds per episode phase, then exact match only (``graders.GraderBudget``)."""
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
        get_grader(self.grader)
        if self.curriculum is not None and not isinstance(self.curriculum, CurriculumTask):
            raise TypeError("curriculum must be a CurriculumTask, e.g. "
                            "CurriculumTask(build_curriculum(stage1_episodes))")


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
    stage 2 trains that adapter as student and teacher on the curriculum stage 1 wrote; an
    instance narrows ``roles`` (every role of either stage) to its stage's."""
    Config = DarcConfig

    @property
    def grader(self) -> Grader:
        """The one answer comparison of the gold vote, the solve rate and the student reward."""
        return get_grader(self.config.grader)

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
            fields.setdefault(key, [None] * n)[agent_index(turn.agent)] = turn.parsed.get("answer")
            if turn.role == "student":
                formats = fields.setdefault("formats", [False] * n)
                formats[agent_index(turn.agent)] = turn.parsed.get("format", False)

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
        grader = GraderBudget(self.grader, self.config.grader_budget_s)
        vote = majority_vote([a if usable(a) else None for a in fields["doc_answers"]], grader)
        gold = canonical_gold(vote.answer, answer_type)
        fields["gold"], fields["gold_agreement"] = gold, vote.valid_agreement
        for key, source in (("doc_correct", "doc_answers"), ("correct", "answers")):
            fields[key] = [gold is not None and matches_gold(a, gold, answer_type, grader)
                           for a in fields[source]]
        fields["grader_over_budget"] = grader.over_budget
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
        return float(episode.fields[key][agent_index(agent)]) if key in episode.fields else 0.0

    def student_reward(self, episode: Episode, agent: str) -> float:
        fields = episode.fields
        if self.config.stage == 1:
            return self.label_reward(episode, agent)
        i = agent_index(agent)
        return distill_reward(fields["answers"][i], fields["formats"][i], fields.get("label"),
                              self.config.format_weight, self.grader)

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


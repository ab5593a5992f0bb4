"""R-Zero: a Challenger asks, Solvers answer, and the question is rewarded for splitting them.

Source: "R-Zero: Self-Evolving Reasoning LLM from Zero Data" (arXiv 2508.05004) and its code
(Chengsong-Huang/R-Zero). Where the two differ, the code is the default and the paper an option.

## Roles
- ``questioner_0`` (the Challenger): writes one new question and its own answer.
- ``solver_0 .. solver_{m-1}``: m independent answers to that question (one GRPO group).
- ``judge_0``: reads the m final answers and names the pseudo-label. R-Zero's label is the
  majority answer, so the default judge is the scripted ``MajorityJudge``; a
  ``ReferenceJudge`` turns the same env into supervised GRPO, an LLM judge into a learned one.

## Turn order
questioner_0 -> solver_0..solver_{m-1} (one batchable phase) -> judge_0. An invalid question
ends the episode after the questioner.

## Observation
Chat messages. Questioner: R-Zero's problem-setter system prompt adapted to the task's
domain. Solver: "reason step by step, put your final answer within \\boxed{}" + the question.
Judge: the question and the m final answers.

## Action
Text. Questioner: ``<question>...</question>``, then ``\\boxed{answer}`` (the code reads the
box but never uses it, so only the question block is required; ``require_boxed_question=True``
requires both). Solver and judge: any text whose last ``\\boxed{}`` is the answer.

## Rewards
- Questioner: ``u(p̂) - λ|C|/B``, where p̂ = largest answer cluster / m (self-consistency;
  a Solver sample without a box votes as "None", as in the code; ``missing_answer="skip"``
  leaves it out),
  u = min(p̂, 1 - p̂) (code) or 1 - 2|p̂ - 0.5| (paper, ``uncertainty_scale="paper"``), and
  the repetition penalty λ|C|/B over BLEU clusters of the batch is added by the vector env.
  An unparsable question earns ``questioner_format_penalty`` (-1) instead of u, and still
  counts as a singleton in the BLEU clusters (code: -1 - λ/B). No clamp (the code's
  behaviour; the paper writes max(0, .)).
- Solver: 1 if its answer is equivalent to the judge's label, else 0;
  ``solver_format_penalty`` (0) without a boxed answer.
- Judge: 0, or ``judge_format_penalty`` (-1) without a boxed label; R-Zero trains no judge.

## Training filter
Solver samples are kept only when the majority agreement over valid answers lies in
[band_low, band_high] = [0.3, 0.8] (question_evaluate/upload.py), a label exists and the
majority is not "None"; with ``original_filters`` (default) also not for questions that
contain "box" or "证明" or labels that contain "text" (question_evaluate/evaluate.py).

## Answer equivalence
Every comparison (clusters, p̂, the band, the judge's label, the Solver reward) goes through
one grader, ``grader``: "math_verify" (default) or "mathruler", the code's (optional package).
The differences from the original code are tabled in docs/modes/rzero.md.

## Version history
- v0: initial release.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selfplay_gym.envs.graders import Grader, GraderBudget, get_grader
from selfplay_gym.envs.mode import Mode, Parsed, Recipe, RewardFn, role_of
from selfplay_gym.envs.rewards import (
    in_band,
    match_reward,
    repetition_penalties,
    uncertainty_reward,
)
from selfplay_gym.envs.tasks.arithmetic import ArithmeticTask
from selfplay_gym.envs.verify import extract_answer, extract_boxed, majority_vote
from selfplay_gym.types import Episode, Messages, Turn

QUESTIONER_SYSTEM = (
    "You are an expert problem setter for {domain}. Privately design one new, non-trivial "
    "problem that a strong student solves only about half of the time. Output only the "
    "problem inside <question></question>, followed by its final answer in \\boxed{{}}."
)
QUESTIONER_USER = "Generate one new challenging question now."
ORIGINAL_QUESTIONER_SYSTEM = (
    "You are an expert competition-math problem setter.\n"
    "FIRST, in your private scratch-pad, think step-by-step to design a brand-new, non-trivial "
    "problem. The problem could come from any field of mathematics, including but not limited "
    "to algebra, geometry, number theory, combinatorics, prealgebra, probability, statistics, "
    "and calculus. Aim for a difficulty such that fewer than 30 % of advanced high-school "
    "students could solve it. Avoid re-using textbook clichés or famous contest problems.\n"
    "THEN, without revealing any of your private thoughts, output **exactly** the following two "
    "blocks:\n\n<question>\n{The full problem statement on one or more lines}\n</question>\n\n"
    "\\boxed{final_answer}\n\nDo NOT output anything else—no explanations, no extra markup."
)
ORIGINAL_QUESTIONER_USER = ("Generate one new, challenging reasoning question now. Remember to "
                            "format the output exactly as instructed.")
"""R-Zero's own Challenger prompt (question_generate/question_generate.py)."""
SOLVER_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
JUDGE_SYSTEM = (
    "You are a judge. Several solvers answered the question below. Reply with the answer "
    "most likely to be correct, in \\boxed{}."
)


@dataclass
class RZeroConfig:
    num_solvers: int = 10
    """m: answers per question (R-Zero samples 10 for the Challenger reward)."""
    uncertainty_scale: str = "code"
    """'code': min(p̂, 1-p̂); 'paper': 1 - 2|p̂ - 0.5|."""
    questioner_format_penalty: float = -1.0
    solver_format_penalty: float = 0.0
    judge_format_penalty: float = -1.0
    repetition_threshold: float = 0.5
    """BLEU distance under which two questions fall in one cluster."""
    repetition_weight: float = 1.0
    """λ in front of |C|/B."""
    band_low: float = 0.3
    band_high: float = 0.8
    answer_fallback: str = "none"
    """What a solver's answer is without a \\boxed{}: 'none' (invalid) or 'last_number'."""
    questioner_prompt: str = "auto"
    """'original': R-Zero's competition-math problem setter; 'domain': the same brief for the
    task's domain; 'auto': 'domain' for the embedded arithmetic task (a tiny model cannot set
    competition problems), 'original' for any other task."""
    grader: str = "math_verify"
    """How two answers are compared, everywhere: 'math_verify' or 'mathruler' (the code's;
    ``pip install 'selfplay-gym[mathruler]'``). math_verify is the default so that no optional
    package is needed."""
    missing_answer: str = "vote"
    """A Solver sample without a box: 'vote' (code: it votes as "None" and counts in p̂; a
    "None" majority gives no label) or 'skip' (out of the vote and of p̂'s denominator)."""
    require_boxed_question: bool = False
    """True: the Challenger also needs a closed \\boxed{} (paper); False: the code, which never
    uses the Challenger's answer."""
    invalid_in_repetition: bool = True
    """An unparsable Challenger output is a singleton BLEU cluster, -λ/B (code); False: 0."""
    original_filters: bool = True
    """The code's data filters: no Solver training on questions with "box" or "证明" or labels
    with "text" (evaluate.py), and "1 / 2" read as "1/2" in the Solver reward (math.py)."""
    grader_budget_s: float = 10.0
    """Seconds of answer comparisons per episode phase; past it, exact match only, counted in
    ``fields["grader_over_budget"]`` (``graders.GraderBudget``)."""

    def __post_init__(self) -> None:
        if self.num_solvers < 1:
            raise ValueError(f"num_solvers must be at least 1, got {self.num_solvers}")
        if self.uncertainty_scale not in ("code", "paper"):
            raise ValueError(f"uncertainty_scale must be 'code' or 'paper', got {self.uncertainty_scale!r}")
        if not 0.0 <= self.band_low <= self.band_high <= 1.0:
            raise ValueError(f"need 0 <= band_low <= band_high <= 1, got {self.band_low}, {self.band_high}")
        if self.answer_fallback not in ("none", "last_number"):
            raise ValueError(f"answer_fallback must be 'none' or 'last_number', got {self.answer_fallback!r}")
        if self.questioner_prompt not in ("auto", "original", "domain"):
            raise ValueError("questioner_prompt must be 'auto', 'original' or 'domain', got "
                             f"{self.questioner_prompt!r}")
        if self.missing_answer not in ("vote", "skip"):
            raise ValueError(f"missing_answer must be 'vote' or 'skip', got {self.missing_answer!r}")
        get_grader(self.grader)


_QUESTION_BLOCK = re.compile(r"<question>(.*?)</question>", re.DOTALL)
_SPACED_OPERATOR = re.compile(r"\s*(<|>|/)\s*")
NONE_ANSWER = "None"
"""What mathruler's extractor returns for a sample without a box; R-Zero votes on it."""


def parse_question(text: str, require_answer: bool = False) -> Parsed:
    """The last ``<question>(.*?)</question>`` match and the last ``\\boxed{}`` of the text.

    As caller_penalty.py ``compute_score``: ``re.findall`` with a non-greedy block, the last
    match taken, so in ``<question>a<question>b</question>`` the question is "a<question>b".
    The code reads the box but never uses it; ``require_answer`` makes it required.
    """
    blocks = _QUESTION_BLOCK.findall(text)
    if not blocks:
        return Parsed(False, error="no <question>...</question> block")
    question = blocks[-1].strip()
    if not question:
        return Parsed(False, error="empty <question> block")
    answer = extract_boxed(text)
    if answer is None and require_answer:
        return Parsed(False, {"question": question}, error="no \\boxed{} answer after the question")
    return Parsed(True, {"question": question, "answer": answer})


def tighten_operators(answer: str | None) -> str | None:
    """``"1 / 2" -> "1/2"``: R-Zero's Solver reward drops spaces around <, > and / (math.py)."""
    return None if answer is None else _SPACED_OPERATOR.sub(r"\1", answer)


def hard_to_grade(question: str | None, label: str | None) -> bool:
    """R-Zero's evaluate.py drops questions with "证明" or "box" and labels with "text"."""
    question, label = question or "", label or ""
    return "证明" in question or "box" in question.lower() or "text" in label.lower()


def parse_answer(text: str, fallback: str = "none") -> Parsed:
    """A solver's or judge's final answer: the last ``\\boxed{}`` (or the fallback's pick)."""
    answer = extract_answer(text, fallback=fallback)
    if answer is None:
        return Parsed(False, error="no \\boxed{} answer")
    return Parsed(True, {"answer": answer})


def _turn(episode: Episode, agent: str) -> Turn | None:
    return next((t for t in episode.turns if t.agent == agent), None)


class RZeroMode(Mode):
    name = "rzero"
    version = 0
    roles = ("questioner", "solver", "judge")
    recipe = Recipe(stages=(("questioner", "solver"),), schedule="alternating", algorithm="rzero")
    """R-Zero: Challenger and Solver phases in turn against each other, frozen (paper §4)."""
    Config = RZeroConfig
    scripted_roles = {"judge": "majority"}

    @property
    def grader(self) -> Grader:
        """The one answer comparison every cluster, label and reward of this mode uses."""
        return get_grader(self.config.grader)

    def solvers(self) -> tuple[str, ...]:
        return tuple(f"solver_{i}" for i in range(self.config.num_solvers))

    def agents(self) -> tuple[str, ...]:
        return ("questioner_0", *self.solvers(), "judge_0")

    def next_phase(self, episode: Episode) -> tuple[str, ...]:
        fields = episode.fields
        if "question" not in fields:
            return ("questioner_0",)
        if fields["question"] is None:
            return ()
        if "agreement" not in fields:
            return self.solvers()
        if "label" not in fields:
            return ("judge_0",)
        return ()

    # --- prompts ---------------------------------------------------------------------------
    def observe(self, agent: str, episode: Episode) -> Messages:
        role, question = role_of(agent), episode.fields.get("question")
        if role == "questioner":
            return self.questioner_messages(episode.task.get("domain"))
        if not question:
            return ()
        if role == "solver":
            return ({"role": "system", "content": SOLVER_SYSTEM}, {"role": "user", "content": question})
        answers = episode.fields.get("answers")
        if answers is None or "agreement" not in episode.fields:
            return ()
        listed = "\n".join(
            f"{i + 1}. \\boxed{{{a}}}" if a else f"{i + 1}. (no answer)" for i, a in enumerate(answers)
        )
        user = f"Question: {question}\nAnswers:\n{listed}"
        return ({"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": user})

    def questioner_messages(self, domain: str | None) -> Messages:
        """The Challenger's chat: R-Zero's own, or its brief adapted to the task's domain."""
        choice = self.config.questioner_prompt
        if choice == "original" or (choice == "auto" and domain != ArithmeticTask.DOMAIN):
            return ({"role": "system", "content": ORIGINAL_QUESTIONER_SYSTEM},
                    {"role": "user", "content": ORIGINAL_QUESTIONER_USER})
        system = QUESTIONER_SYSTEM.format(domain=domain or "mathematics")
        return ({"role": "system", "content": system}, {"role": "user", "content": QUESTIONER_USER})

    # --- parsing ---------------------------------------------------------------------------
    def parse(self, role: str, text: str) -> Parsed:
        if role == "questioner":
            return parse_question(text, self.config.require_boxed_question)
        return parse_answer(text, self.config.answer_fallback)

    def record(self, turn: Turn, episode: Episode) -> None:
        fields = episode.fields
        if turn.role == "questioner":
            fields["question"] = turn.parsed.get("question") if turn.valid else None
            fields["questioner_answer"] = turn.parsed.get("answer")
        elif turn.role == "solver":
            answers = fields.setdefault("answers", [None] * self.config.num_solvers)
            answers[int(turn.agent.rsplit("_", 1)[1])] = turn.parsed.get("answer")
        else:
            fields["label"] = turn.parsed.get("answer")

    def end_phase(self, agents, episode: Episode) -> None:
        fields = episode.fields
        if agents and role_of(agents[0]) == "solver":
            votes = fields["answers"]
            if self.config.missing_answer == "vote":
                votes = [NONE_ANSWER if a is None else a for a in votes]
            grader = GraderBudget(self.grader, self.config.grader_budget_s)
            vote = majority_vote(votes, grader)
            fields["grader_over_budget"] = grader.over_budget
            fields["majority"] = None if vote.answer == NONE_ANSWER else vote.answer
            fields["agreement"] = vote.agreement
            fields["valid_agreement"] = vote.valid_agreement
        elif agents and role_of(agents[0]) == "judge":
            label, answers = fields["label"], fields["answers"]
            if self.config.original_filters:
                label, answers = tighten_operators(label), [tighten_operators(a) for a in answers]
            grader = GraderBudget(self.grader, self.config.grader_budget_s)
            fields["correct"] = [bool(label) and bool(a) and grader(a, label) for a in answers]
            fields["grader_over_budget"] = fields.get("grader_over_budget", 0) + grader.over_budget

    # --- rewards ---------------------------------------------------------------------------
    def reward_functions(self) -> dict[str, RewardFn]:
        return {
            "questioner": self.questioner_reward,
            "solver": self.solver_reward,
            "judge": self.judge_reward,
        }

    def questioner_reward(self, episode: Episode, agent: str) -> float:
        if episode.fields.get("question") is None:
            return self.config.questioner_format_penalty
        return uncertainty_reward(episode.fields["agreement"], self.config.uncertainty_scale)

    def solver_reward(self, episode: Episode, agent: str) -> float:
        turn = _turn(episode, agent)
        if turn is None or "correct" not in episode.fields:
            return 0.0
        index = int(agent.rsplit("_", 1)[1])
        return match_reward(episode.fields["correct"][index], turn.valid, self.config.solver_format_penalty)

    def judge_reward(self, episode: Episode, agent: str) -> float:
        turn = _turn(episode, agent)
        if turn is None or turn.valid:
            return 0.0
        return self.config.judge_format_penalty

    def batch_rewards(self, episodes) -> list[dict[str, dict[str, float]]]:
        penalties = repetition_penalties(
            [e.fields.get("question") for e in episodes],
            self.config.repetition_threshold,
            self.config.repetition_weight,
            missing_as_singletons=self.config.invalid_in_repetition,
        )
        return [{"questioner_0": {"repetition": -p}} for p in penalties]

    # --- grouping and filtering ----------------------------------------------------------------
    def group_id(self, agent: str, episode: Episode, messages: Messages) -> str:
        if role_of(agent) == "solver":
            return f"solver:{episode.episode_id}"
        return super().group_id(agent, episode, messages)

    def keep_for_training(self, agent: str, episode: Episode) -> bool:
        if role_of(agent) != "solver":
            return True
        fields = episode.fields
        label = fields.get("label")
        if not label or label == NONE_ANSWER or fields.get("majority") is None:
            return False
        if self.config.original_filters and hard_to_grade(fields.get("question"), label):
            return False
        return in_band(fields.get("valid_agreement", 0.0), self.config.band_low, self.config.band_high)

    def info(self, agent: str, episode: Episode) -> dict:
        """The fields, and the grader's name, so a scripted majority judge votes as the mode."""
        return {**episode.fields, "grader": self.config.grader}

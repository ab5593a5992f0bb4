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
Text. Questioner: ``<question>...</question>`` then ``\\boxed{answer}`` (both required).
Solver and judge: any text whose last ``\\boxed{}`` is the answer.

## Rewards
- Questioner: ``u(p̂) - λ|C|/B``, where p̂ = largest answer cluster / m (self-consistency),
  u = min(p̂, 1 - p̂) (code) or 1 - 2|p̂ - 0.5| (paper, ``uncertainty_scale="paper"``), and
  the repetition penalty λ|C|/B over BLEU clusters of the batch is added by the vector env.
  An unparsable question earns ``questioner_format_penalty`` (-1) instead of u. No clamp
  (the code's behaviour; the paper writes max(0, .)).
- Solver: 1 if its answer is equivalent to the judge's label, else 0;
  ``solver_format_penalty`` (0) without a boxed answer.
- Judge: 0, or ``judge_format_penalty`` (-1) without a boxed label; R-Zero trains no judge.

## Training filter
Solver samples are kept only when the majority agreement over valid answers lies in
[band_low, band_high] = [0.3, 0.8] (question_evaluate/upload.py) and a label exists.

## Version history
- v0: initial release.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfplay_gym.envs.mode import Mode, Parsed, Recipe, RewardFn, role_of
from selfplay_gym.envs.rewards import (
    in_band,
    match_reward,
    repetition_penalties,
    uncertainty_reward,
)
from selfplay_gym.envs.verify import equivalent, extract_answer, extract_boxed, majority_vote
from selfplay_gym.types import Episode, Messages, Turn

QUESTIONER_SYSTEM = (
    "You are an expert problem setter for {domain}. Privately design one new, non-trivial "
    "problem that a strong student solves only about half of the time. Output only the "
    "problem inside <question></question>, followed by its final answer in \\boxed{{}}."
)
QUESTIONER_USER = "Generate one new challenging question now."
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

    def __post_init__(self) -> None:
        if self.num_solvers < 1:
            raise ValueError(f"num_solvers must be at least 1, got {self.num_solvers}")
        if self.uncertainty_scale not in ("code", "paper"):
            raise ValueError(f"uncertainty_scale must be 'code' or 'paper', got {self.uncertainty_scale!r}")
        if not 0.0 <= self.band_low <= self.band_high <= 1.0:
            raise ValueError(f"need 0 <= band_low <= band_high <= 1, got {self.band_low}, {self.band_high}")
        if self.answer_fallback not in ("none", "last_number"):
            raise ValueError(f"answer_fallback must be 'none' or 'last_number', got {self.answer_fallback!r}")


def parse_question(text: str) -> Parsed:
    """The last ``<question>...</question>`` block and the last ``\\boxed{}`` of the text."""
    start = text.rfind("<question>")
    end = text.find("</question>", start + 1) if start >= 0 else -1
    if start < 0 or end < 0:
        return Parsed(False, error="no <question>...</question> block")
    question = text[start + len("<question>") : end].strip()
    if not question:
        return Parsed(False, error="empty <question> block")
    answer = extract_boxed(text)
    if answer is None:
        return Parsed(False, {"question": question}, error="no \\boxed{} answer after the question")
    return Parsed(True, {"question": question, "answer": answer})


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
            domain = episode.task.get("domain") or "mathematics"
            return (
                {"role": "system", "content": QUESTIONER_SYSTEM.format(domain=domain)},
                {"role": "user", "content": QUESTIONER_USER},
            )
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

    # --- parsing ---------------------------------------------------------------------------
    def parse(self, role: str, text: str) -> Parsed:
        if role == "questioner":
            return parse_question(text)
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
            vote = majority_vote(fields["answers"])
            fields["majority"] = vote.answer
            fields["agreement"] = vote.agreement
            fields["valid_agreement"] = vote.valid_agreement
        elif agents and role_of(agents[0]) == "judge":
            label = fields["label"]
            fields["correct"] = [bool(label) and equivalent(a, label) for a in fields["answers"]]

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
        return bool(fields.get("label")) and in_band(
            fields.get("valid_agreement", 0.0), self.config.band_low, self.config.band_high
        )

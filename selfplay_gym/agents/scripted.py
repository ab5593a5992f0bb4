"""Scripted agents: policies without a model, for baselines, references, tests and debugging.

Each one implements the Policy protocol (``generate(requests) -> list[Completion]``) and so
can play any role a mode has. They read ``request.info`` (the env's structured fields) where
an LLM would read the messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from selfplay_gym.envs.graders import GraderBudget, get_grader
from selfplay_gym.envs.spaces import SAMPLE_CHARSET
from selfplay_gym.envs.verify import majority_vote
from selfplay_gym.types import Completion, Request

QUESTION_TEMPLATE = "<question>{question}</question>\n\\boxed{{{answer}}}"
"""R-Zero's questioner format; pass another template for a mode with another format."""


def _boxed(answer: str | None, missing: str) -> Completion:
    return Completion(text=f"\\boxed{{{answer}}}" if answer else missing, finish_reason="scripted")


class FunctionPolicy:
    """The smallest policy: ``fn(request) -> str`` applied to each request."""

    def __init__(self, fn: Callable[[Request], str]):
        self.fn = fn

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [Completion(text=self.fn(r), finish_reason="scripted") for r in requests]


class DatasetQuestioner:
    """Asks questions from a fixed list, in a seeded random order, cycling when exhausted.

    ``problems`` holds objects with ``question`` and ``answer`` attributes (e.g.
    ``ArithmeticTask().problems(100, seed=0)``) or ``(question, answer)`` pairs.
    """

    def __init__(self, problems: Sequence[Any], template: str = QUESTION_TEMPLATE, seed: int = 0):
        if not problems:
            raise ValueError("DatasetQuestioner needs at least one problem")
        self.problems = [
            (p.question, p.answer) if hasattr(p, "question") else tuple(p) for p in problems
        ]
        if any(len(p) != 2 for p in self.problems):
            raise ValueError("problems must be Problem objects or (question, answer) pairs")
        self.template = template
        self.rng = np.random.default_rng(seed)
        self._order: list[int] = []

    def reseed(self, seed: int) -> None:
        """Restart the order from ``seed`` (the trainer calls this every iteration)."""
        self.rng = np.random.default_rng(seed)
        self._order = []

    def _next(self) -> tuple[str, str]:
        if not self._order:
            self._order = self.rng.permutation(len(self.problems)).tolist()
        return self.problems[self._order.pop()]

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for _ in requests:
            question, answer = self._next()
            text = self.template.format(question=question, answer=answer)
            out.append(Completion(text=text, finish_reason="scripted"))
        return out


class RandomTextAgent:
    """Random printable text; with probability ``boxed_prob`` it ends in ``\\boxed{<int>}``.

    A baseline and a fuzzer: with ``boxed_prob=0`` it is pure noise for every parser.
    """

    def __init__(self, seed: int = 0, max_length: int = 64, boxed_prob: float = 0.5, max_int: int = 20):
        self.rng = np.random.default_rng(seed)
        self.max_length = max_length
        self.boxed_prob = boxed_prob
        self.max_int = max_int
        self._chars = np.array(list(SAMPLE_CHARSET))

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for _ in requests:
            length = int(self.rng.integers(0, self.max_length + 1))
            text = "".join(self.rng.choice(self._chars, size=length).tolist())
            if self.rng.random() < self.boxed_prob:
                text += f" \\boxed{{{int(self.rng.integers(0, self.max_int + 1))}}}"
            out.append(Completion(text=text, finish_reason="scripted"))
        return out


class NoisySolver:
    """Answers with ``reference(question)`` with probability ``accuracy``, else off by 1..3.

    A solver of known competence, so that self-consistency and rewards vary in examples and
    tests. ``reference`` maps a question to its true answer (``selfplay_gym.envs.tasks.solve``);
    ``explain(question, answer, rng)``, if given, writes the whole solution text ending in
    ``\\boxed{answer}`` (e.g. ``selfplay_gym.envs.tasks.worked_solution``).
    """

    def __init__(
        self, reference: Callable[[str], str | None], accuracy: float = 0.6, seed: int = 0,
        explain: Callable[[str, str, np.random.Generator], str] | None = None,
    ):
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
        self.reference = reference
        self.accuracy = accuracy
        self.explain = explain
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            question = str(request.info.get("question") or "")
            truth = self.reference(question)
            if truth is not None and self.rng.random() >= self.accuracy:
                truth = _perturb(truth, int(self.rng.choice([-3, -2, -1, 1, 2, 3])))
            if truth is not None and self.explain is not None:
                out.append(Completion(self.explain(question, truth, self.rng), finish_reason="scripted"))
            else:
                out.append(_boxed(truth, "I do not know."))
        return out


def _perturb(answer: str, offset: int) -> str:
    """A wrong answer near the right one: an integer moved by ``offset``, else a changed string."""
    try:
        return str(int(answer) + offset)
    except ValueError:
        return f"{answer}+{abs(offset)}"


class MajorityJudge:
    """Names the majority answer among the solvers' (R-Zero's pseudo-label), from ``info["answers"]``.

    Answers are compared with ``equivalent_fn`` if given, else with the grader the mode names
    in ``info["grader"]`` (math_verify when it names none), so the label agrees with the
    mode's own clusters.
    """

    def __init__(self, equivalent_fn: Callable[[str, str], bool] | None = None,
                 budget_s: float = 10.0):
        self.equivalent_fn, self.budget_s = equivalent_fn, budget_s

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            if "answers" not in request.info:
                raise ValueError(
                    f"MajorityJudge plays {request.agent} but its info has no 'answers'; it can "
                    "only judge modes that publish the solvers' answers"
                )
            grader = self.equivalent_fn or get_grader(request.info.get("grader", "math_verify"))
            grader = GraderBudget(grader, self.budget_s)  # m answers: up to m(m-1)/2 checks
            vote = majority_vote(request.info["answers"], grader)
            out.append(_boxed(vote.answer, "No answer was given."))
        return out


class ReferenceJudge:
    """Names the true answer, ``reference(info["question"])``: supervised labels in a self-play env.

    With it, the same env trains the Solver on ground truth, the reference that self-play's
    gains are measured against.
    """

    def __init__(self, reference: Callable[[str], str | None]):
        self.reference = reference

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [
            _boxed(self.reference(str(r.info.get("question") or "")), "No reference answer.")
            for r in requests
        ]


def scripted_policy(name: str, task: Any = None) -> Any:
    """A scripted agent by name, for configs and the CLI: majority, reference, random or dataset.

    ``reference`` needs a task with ``answer(question)`` (ArithmeticTask has one); ``dataset``
    (a questioner) a task with ``problems(n, seed)`` and ``held_out()``, whose questions it
    never asks.
    """
    if name == "dataset":
        if not callable(getattr(task, "problems", None)):
            raise ValueError(f"a dataset questioner needs a task with problems(n, seed); {task!r} has none")
        held_out = {p.question for p in task.held_out()}
        return DatasetQuestioner([p for p in task.problems(4000, seed=7) if p.question not in held_out])
    if name == "majority":
        return MajorityJudge()
    if name == "random":
        return RandomTextAgent()
    if name == "reference":
        if not callable(getattr(task, "answer", None)):
            raise ValueError(f"a reference judge needs a task with answer(question); {task!r} has none")
        return ReferenceJudge(task.answer)
    raise ValueError(f"unknown scripted agent {name!r}; choose majority, reference, random or dataset")

"""Scripted DARC experts: the questioner that writes the 7-key JSON over a document's numbers,
and the solver whose accuracy falls with the question's operations."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from selfplay_gym.agents.experts_common import OFFSETS, Seeded, done, expression_in, wrong_answer
from selfplay_gym.envs.tasks import solve, worked_solution
from selfplay_gym.types import Completion, Request

_ANSWER_TYPE = re.compile(r"answer_type: (\w+)\.")
_NUMBER = re.compile(r"(?<![\w.])\d{1,4}(?![\w]|\.\d)")
_OPTION = re.compile(r"^([A-J])\. (-?\d+)\s*$", re.MULTILINE)
_CLAIM = re.compile(r"equal to (-?\d+)")
TYPES = ("integer", "float", "categorical", "boolean")
"""Answer types the DARC experts write in their own form; any other is written as integer."""


def _steps(expression: str) -> int:
    """Binary operations in an expression (at least 1)."""
    return max(1, len(re.findall(r"[\d)]\s*[-+*]", expression)))


def _answer_type(request: Request) -> str:
    info = request.info
    task = info.get("task") or {}
    found = info.get("answer_type") or task.get("answer_type")
    if not found:
        text = "\n".join(m.get("content", "") for m in request.messages)
        match = _ANSWER_TYPE.search(text)
        found = match.group(1) if match else "integer"
    return found if found in TYPES else "integer"


class DarcQuestioner(Seeded):
    """DARC's Questioner: an arithmetic question over the document's numbers, one operation per
    difficulty level, as the strict 7-key JSON. A document with fewer than two numbers gets a
    question from ``problems`` instead."""

    def __init__(self, problems: Sequence[Any], seed: int = 0):
        super().__init__(seed)
        self.problems = [p.question if hasattr(p, "question") else p[0] for p in problems]
        self.problems = [q for q in self.problems if solve(q) is not None]

    def _expression(self, document: str, difficulty: int) -> str:
        numbers = [m.group(0) for m in _NUMBER.finditer(document)]
        if len(numbers) < 2:
            if not self.problems:
                return f"{int(self.rng.integers(10, 100))}+{int(self.rng.integers(10, 100))}"
            return self.problems[int(self.rng.integers(len(self.problems)))]
        k = min(len(numbers), max(1, difficulty) + 1)
        picked = sorted(self.rng.choice(len(numbers), size=k, replace=False).tolist())
        ops = ["+"] + [str(self.rng.choice(["+", "-"])) for _ in range(k - 2)]
        text = numbers[picked[0]]
        for op, i in zip(ops, picked[1:], strict=True):
            text += op + numbers[i]
        return text

    def question(self, request: Request) -> str:
        task = request.info.get("task") or {}
        difficulty = task.get("difficulty") if isinstance(task.get("difficulty"), int) else 1
        expression = self._expression(str(task.get("document") or ""), difficulty)
        value = int(solve(expression))
        answer_type, steps = _answer_type(request), _steps(expression)
        question, answer = f"What is {expression}?", value
        if answer_type == "float":
            answer = float(value)
        elif answer_type == "categorical":
            values = [value + d for d in self.rng.choice(OFFSETS, size=2, replace=False).tolist()]
            values = sorted([value, *values])
            letters = "ABC"
            question += "".join(f"\n{letter}. {v}" for letter, v in zip(letters, values, strict=True))
            answer = letters[values.index(value)]
        elif answer_type == "boolean":
            claim = value if self.rng.random() < 0.5 else value + int(self.rng.choice(OFFSETS))
            question = f"Is {expression} equal to {claim}?"
            answer = "true" if claim == value else "false"
        return json.dumps({
            "analysis": f"{steps} step{'s' if steps > 1 else ''}.",
            "question": question,
            "intermediate_results": {},
            "answer": answer,
            "solving_time_estimate": steps,
            "required_concepts": ["arithmetic"],
            "potential_errors": ["sign slip"],
        })

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [done(self.question(r)) for r in requests]


class DarcSolver(Seeded):
    """DARC's Solver (any view): right with probability ``accuracy ** steps``, steps = the
    question's operations (``per_step=False``: ``accuracy``), else off by 1..3; the answer is
    written in the question's answer type after a short worked solution."""

    def __init__(self, accuracy: float = 0.7, seed: int = 0, per_step: bool = True):
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
        super().__init__(seed)
        self.accuracy, self.per_step = accuracy, per_step

    def answer(self, request: Request) -> str:
        question = str(request.info.get("question") or "")
        expression = expression_in(question)
        if expression is None:
            return "I cannot read the question. \\boxed{0}"
        value = solve(expression)
        p = self.accuracy ** _steps(expression) if self.per_step else self.accuracy
        right = self.rng.random() < p
        answer_type = _answer_type(request)
        if answer_type == "categorical":
            options = dict(_OPTION.findall(question))
            letters = sorted(options)
            if options:
                correct = next((k for k, v in options.items() if v == value), letters[0])
                others = [k for k in letters if k != correct]
                letter = correct if right or not others else str(self.rng.choice(others))
                return f"{expression}={options[letter]}, so {letter}. \\boxed{{{letter}}}"
        if answer_type == "boolean":
            claim = _CLAIM.search(question)
            if claim:
                truth = claim.group(1) == value
                said = truth if right else not truth
                shown = value if right else (
                    claim.group(1) if said else wrong_answer(value, self.rng))
                word = "true" if said else "false"
                return f"{expression}={shown}, so {word}. \\boxed{{{word}}}"
        answer = value if right else wrong_answer(value, self.rng)
        if answer_type == "float":
            answer += ".0"
        return worked_solution(expression, answer, self.rng)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [done(self.answer(r)) for r in requests]

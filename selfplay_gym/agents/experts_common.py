"""What the scripted experts of every mode share: completions, seeding, nearby wrong answers,
and reading the arithmetic a question asks about."""

from __future__ import annotations

import re

import numpy as np

from selfplay_gym.envs.tasks import solve
from selfplay_gym.types import Completion

OFFSETS = (-3, -2, -1, 1, 2, 3)
"""How far a wrong integer answer lies from the right one."""


def done(text: str) -> Completion:
    return Completion(text=text, finish_reason="scripted")


def agent_index(agent: str) -> int:
    return int(agent.rsplit("_", 1)[1])


def wrong_answer(answer: str, rng: np.random.Generator) -> str:
    """A nearby wrong answer: an integer moved by 1..3 (a float keeps its ".0"), else changed."""
    offset = int(rng.choice(OFFSETS))
    if re.fullmatch(r"-?\d+", answer):
        return str(int(answer) + offset)
    if re.fullmatch(r"-?\d+\.0", answer):
        return f"{int(answer[:-2]) + offset}.0"
    return f"{answer}{abs(offset)}"


class Seeded:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


_CANDIDATE = re.compile(r"[-+*()\d\s]+")
_BINARY = re.compile(r"\d\s*\)?\s*[-+*]\s*\(?\s*\d")


def expression_in(question: str) -> str | None:
    """The arithmetic expression a question asks about ("What is 45+12?" -> "45+12"), else None.

    Only the first line counts (later lines may list options); the longest run of digits,
    operators and parentheses with a binary operation that ``solve`` accepts wins.
    """
    line = question.strip().split("\n", 1)[0]
    found = [c.strip() for c in _CANDIDATE.findall(line)]
    found = [c for c in found if _BINARY.search(c) and solve(c) is not None]
    return max(found, key=len) if found else None

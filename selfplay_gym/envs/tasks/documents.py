"""A synthetic corpus for document-grounded modes (DARC, ALIVE) that a tiny model can read.

Each document is a few sentences about people and counted things, with every number stated
and some stated twice (a total next to its parts), so a question can combine facts and a
masked number can be recovered from context. Built from a seed: no file, no download. Real
corpora go through ``CorpusSource`` with the same modes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from selfplay_gym.envs.tasks.base import TaskItem

NAMES = ("Ana", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea")
THINGS = ("apples", "stamps", "coins", "books", "shells", "cards", "marbles", "pens")


def make_document(rng: np.random.Generator) -> str:
    """Three to four sentences: two holdings, their total, and a change with its result."""
    first, second = rng.choice(len(NAMES), size=2, replace=False)
    a_name, b_name = NAMES[first], NAMES[second]
    thing = THINGS[int(rng.integers(len(THINGS)))]
    a, b = (int(x) for x in rng.integers(10, 100, size=2))
    moved = int(rng.integers(1, min(a, 20) + 1))
    sentences = [
        f"{a_name} has {a} {thing}.",
        f"{b_name} has {b} {thing}.",
        f"Together they have {a + b} {thing}.",
        f"{a_name} gives {moved} {thing} to {b_name}, so {b_name} now has {b + moved} {thing}.",
    ]
    return " ".join(sentences)


@dataclass
class WordProblemCorpus:
    """Implements TaskSource: one generated document and a difficulty level per episode."""

    difficulties: tuple[int, ...] = (1, 2, 3)
    name: str = "word_problems"
    domain: str = "short stories about people counting things"

    def __post_init__(self) -> None:
        if not self.difficulties or any(d < 1 for d in self.difficulties):
            raise ValueError(f"difficulties must be positive levels, got {self.difficulties}")

    def sample(self, rng: np.random.Generator) -> TaskItem:
        document = make_document(rng)
        difficulty = int(self.difficulties[int(rng.integers(len(self.difficulties)))])
        return TaskItem(
            task_id=f"story-{zlib.crc32(document.encode()):08x}-d{difficulty}",
            domain=self.domain,
            difficulty=difficulty,
            document=document,
        )

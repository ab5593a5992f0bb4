"""What an episode is conditioned on, and the protocol every source of such items follows.

Modes never know where questions come from: they ask a ``TaskSource`` for a ``TaskItem``
with their own seeded generator, so one seed reproduces one episode whatever the source.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class TaskItem:
    """What one episode is conditioned on.

    ``reference`` is ground truth for evaluation only: self-play rewards never read it, so a
    run that beats the reference judge did so without ever seeing the answers.
    """

    task_id: str
    domain: str
    difficulty: int | None = None
    document: str | None = None
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain JSON-able dict, the form an ``Episode`` stores under ``task``."""
        return dataclasses.asdict(self)


@runtime_checkable
class TaskSource(Protocol):
    """Anything that hands out task items; all randomness comes from the caller's generator."""

    name: str

    def sample(self, rng: np.random.Generator) -> TaskItem: ...

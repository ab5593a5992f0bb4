"""A growing buffer of (program, input, output) triplets: Absolute Zero's task source.

AZR starts from one seed triplet, the identity function on "Hello World", and adds every
valid proposal to the buffer; each new proposal is conditioned on K references drawn from it
(``num_references``, the code's ``io_n`` = 6), and each induction proposal on one of its
programs. So the buffer is the task source of the ``azr`` mode: ``sample`` hands out the next
task type (deduction, abduction, induction in turn, so a batch holds equal shares, as AZR's
per-type batches do) with references drawn by the caller's generator, and the env hands every
finished episode back to ``record_episode``, which keeps the mode's new ``triplet``.

Its state (the triplets and the task-type cursor) is part of a checkpoint (``state_dict``),
so a resumed run proposes from the buffer the killed one had.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from selfplay_gym.envs.tasks.base import TaskItem

TASK_TYPES: tuple[str, ...] = ("deduction", "abduction", "induction")
"""AZR's three task types: program + input -> output, program + output -> input, and
input/output pairs -> program (the code's code_o, code_i, code_f)."""


@dataclass(frozen=True)
class Triplet:
    """A program defining ``f``, an input (the source text of ``f``'s arguments) and its
    output (the ``repr`` of what ``f`` returned)."""

    program: str
    input: str
    output: str

    def to_dict(self) -> dict[str, str]:
        return {"program": self.program, "input": self.input, "output": self.output}


IDENTITY = Triplet("def f(a):\n    return a\n", "'Hello World'", "'Hello World'")
"""AZR's seed (azr_ray_trainer.py ``_init_seed_dataset``): the identity on "Hello World"."""


@dataclass(frozen=True)
class ProgramItem(TaskItem):
    """One episode's task type and the triplets its proposer is conditioned on."""

    task_type: str = "deduction"
    references: tuple[dict[str, str], ...] = ()


@dataclass
class ProgramBuffer:
    """Triplets to condition proposals on; grows with every valid proposal (``record_episode``)."""

    seed: tuple[Triplet, ...] = (IDENTITY,)
    task_types: tuple[str, ...] = TASK_TYPES
    num_references: int = 6
    capacity: int = 4096
    """The oldest triplets leave first beyond this many (AZR keeps all)."""
    name: str = "programs"
    DOMAIN: ClassVar[str] = "Python programs: deduction, abduction and induction"
    triplets: list[Triplet] = field(default_factory=list, repr=False)
    position: int = 0
    """Episodes handed out so far: episode k plays ``task_types[k % len(task_types)]``."""

    def __post_init__(self) -> None:
        self.task_types = tuple(self.task_types)
        unknown = [t for t in self.task_types if t not in TASK_TYPES]
        if not self.task_types or unknown:
            raise ValueError(f"task_types must be a non-empty subset of {TASK_TYPES}, got "
                             f"unknown {unknown!r}")
        if self.num_references < 1 or self.capacity < 1:
            raise ValueError(f"num_references and capacity must be >= 1, got "
                             f"{self.num_references}, {self.capacity}")
        if not self.seed:
            raise ValueError("a ProgramBuffer needs at least one seed triplet (AZR: IDENTITY)")
        if not self.triplets:
            self.triplets = list(self.seed)

    def sample(self, rng: np.random.Generator) -> ProgramItem:
        task_type = self.task_types[self.position % len(self.task_types)]
        self.position += 1
        k = min(self.num_references, len(self.triplets))
        picked = rng.choice(len(self.triplets), size=k, replace=False)
        references = tuple(self.triplets[int(i)].to_dict() for i in picked)
        return ProgramItem(task_id=f"azr-{task_type}-{self.position - 1}", domain=self.DOMAIN,
                           task_type=task_type, references=references)

    def add(self, triplets: Iterable[Triplet]) -> None:
        """Keep new triplets (a repeat of a kept one is dropped), the newest ``capacity``."""
        known = set(self.triplets)
        for triplet in triplets:
            if triplet not in known:
                self.triplets.append(triplet)
                known.add(triplet)
        del self.triplets[: max(0, len(self.triplets) - self.capacity)]

    def record_episode(self, episode: Any) -> None:
        """The env's hand-back of a finished episode: its valid proposal joins the buffer."""
        found = episode.fields.get("triplet")
        if found:
            self.add([Triplet(**found)])

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "triplets": [t.to_dict() for t in self.triplets]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.position = int(state["position"])
        self.triplets = [Triplet(**t) for t in state["triplets"]] or list(self.seed)

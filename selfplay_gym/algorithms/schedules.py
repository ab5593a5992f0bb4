"""Which roles train on which iteration. A schedule is any object with ``roles(iteration)``.

Self-play methods differ less in their losses than in who learns when: R-Zero alternates a
Challenger phase against a frozen Solver with a Solver phase; AERO staggers its roles; DARC
trains the Questioner first and the Solver afterwards. Write your own in three lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class Schedule(Protocol):
    def roles(self, iteration: int) -> frozenset[str]:
        """The roles whose adapters are updated on this iteration (0-based)."""
        ...


@dataclass(frozen=True)
class Joint:
    """Every listed role trains on every iteration."""

    train: tuple[str, ...]

    def roles(self, iteration: int) -> frozenset[str]:
        return frozenset(self.train)


@dataclass(frozen=True)
class Alternating:
    """Phases of fixed length in a cycle, e.g. R-Zero's ((("questioner",), 5), (("solver",), 15)).

    Each phase trains its roles for its number of iterations while every other role is frozen;
    then the next phase starts, and after the last the cycle repeats (R-Zero's co-evolution).
    """

    phases: tuple[tuple[tuple[str, ...], int], ...]

    def __post_init__(self) -> None:
        if not self.phases or any(length < 1 for _, length in self.phases):
            raise ValueError("Alternating needs phases of positive length, e.g. ((('solver',), 3),)")

    def roles(self, iteration: int) -> frozenset[str]:
        cycle = sum(length for _, length in self.phases)
        step = iteration % cycle
        for roles, length in self.phases:
            if step < length:
                return frozenset(roles)
            step -= length
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class TwoStage:
    """DARC: the first roles for ``first_iterations``, then the second roles for the rest."""

    first: tuple[str, ...]
    first_iterations: int
    second: tuple[str, ...]

    def roles(self, iteration: int) -> frozenset[str]:
        return frozenset(self.first if iteration < self.first_iterations else self.second)


@dataclass(frozen=True)
class Staggered:
    """``leading`` roles train from the start; ``lagging`` roles join ``lag`` iterations later.

    The role-timing half of AERO's Staggered Training Strategy; the one-round data lag and the
    replay pool are ``algorithms.replay.StaggeredReplay`` (the build step pairs the two).
    """

    leading: tuple[str, ...]
    lagging: tuple[str, ...]
    lag: int = 1

    def roles(self, iteration: int) -> frozenset[str]:
        roles = set(self.leading)
        if iteration >= self.lag:
            roles |= set(self.lagging)
        return frozenset(roles)


def rzero_schedule(questioner_steps: int = 5, solver_steps: int = 15) -> Alternating:
    """R-Zero's loop: Challenger steps against a frozen Solver, then Solver steps (paper §4)."""
    return Alternating(((("questioner",), questioner_steps), (("solver",), solver_steps)))


def schedule_from_name(name: str, train_roles: Sequence[str], **kwargs: int) -> Schedule:
    """The CLI's view over ``train_roles`` (in order): "joint", "alternating", or "staggered"
    (the first role leads, the others join one iteration later, as in AERO)."""
    if name == "joint":
        return Joint(tuple(train_roles))
    if name == "alternating":
        steps = kwargs.get("phase_iterations", 1)
        return Alternating(tuple(((role,), steps) for role in train_roles))
    if name == "staggered":
        return Staggered(tuple(train_roles[:1]), tuple(train_roles[1:]), lag=1)
    raise ValueError(f"unknown schedule {name!r}; choose 'joint', 'alternating' or 'staggered'")

"""Which samples an iteration trains on, when that is not simply "this iteration's".

AERO's Staggered Training Strategy trains round r on the Generator's data of round r, the
Solver's and Refiner's data of round r-1 (one round behind), and a replay of older Solver and
Refiner data (rounds <= r-2). The trainer calls ``select`` once per iteration with the fresh
samples; ``state_dict``/``load_state_dict`` put the held samples into checkpoints, so a resumed
run trains on exactly what the uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from selfplay_gym.types import Sample


class SampleSelector(Protocol):
    def select(self, iteration: int, samples: list[Sample]) -> list[Sample]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


@dataclass
class StaggeredReplay:
    """Lagging roles' samples train one iteration late, plus a replay of older ones.

    ``replay_size`` samples per iteration are drawn from the pool of lagging samples at least
    two iterations old, ``replay_shares`` of them per role (AERO: 500, solver 0.7 / refiner
    0.3 / generator 0). Whole groups are drawn (a group shares its baseline), so the count
    is approximate. ``lag=0`` is AERO's non-staggered ablation (replay from <= r-1).
    """

    lagging: tuple[str, ...] = ("solver", "refiner")
    replay_size: int = 500
    replay_shares: Mapping[str, float] = field(
        default_factory=lambda: {"solver": 0.7, "refiner": 0.3}
    )
    lag: int = 1
    pool_limit: int = 20_000
    """The pool keeps the newest samples up to this many (memory and checkpoint size)."""
    seed: int = 0
    pending: list[list[Sample]] = field(default_factory=list)
    """Lagging samples of the last ``lag`` iterations, oldest first."""
    pool: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.lag not in (0, 1) or self.replay_size < 0:
            raise ValueError(f"StaggeredReplay needs lag 0 or 1 and replay_size >= 0, got {self}")

    def select(self, iteration: int, samples: list[Sample]) -> list[Sample]:
        leading = [s for s in samples if s.role not in self.lagging]
        lagging = [s for s in samples if s.role in self.lagging]
        self.pending.append(lagging)
        due = self.pending.pop(0) if len(self.pending) > self.lag else []
        replay = self._draw(np.random.default_rng((self.seed, iteration)))
        self.pool = (self.pool + due)[-self.pool_limit :]
        return leading + due + replay

    def _draw(self, rng: np.random.Generator) -> list[Sample]:
        """Whole groups, in random order, until each role's share of replay_size is filled."""
        groups: dict[str, list[Sample]] = {}
        for sample in self.pool:
            groups.setdefault(sample.group_id, []).append(sample)
        keys = list(groups)
        drawn: list[Sample] = []
        for role, share in self.replay_shares.items():
            quota = round(share * self.replay_size)
            for index in rng.permutation(len(keys)):
                group = groups[keys[index]]
                if quota <= 0:
                    break
                if group[0].role == role:
                    drawn.extend(group)
                    quota -= len(group)
        return drawn

    def state_dict(self) -> dict[str, Any]:
        return {"pending": [[dataclasses.asdict(s) for s in block] for block in self.pending],
                "pool": [dataclasses.asdict(s) for s in self.pool]}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.pending = [[Sample(**s) for s in block] for block in state.get("pending", [])]
        self.pool = [Sample(**s) for s in state.get("pool", [])]


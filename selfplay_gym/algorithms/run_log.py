"""What a run leaves behind: metrics.jsonl, a readable episode log, episodes.jsonl, TensorBoard.

On resume, lines from iterations after the checkpoint are dropped first, so an interrupted
iteration never appears twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from selfplay_gym.envs.episode_log import format_episode
from selfplay_gym.types import Episode


def _truncate_jsonl(path: Path, keep_through: int) -> None:
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in lines if json.loads(line).get("iteration", -1) <= keep_through]
    path.write_text("".join(line + "\n" for line in kept))


class RunLog:
    """Append-only run outputs under ``output_dir``."""

    def __init__(self, output_dir: str | Path, resume_after: int | None = None, tensorboard: bool = True):
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
        self.writer = _tensorboard_writer(self.dir) if tensorboard else None

    def metrics(self, row: Mapping[str, Any]) -> None:
        with self.metrics_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.writer is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)) and key != "iteration":
                    self.writer.add_scalar(key, value, row["iteration"])
            self.writer.flush()

    def episodes(self, iteration: int, episodes: Sequence[Episode], readable: int) -> None:
        with self.episodes_path.open("a") as f:
            for episode in episodes:
                f.write(json.dumps({"iteration": iteration, **episode.to_dict()}, ensure_ascii=False) + "\n")
        if readable:
            with self.log_path.open("a") as f:
                f.write(f"##### iteration {iteration}\n")
                for episode in episodes[:readable]:
                    f.write(format_episode(episode) + "\n\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _tensorboard_writer(directory: Path):
    """A SummaryWriter when tensorboard is installed; metrics.jsonl is always written."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(directory / "tensorboard"))

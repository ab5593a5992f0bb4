"""Pictures of a run: learning curves and how self-consistency moves toward R-Zero's band.

Reads the files a run writes (metrics.jsonl, episodes.jsonl), so it works on any run
directory after the fact: ``python -m selfplay_gym.plots runs/demo``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a run's JSONL file (``run_log.read_rows``: a torn last line is dropped)."""
    from selfplay_gym.algorithms.run_log import read_rows

    return read_rows(Path(path))


def plot_learning_curves(rows: Sequence[dict], path: Path) -> Path:
    """Held-out accuracy (left) and mean reward per role (right) per iteration."""
    fig, (acc_ax, reward_ax) = plt.subplots(1, 2, figsize=(11, 4))
    eval_rows = [r for r in rows if any(k.startswith("eval/") for k in r)]
    for key in sorted({k for r in eval_rows for k in r if k.startswith("eval/") and "accuracy" in k}):
        points = [(r["iteration"] + 1, r[key]) for r in eval_rows if key in r]
        acc_ax.plot(*zip(*points, strict=True), marker="o", label=key.removeprefix("eval/"))
    acc_ax.set(title="held-out accuracy", xlabel="iteration (0 = before training)", ylabel="accuracy")
    if acc_ax.lines:  # none without --train.eval-every
        acc_ax.legend(fontsize=8)
    train_rows = [r for r in rows if r.get("iteration", -1) >= 0]
    for key in sorted({k for r in train_rows for k in r if k.startswith("reward/") and k.endswith("/mean")}):
        points = [(r["iteration"] + 1, r[key]) for r in train_rows if key in r]
        reward_ax.plot(*zip(*points, strict=True), marker=".", label=key.split("/")[1])
    reward_ax.set(title="mean reward per role", xlabel="iteration", ylabel="reward (mean over samples)")
    if reward_ax.lines:
        reward_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_consistency(episodes: Sequence[dict], path: Path, band: tuple[float, float] = (0.3, 0.8)) -> Path:
    """Per iteration, the distribution of the Solver's self-consistency on generated questions.

    R-Zero's Challenger is rewarded for questions near 50% agreement (dashed line); the dotted
    lines bound the consistency filter that decides which questions the Solver trains on.
    """
    by_iteration: dict[int, list[float]] = {}
    group = 10
    for episode in episodes:
        agreement = episode.get("fields", {}).get("agreement")
        if agreement is not None:
            by_iteration.setdefault(episode["iteration"], []).append(agreement)
            group = len(episode["fields"].get("answers") or ()) or group
    fig, ax = plt.subplots(figsize=(8, 4))
    if by_iteration:
        iterations = sorted(by_iteration)
        bins = (np.arange(group + 2) - 0.5) / group  # one bin per possible vote count k/group
        counts = np.array([np.histogram(by_iteration[i], bins=bins)[0] for i in iterations])  # [I, 10]
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(shares.T, origin="lower", aspect="auto", cmap="viridis",
                          extent=(iterations[0] - 0.5, iterations[-1] + 0.5, bins[0], bins[-1]))
        fig.colorbar(image, ax=ax, label="share of questions")
    for edge in band:
        ax.axhline(edge, color="white", linestyle=":", linewidth=1)
    ax.axhline(0.5, color="white", linestyle="--", linewidth=1)
    ax.set(title="Solver self-consistency on generated questions", xlabel="iteration",
           ylabel="majority agreement p̂")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_run(run_dir: str | Path) -> list[Path]:
    run_dir = Path(run_dir)
    return [
        plot_learning_curves(read_jsonl(run_dir / "metrics.jsonl"), run_dir / "learning_curves.png"),
        plot_consistency(read_jsonl(run_dir / "episodes.jsonl"), run_dir / "self_consistency.png"),
    ]


if __name__ == "__main__":
    for written in plot_run(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"):
        print(written)

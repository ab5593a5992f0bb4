"""kill -9 at a random point, ``--resume``, and the run ends where the uninterrupted one ends:
the same adapters bit for bit, and every jsonl file holding each iteration exactly once.

One real CLI process per run on the embedded tiny model: R-Zero (alternating roles), AERO (the
staggered recipe with its replay pool) and DARC killed in stage 2 (curriculum cursor).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from selfplay_gym.algorithms.run_log import read_rows

ROOT = Path(__file__).resolve().parents[2]
ITERATIONS = 4
CASES = {
    # mode: (extra flags, the directory whose metrics the kill watches)
    "rzero": ((), "."),
    "aero": ((), "."),
    "darc": (("--rollout.max-new-tokens", "120", "--stage-iterations", "2"), "stage2"),
}


def command(mode: str, output: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "selfplay_gym.cli", "train", "--mode", mode,
            "--train.iterations", str(ITERATIONS), "--rollout.num-envs", "4",
            "--rollout.num-solvers", "4", "--rollout.max-new-tokens", "24",
            "--train.output-dir", str(output), "--train.no-progress", *CASES[mode][0], *extra]


def run(args: list[str]) -> None:
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]


def rows_in(path: Path) -> int:
    if not path.exists():
        return 0
    return path.read_text(encoding="utf-8", errors="replace").count("\n")


def kill_during(args: list[str], watched: Path, after_rows: int, delay: float) -> None:
    """Start the run, and SIGKILL it ``delay`` seconds after ``watched`` holds ``after_rows``."""
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while rows_in(watched) < after_rows and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()


def adapters(run_dir: Path) -> dict[str, dict]:
    """Every adapter tensor of every final checkpoint under run_dir (stages included)."""
    found = {}
    for weights in sorted(run_dir.rglob("adapter_model.safetensors")):
        if "live-adapters" not in weights.parts:
            found[str(weights.relative_to(run_dir))] = load_file(weights)
    return found


def iteration_rows(run_dir: Path) -> dict[str, list]:
    """Per jsonl file: (iteration, episode id or None) for every row, in file order."""
    return {str(path.relative_to(run_dir)): [(r["iteration"], r.get("episode_id")) for r in read_rows(path)]
            for path in sorted(run_dir.rglob("*.jsonl"))}


@pytest.mark.parametrize("mode", list(CASES))
def test_a_killed_run_resumes_to_the_uninterrupted_result(mode, tiny_dir, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    run(command(mode, straight))
    draw = random.Random()
    # after 1..3 rows (DARC: stage 2's first of two), then up to 1.5 s into the next iteration
    after, delay = draw.randint(1, 1 if mode == "darc" else ITERATIONS - 1), draw.uniform(0, 1.5)
    watched = killed / CASES[mode][1] / "metrics.jsonl"
    kill_during(command(mode, killed), watched, after, delay)
    run(command(mode, killed, "--resume"))

    expected, got = adapters(straight), adapters(killed)
    assert expected.keys() == got.keys() and expected, (sorted(expected), sorted(got))
    for name, tensors in expected.items():
        bad = [k for k in tensors if not (tensors[k] == got[name][k]).all()]
        assert not bad, f"{mode} killed after {after} rows + {delay:.2f} s: {name} differs in {bad[:3]}"
    expected_rows, got_rows = iteration_rows(straight), iteration_rows(killed)
    assert got_rows.keys() == expected_rows.keys()
    for name, rows in expected_rows.items():
        first = next((i for i, (a, b) in enumerate(zip(rows, got_rows[name], strict=False)) if a != b),
                     min(len(rows), len(got_rows[name])))
        assert got_rows[name] == rows, (f"{name}: {len(got_rows[name])} rows, expected {len(rows)}; "
                                        f"first difference at row {first}: {got_rows[name][first:first + 3]}"
                                        f" vs {rows[first:first + 3]}")

"""Every example runs as a user would run it: a subprocess with a small budget (CleanRL's habit)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_scripted_rzero_prints_episodes_and_writes_jsonl(tmp_path):
    out = tmp_path / "episodes.jsonl"
    stdout = run("examples/scripted_rzero.py", "--episodes", "8", "--solvers", "5", "--out", str(out))
    assert "=== episode" in stdout and "questioner reward mean" in stdout
    assert "INVALID" in stdout, "the example shows the format penalty on junk questions"
    lines = out.read_text().splitlines()
    assert len(lines) == 8
    assert all(json.loads(line)["mode"] == "rzero" for line in lines)

"""The benchmarks' pure helpers: result lines, result tables, the turn-taking baton."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

common = pytest.importorskip("common")


def test_result_line_formats_floats_and_keeps_one_token_per_value():
    line = common.result_line({"size": "tiny", "ratio": 0.81234, "steps": 8, "cpu": "AMD EPYC"})
    assert line == "RESULT size=tiny ratio=0.812 steps=8 cpu=AMD_EPYC"
    assert all("=" in part for part in line.split()[1:])


def test_append_row_writes_the_header_once(tmp_path):
    for value in (1, 2):
        path = common.append_row("demo", "Demo", "About it.", ("a", "b"), (value, "x"), tmp_path)
    lines = path.read_text().splitlines()
    assert lines[0] == "# Demo"
    assert lines.count("| a | b |") == 1 and lines.count("|---|---|") == 1
    assert lines[-2:] == ["| 1 | x |", "| 2 | x |"]


def test_append_row_rejects_a_row_of_the_wrong_width(tmp_path):
    with pytest.raises(ValueError, match="2 columns but 1 values"):
        common.append_row("demo", "Demo", "", ("a", "b"), (1,), tmp_path)


def test_median_of_nothing_is_nan():
    assert common.median([3.0, 1.0, 2.0]) == 2.0
    assert common.median([]) != common.median([])


def test_peak_rss_is_at_least_the_current_rss():
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux /proc")
    assert common.peak_rss_mb() >= common.current_rss_mb() > 0


def test_baton_alternates_two_threads_strictly():
    baton, order = common.Baton(first="a"), []

    def play(me, other):
        baton.wait_turn(me)
        for step in range(3):
            order.append((me, step))
            baton.pass_to(me, other)
        baton.finish(me, other)

    threads = [threading.Thread(target=play, args=p) for p in (("a", "b"), ("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert [who for who, _ in order] == ["a", "b"] * 3

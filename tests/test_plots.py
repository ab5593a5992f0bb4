"""Run plots are drawn from the files a run writes."""

from __future__ import annotations

import json

from selfplay_gym.plots import plot_run


def test_plot_run_draws_both_figures(tmp_path):
    rows = [{"iteration": -1, "eval/greedy_accuracy": 0.7, "eval/sampled_accuracy": 0.5}] + [
        {"iteration": i, "reward/solver/mean": 0.6 + i / 100, "reward/questioner/mean": 0.2}
        for i in range(3)
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    episodes = [{"iteration": i, "fields": {"agreement": a, "answers": ["1"] * 8}}
                for i in range(3) for a in (0.25, 0.5, 0.875)]
    (tmp_path / "episodes.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    written = plot_run(tmp_path)
    assert [p.name for p in written] == ["learning_curves.png", "self_consistency.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)

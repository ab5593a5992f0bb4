"""Run logs take any text an agent writes: lone surrogates, NUL, line separators, 100 kB."""

from __future__ import annotations

import json

from selfplay_gym.algorithms.run_log import RunLog, read_rows
from selfplay_gym.eval.records import append_records, read_records
from selfplay_gym.types import Episode, Turn, json_line

HOSTILE = ["\ud800", "a\udfffb", "\x00", "line\x85break", "para\u2029graph", "sep\u2028arator",
           "中文", "{" * 5_000, "x" * 100_000]


def episode(iteration: int) -> Episode:
    turns = [Turn(f"solver_{i}", "solver", text, {"answer": text}, True) for i, text in enumerate(HOSTILE)]
    return Episode(mode="rzero", episode_id=f"e{iteration}", seed=iteration, turns=turns,
                   fields={"question": "\ud800?"}, rewards={"solver_0": 1.0})


def test_episode_logs_write_hostile_text_and_read_it_back_exactly(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    for iteration in range(2):
        log.metrics({"iteration": iteration})
        log.episodes(iteration, [episode(iteration)], readable=1)
    rows = read_rows(tmp_path / "episodes.jsonl")
    assert [Episode.from_dict({k: v for k, v in r.items() if k != "iteration"}) for r in rows] == \
        [episode(0), episode(1)]
    readable = (tmp_path / "episodes.log").read_text(encoding="utf-8")
    assert "\\ud800" in readable and "中文" in readable  # escaped where UTF-8 cannot hold it
    RunLog(tmp_path, resume_after=0, tensorboard=False)  # a resume rewrites both files
    assert [Episode.from_dict({k: v for k, v in r.items() if k != "iteration"})
            for r in read_rows(tmp_path / "episodes.jsonl")] == [episode(0)]
    assert "##### iteration 1" not in (tmp_path / "episodes.log").read_text(encoding="utf-8")


def test_json_lines_stay_readable_utf8_unless_a_surrogate_forces_escapes():
    assert json_line({"t": "中文\x85"}) == '{"t": "中文\x85"}\n'
    assert json_line({"t": "中\ud800"}) == '{"t": "\\u4e2d\\ud800"}\n'
    assert json.loads(json_line({"t": "a\udfffb"})) == {"t": "a\udfffb"}


def test_eval_records_keep_samples_with_hostile_text(tmp_path):
    path = tmp_path / "records.jsonl"
    records = [{"benchmark": "b", "id": str(i), "samples": [text]} for i, text in enumerate(HOSTILE)]
    append_records(path, records)
    assert list(read_records(path).values()) == records

"""The run remembers itself: run_config.json holds the config, versions and commit, and
``selfplay-gym train --resume --train.output-dir DIR`` continues from it."""

from __future__ import annotations

import dataclasses
import json

from selfplay_gym.cli import main
from selfplay_gym.config import RunConfig
from selfplay_gym.plots import read_jsonl
from selfplay_gym.run_record import RUN_RECORD, recorded_config


def test_resume_without_a_config_file_continues_from_the_record(random_model_dir, tmp_path, capsys):
    out = str(tmp_path / "run")
    assert main(["train", "--model.name", str(random_model_dir), "--model.lora-r", "4",
                 "--train.iterations", "1", "--train.learning-rate", "3e-4",
                 "--rollout.num-envs", "2", "--rollout.num-solvers", "2",
                 "--rollout.max-new-tokens", "8", "--train.output-dir", out,
                 "--train.no-progress", "--train.report-to", "none"]) == 0
    record = json.loads((tmp_path / "run" / RUN_RECORD).read_text())
    assert record["config"]["train_roles"] == []  # as given; the recipe's roles are resolved:
    assert record["resolved"]["train_roles"] == ["questioner", "solver"]
    assert {"python", "selfplay_gym", "torch", "transformers", "peft"} <= set(record["versions"])
    assert record["git"] is None or len(record["git"]["commit"]) == 40
    capsys.readouterr()

    assert main(["train", "--resume", "--train.output-dir", out, "--train.iterations", "2"]) == 0
    printed = capsys.readouterr().out
    assert "resume: settings from" in printed and "resuming at iteration 1" in printed
    assert [r["iteration"] for r in read_jsonl(tmp_path / "run" / "metrics.jsonl")] == [0, 1]
    cfg = recorded_config(out)  # the record's settings, with the flag given on resume
    assert (cfg.model.lora_r, cfg.rollout.num_envs, cfg.train.learning_rate) == (4, 2, 3e-4)
    assert cfg.train.iterations == 2 and cfg.model.name == str(random_model_dir)

    assert main(["train", "--resume", "--train.output-dir", out, "--train.iterations", "3",
                 "--model.lora-r", "8"]) == 2  # check_resume still refuses another rank
    assert "--model.lora-r was 4, now 8" in capsys.readouterr().err


def test_a_flat_record_of_an_older_run_still_reads(tmp_path):
    cfg = RunConfig(mode="aero")
    (tmp_path / RUN_RECORD).write_text(json.dumps(dataclasses.asdict(cfg), default=str))
    assert recorded_config(tmp_path) == cfg
    assert recorded_config(tmp_path / "nothing-here") is None


def test_resume_without_a_record_says_so(tmp_path, capsys):
    assert main(["train", "--resume", "--train.output-dir", str(tmp_path), "--train.iterations",
                 "0"]) == 2  # defaults and flags, validated as ever
    err = capsys.readouterr().err
    assert f"{tmp_path} has no {RUN_RECORD}" in err and "--train.iterations 0: must be >= 1" in err

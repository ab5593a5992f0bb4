"""Run configs: dataclass defaults, YAML/JSON files, and errors that name the bad key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfplay_gym.algorithms.trainer import TrainConfig
from selfplay_gym.build import plan_run
from selfplay_gym.config import RunConfig, from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_example_yaml_loads_with_nested_values():
    cfg = load_config(ROOT / "examples/configs/rzero_tiny.yaml")
    assert cfg.train_roles == ("questioner", "solver")
    assert cfg.rollout.max_new_tokens == 32
    assert cfg.train.update.micro_batch_size == 32
    assert cfg.train.learning_rate == 1e-4
    assert cfg.model.name == "tiny"


def test_json_and_defaults(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"algorithm": "dapo", "train": {"iterations": 3}}))
    cfg = load_config(path)
    assert cfg.algorithm == "dapo" and cfg.train.iterations == 3
    assert cfg.train.learning_rate == TrainConfig().learning_rate
    assert load_config(tmp_path / "run.json") == cfg


@pytest.mark.parametrize(
    "data, match",
    [
        ({"modee": "rzero"}, r"unknown RunConfig key\(s\) \['modee'\]"),
        ({"train": {"iteration": 2}}, r"unknown TrainConfig key\(s\) \['iteration'\]"),
        ({"train": 3}, "expects a mapping"),
    ],
)
def test_bad_keys_are_named(data, match):
    with pytest.raises(ValueError, match=match):
        from_dict(RunConfig, data)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_mode_options_only_pass_what_the_mode_accepts():
    assert plan_run(RunConfig()).options == {"num_solvers": 8}

"""Run configs: dataclass defaults, YAML/JSON files, and errors that name the bad key."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.algorithms.checkpoint import save_checkpoint
from selfplay_gym.algorithms.trainer import TrainConfig
from selfplay_gym.build import plan_run, train_from_config
from selfplay_gym.cli import main
from selfplay_gym.config import RunConfig, from_dict, load_config
from selfplay_gym.validation import RUN_RECORD, check_output_dir, check_resume, record_run

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


# --- validation: bad values are refused before anything loads, naming the option and the fix ---
def _with(**changes) -> RunConfig:
    """RunConfig() with dotted keys changed: ``_with(**{"train.iterations": 0})``."""
    def replace(obj, path, value):
        head, _, rest = path.partition(".")
        inner = value if not rest else replace(getattr(obj, head), rest, value)
        return dataclasses.replace(obj, **{head: inner})

    cfg = RunConfig()
    for path, value in changes.items():
        cfg = replace(cfg, path, value)
    return cfg


@pytest.mark.parametrize(
    "key, value, match",
    [
        ("train.update.minibatch_size", 0, r"--train.update.minibatch-size 0: must be >= 1"),
        ("train.update.micro_batch_size", 0, r"--train.update.micro-batch-size 0: must be >= 1"),
        ("train.iterations", 0, r"--train.iterations 0: must be >= 1"),
        ("train.iterations", -3, r"--train.iterations -3: must be >= 1"),
        ("train.save_every", -1, r"--train.save-every -1: must be >= 0"),
        ("train.learning_rate", float("inf"), r"--train.learning-rate inf: must be a finite number"),
        ("train.learning_rate", float("nan"), r"--train.learning-rate nan: must be a finite number"),
        ("kl_coef", float("nan"), r"--kl-coef nan: must be a finite number"),
        ("rollout.top_p", 0.0, r"--rollout.top-p 0.0: must be in \(0, 1\]"),
        ("model.dtype", "float7", r"--model.dtype 'float7': choose one of \['float32'"),
        ("model.device", "gpu", r"--model.device 'gpu' is not a device torch knows; use --model.device cpu"),
        ("train.learning_rate", "abc", r"--train.learning-rate 'abc': expected a number, got str "
                                       r"\(config key train.learning_rate\)"),
        ("rollout.num_solvers", [3], r"--rollout.num-solvers \[3\]: expected an integer, got list"),
        ("train_roles", 3, r"--train-roles 3: expected a list of strings, got int"),
        ("train.progress", "yes", r"--train.progress 'yes': expected true or false, got str"),
    ],
)
def test_bad_values_are_refused_naming_the_option_and_the_fix(key, value, match):
    with pytest.raises(ValueError, match=match):
        plan_run(_with(**{key: value}))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_says_so():
    with pytest.raises(ValueError, match=r"--model.device 'cuda'.*(no CUDA support|no CUDA device)"
                                         r".*use --model.device cpu"):
        plan_run(_with(**{"model.device": "cuda"}))


@pytest.mark.parametrize(
    "option, match",
    [
        ("band_low=x", r"--options 'band_low=x': expected a number, got str for option 'band_low'"),
        ("num_solvers=[3]", r"--options 'num_solvers=\[3\]': expected an integer, got list"),
        ("band_low=NaN", r"--options 'band_low=NaN': must be a finite number"),
        ("original_filters=3", r"expected true or false, got int"),
    ],
)
def test_mode_options_of_the_wrong_type_are_named(option, match):
    with pytest.raises(ValueError, match=match):
        plan_run(RunConfig(mode="rzero", options=(option,)))


def test_a_json_list_option_becomes_the_tuple_the_mode_expects():
    options = plan_run(RunConfig(mode="darc", options=("target_accuracy=[0.9, 0.5]",))).options
    assert options["target_accuracy"] == (0.9, 0.5)


def test_wrong_types_in_a_yaml_file_are_named_and_exponents_read_as_numbers(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train_roles: 3\ntrain:\n  learning_rate: abc\n  update:\n    minibatch_size: '8'\n")
    with pytest.raises(ValueError) as caught:
        load_config(path)
    for expected in ("--train-roles 3: expected a list of strings, got int",
                     "--train.learning-rate 'abc': expected a number",
                     "--train.update.minibatch-size '8': expected an integer, got str"):
        assert expected in str(caught.value)
    path.write_text("train:\n  learning_rate: 1e-4\n")  # PyYAML reads this as a string
    assert load_config(path).train.learning_rate == 1e-4


def test_an_output_dir_that_is_a_file_or_unwritable_is_refused_before_a_model_loads(tmp_path):
    file = tmp_path / "taken"
    file.write_text("")
    with pytest.raises(ValueError, match=r"--train.output-dir '.*taken' is a file; choose a directory"):
        train_from_config(_with(**{"train.output_dir": str(file), "model.name": "no-such-model"}))
    with pytest.raises(ValueError, match=r"--train.output-dir '.*taken/run' cannot be written"):
        check_output_dir(file / "run")
    with pytest.raises(ValueError, match=r"--train.output-dir '/proc/selfplay' cannot be written"):
        check_output_dir("/proc/selfplay")


def test_the_cli_prints_one_error_line_and_exits_2(capsys):
    assert main(["train", "--train.update.minibatch-size", "0", "--kl-coef", "nan"]) == 2
    assert capsys.readouterr().err == ("error: --kl-coef nan: must be a finite number (config key "
                                       "kl_coef); --train.update.minibatch-size 0: must be >= 1\n")


@pytest.fixture
def finished_run(random_model_dir, tmp_path):
    """An R-Zero run directory with its record and one checkpoint (r=8), as training leaves it."""
    cfg = _with(**{"model.name": str(random_model_dir), "train.output_dir": str(tmp_path)})
    learner = HFBackend(random_model_dir, adapters=["questioner", "solver"])
    optimizers = {a: torch.optim.AdamW(list(learner.adapter_parameters(a).values()))
                  for a in ("questioner", "solver")}
    save_checkpoint(tmp_path, 0, learner, optimizers, {"config": {}})
    record_run(plan_run(cfg).cfg, tmp_path)
    return cfg


def test_resuming_with_another_rank_or_mode_says_what_differs(finished_run, tmp_path):
    other_rank = _with(**{"model.name": finished_run.model.name, "model.lora_r": 4,
                          "train.output_dir": str(tmp_path)})
    with pytest.raises(ValueError, match=r"cannot --resume .*--model.lora-r was 8, now 4.*"
                                         r"start over with --overwrite"):
        train_from_config(other_rank, resume=True)
    (tmp_path / RUN_RECORD).unlink()  # a run from before the record: the checkpoint still tells
    with pytest.raises(ValueError, match=r"--model.lora-r was 8 \(checkpoint .*iter_000000\), now 4"):
        train_from_config(other_rank, resume=True)
    other_mode = dataclasses.replace(finished_run, mode="aero")
    with pytest.raises(ValueError, match=r"holds adapter\(s\) \['questioner', 'solver'\], which this "
                                         r"run does not play \(it plays \['policy'\]"):
        train_from_config(other_mode, resume=True)
    record_run(plan_run(finished_run).cfg, tmp_path)
    with pytest.raises(ValueError, match=r"--mode was 'rzero', now 'aero'"):
        train_from_config(other_mode, resume=True)
    assert check_resume(plan_run(finished_run).cfg, tmp_path, ["questioner", "solver"]) is None

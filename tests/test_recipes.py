"""Each mode's published recipe: what `selfplay-gym train --mode NAME` runs with no other flag."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from selfplay_gym.build import plan_run
from selfplay_gym.config import RunConfig
from selfplay_gym.envs.registry import mode_class
from selfplay_gym.plots import read_jsonl

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "mode, roles, schedule, algorithm",
    [
        ("rzero", ("questioner", "solver"), "alternating", "rzero"),
        ("aero", ("generator", "solver", "refiner"), "staggered", "kto"),
        ("darc", ("questioner",), "joint", "darc"),
        ("alive", ("constructor", "solver", "reviewer"), "joint", "grpo"),
        ("azr", ("proposer", "solver"), "joint", "azr"),
    ],
)
def test_an_empty_config_takes_the_modes_recipe(mode, roles, schedule, algorithm):
    cfg = plan_run(RunConfig(mode=mode)).cfg
    assert (cfg.train_roles, cfg.schedule, cfg.algorithm) == (roles, schedule, algorithm)


def test_flags_win_over_the_recipe():
    cfg = plan_run(RunConfig(mode="aero", algorithm="grpo", schedule="joint", train_roles=("solver",))).cfg
    assert (cfg.train_roles, cfg.schedule, cfg.algorithm) == (("solver",), "joint", "grpo")
    with pytest.raises(ValueError, match="unknown algorithm 'ppo'"):
        plan_run(RunConfig(algorithm="ppo"))


def test_adapters_follow_the_recipe():
    assert set(plan_run(RunConfig(mode="aero")).adapters.values()) == {"policy"}
    darc = plan_run(RunConfig(mode="darc")).adapters
    assert darc["questioner"] == "questioner"
    assert {darc[r] for r in ("solver", "student", "teacher", "judge")} == {"solver"}
    rzero = plan_run(RunConfig(mode="rzero")).adapters
    assert rzero == {"questioner": "questioner", "solver": "solver"}  # the judge is scripted


def test_every_mode_has_a_recipe_over_its_own_roles():
    for name in ("rzero", "aero", "darc", "alive", "azr"):
        cls = mode_class(name)
        assert all(set(stage) <= set(cls.roles) for stage in cls.recipe.stages)


def train(mode: str, output: Path, max_new_tokens: int = 40) -> list[dict]:
    command = [sys.executable, "-m", "selfplay_gym.cli", "train", "--mode", mode,
               "--train.iterations", "2", "--rollout.num-envs", "4", "--rollout.num-solvers", "4",
               "--rollout.max-new-tokens", str(max_new_tokens), "--train.output-dir", str(output),
               "--train.no-progress"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_jsonl(output / "metrics.jsonl")


def test_aero_trains_two_staggered_iterations_from_the_cli(tiny_dir, tmp_path):
    rows = train("aero", tmp_path)
    assert rows[0]["train_roles"] == ["generator"]
    assert rows[1]["train_roles"] == ["generator", "refiner", "solver"]
    assert (tmp_path / "checkpoints" / "iter_000001" / "adapters" / "policy").is_dir()
    state = json.loads((tmp_path / "checkpoints" / "iter_000001" / "state.json").read_text())
    assert set(state["selector"]) == {"pending", "pool"}  # the lagged data survives a restart


def test_alive_trains_two_joint_iterations_from_the_cli(tiny_dir, tmp_path):
    rows = train("alive", tmp_path)
    assert [r["train_roles"] for r in rows] == [["constructor", "reviewer", "solver"]] * 2


def test_darc_runs_both_stages_from_the_cli(tiny_dir, tmp_path):
    train("darc", tmp_path, max_new_tokens=120)
    stage1, stage2 = (read_jsonl(tmp_path / f"stage{k}" / "metrics.jsonl") for k in (1, 2))
    assert [r["train_roles"] for r in stage1] == [["questioner"]]
    assert [r["train_roles"] for r in stage2] == [["student"]]
    assert (tmp_path / "stage2" / "checkpoints" / "iter_000000" / "adapters" / "solver").is_dir()


def test_azr_trains_two_iterations_from_the_cli_on_the_code_model(tmp_path):
    rows = train("azr", tmp_path, max_new_tokens=96)
    assert [r["train_roles"] for r in rows] == [["proposer", "solver"]] * 2
    run = json.loads((tmp_path / "run_config.json").read_text())
    assert run["resolved"]["model"]["name"] == "tiny-code"  # "tiny": the mode's embedded model
    assert run["resolved"]["algorithm"] == "azr"
    assert (tmp_path / "checkpoints" / "iter_000001" / "adapters" / "policy").is_dir()
    state = json.loads((tmp_path / "checkpoints" / "iter_000001" / "state.json").read_text())
    buffer = state["venv"]["tasks"][0]  # the program buffer resumes with the run
    assert buffer["position"] == 8 and buffer["triplets"][0]["input"] == "'Hello World'"
    assert all(-1.0 <= r["reward/proposer/mean"] <= 1.0 for r in rows)
    episodes = read_jsonl(tmp_path / "episodes.jsonl")
    assert {e["task"]["task_type"] for e in episodes} <= {"deduction", "abduction", "induction"}


def test_mode_options_from_the_config_reach_the_mode():
    cfg = RunConfig(mode="alive", options=("mask_format=span", "revise=true", "max_span_chars=8"))
    assert plan_run(cfg).options == {"num_solvers": 8, "mask_format": "span", "revise": True,
                                 "max_span_chars": 8}
    with pytest.raises(ValueError, match="write key=value with a key of"):
        plan_run(RunConfig(mode="alive", options=("bogus=1",)))


def test_role_temperatures_reach_each_role_and_bad_ones_name_the_fix(tiny_dir):
    from selfplay_gym.build import build_trainer
    from selfplay_gym.config import RolloutConfig

    rollout = RolloutConfig(num_envs=2, role_temperatures=("refiner=0.1",))
    cfg = RunConfig(mode="aero", rollout=rollout)
    assert plan_run(cfg).temperatures == {"refiner": 0.1}
    policies = build_trainer(cfg).policies
    assert policies["refiner"].roles["refiner"].sampling.temperature == 0.1
    assert policies["solver"].roles["solver"].sampling.temperature == 1.0
    for bad in ("critic=0", "refiner=hot", "refiner=-1"):
        with pytest.raises(ValueError, match="write role=T with T >= 0"):
            plan_run(RunConfig(mode="aero", rollout=RolloutConfig(role_temperatures=(bad,))))

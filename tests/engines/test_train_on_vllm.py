"""Training with rollouts on the vLLM engine: every mode's recipe, two iterations, on one engine
shared by the module; then the CLI from a fresh process, and its --resume."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from selfplay_gym.agents.vllm import VLLMBackend
from selfplay_gym.algorithms.trainer import TrainConfig
from selfplay_gym.build import train_from_config
from selfplay_gym.config import RolloutConfig, RunConfig
from selfplay_gym.plots import read_jsonl

AGREEMENT = 2e-4
"""Per-token |log p_engine - log p_learner| on the trained tokens, fp32 CPU: test_engine.py's
bound (measured max 2.6e-5) with room for the longer tail of a few thousand tokens."""


@pytest.fixture(scope="module")
def engine(tiny_dir):
    backend = VLLMBackend.launch(tiny_dir, dtype="float32", max_lora_rank=8, max_loras=4)
    yield backend
    backend.close()


def small_run(mode: str, output: Path, **rollout) -> RunConfig:
    return RunConfig(
        mode=mode,
        rollout=RolloutConfig(num_envs=4, num_solvers=4, max_new_tokens=32, engine="vllm", **rollout),
        train=TrainConfig(iterations=2, output_dir=str(output), progress=False),
    )


@pytest.mark.parametrize("mode", ["rzero", "aero", "darc", "alive"])
def test_every_mode_trains_its_recipe_with_rollouts_on_vllm(mode, engine, tmp_path):
    history = train_from_config(small_run(mode, tmp_path), generator=engine)
    assert len(history) == 2
    agreement = [v for row in history for k, v in row.items() if k.endswith("/logp_diff_max")]
    assert agreement, f"no update measured the engine's agreement: {sorted(history[-1])}"
    assert max(agreement) < AGREEMENT


def test_truncated_importance_sampling_weights_tokens_near_one_when_engines_agree(engine, tmp_path):
    cfg = dataclasses.replace(small_run("rzero", tmp_path), tis_cap=2.0)
    history = train_from_config(cfg, generator=engine)
    rows = [{k.split("/")[-1]: v for k, v in row.items() if k.startswith("agreement/")} for row in history]
    assert all(abs(r["ratio_mean"] - 1) < 1e-3 and r["truncated_fraction"] == 0 for r in rows if r)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "selfplay_gym.cli", "train", *args],
                          capture_output=True, text=True, timeout=900)


def test_the_cli_trains_on_vllm_and_resumes_exactly_where_it_stopped(tmp_path):
    common = ["--mode", "rzero", "--rollout.engine", "vllm", "--rollout.num-envs", "4",
              "--rollout.num-solvers", "4", "--rollout.max-new-tokens", "32",
              "--train.output-dir", str(tmp_path), "--train.no-progress"]
    first = cli(*common, "--train.iterations", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    again = cli(*common, "--train.iterations", "3", "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming at iteration 2" in again.stdout
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert [r["iteration"] for r in rows] == [0, 1, 2]
    assert all(any(k.startswith("agreement/") for k in r) for r in rows)
    assert json.loads((tmp_path / "checkpoints" / "iter_000002" / "state.json").read_text())["iteration"] == 2

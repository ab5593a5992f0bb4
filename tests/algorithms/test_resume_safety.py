"""Nothing lost, nothing mixed: torn log lines, corrupt checkpoints, a second run in one directory."""

from __future__ import annotations

import json

import pytest
import torch

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.algorithms.checkpoint import (
    checkpoint_dir,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from selfplay_gym.algorithms.run_log import RunLog, read_rows
from selfplay_gym.build import claim_output_dir


def test_a_torn_last_line_is_dropped_and_a_broken_middle_line_is_named(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 0}\n{"iteration": 1}\n{"iterat')  # killed mid-write
    with pytest.warns(UserWarning, match="dropped a torn last line 3"):
        assert read_rows(path) == [{"iteration": 0}, {"iteration": 1}]
    path.write_text('{"iteration": 0}\n{"iterat\n{"iteration": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl line 2 is not JSON.*corrupt"):
        read_rows(path)
    path.write_text('[1, 2]\n')
    with pytest.raises(ValueError, match="line 1 holds a list"):
        read_rows(path)


def test_resuming_drops_later_iterations_from_every_log_file(tmp_path):
    log = RunLog(tmp_path, tensorboard=False)
    for iteration in range(3):
        log.metrics({"iteration": iteration})
    (tmp_path / "episodes.log").write_text(
        "##### iteration 0\nzero\n\n##### iteration 1\none\n\n##### iteration 2\ntwo\n\n")
    (tmp_path / "episodes.jsonl").write_text(
        "".join(json.dumps({"iteration": i, "episode_id": f"r{i}"}) + "\n" for i in range(3))
        + '{"iteration": 3, "epis')  # a kill while the next iteration was written
    with pytest.warns(UserWarning, match="torn last line"):
        RunLog(tmp_path, resume_after=1, tensorboard=False)
    assert [r["iteration"] for r in read_rows(tmp_path / "metrics.jsonl")] == [0, 1]
    assert [r["iteration"] for r in read_rows(tmp_path / "episodes.jsonl")] == [0, 1]
    assert (tmp_path / "episodes.log").read_text() == "##### iteration 0\nzero\n\n##### iteration 1\none\n\n"


@pytest.fixture
def saved(random_model_dir, tmp_path):
    """Checkpoints of iterations 0 and 1 of one adapter, and what they hold."""
    learner = HFBackend(random_model_dir, adapters=["solver"])
    params = learner.adapter_parameters("solver")
    optimizers = {"solver": torch.optim.AdamW(list(params.values()), lr=1e-3)}
    weights = {}
    for iteration in (0, 1):
        with torch.no_grad():
            for name, param in params.items():
                if "lora_B" in name:
                    param.fill_(iteration + 1.0)
        weights[iteration] = {n: p.detach().clone() for n, p in params.items()}
        save_checkpoint(tmp_path, iteration, learner, optimizers, {"config": {}})
    return learner, optimizers, weights


@pytest.mark.parametrize("damage", ["truncate adapter", "drop optimizers", "garbage state",
                                    "list state", "negative iteration", "string iteration"])
def test_a_corrupt_latest_checkpoint_falls_back_to_the_newest_valid_one(saved, tmp_path, damage):
    learner, optimizers, weights = saved
    newest = checkpoint_dir(tmp_path, 1)
    state = newest / "state.json"
    if damage == "truncate adapter":
        weights_file = next((newest / "adapters" / "solver").glob("*.safetensors"))
        weights_file.write_bytes(weights_file.read_bytes()[:100])
    elif damage == "drop optimizers":
        (newest / "optimizers.pt").unlink()
    elif damage == "garbage state":
        state.write_text("{not json")
    elif damage == "list state":
        state.write_text("[1]")
    else:
        value = -3 if damage == "negative iteration" else '"7"'
        state.write_text(state.read_text().replace('"iteration": 1', f'"iteration": {value}'))
    with pytest.warns(UserWarning, match=r"iter_000001 is not usable \(.+\); trying an older one"):
        chosen = latest_checkpoint(tmp_path)
    assert chosen == checkpoint_dir(tmp_path, 0)
    assert load_checkpoint(chosen, learner, optimizers)["iteration"] == 0
    loaded = learner.adapter_parameters("solver")
    assert all(torch.equal(loaded[n], weights[0][n]) for n in weights[0])
    with pytest.raises(ValueError, match="cannot be used"):
        load_checkpoint(newest, learner, optimizers)


def test_a_stale_partial_save_is_never_taken_for_a_checkpoint(saved, tmp_path):
    stale = checkpoint_dir(tmp_path, 2).with_name("iter_000002.partial")
    stale.mkdir()
    (stale / "state.json").write_text('{"iteration": 2}')
    assert latest_checkpoint(tmp_path) == checkpoint_dir(tmp_path, 1)


def test_a_directory_holding_a_run_needs_resume_or_overwrite(tmp_path):
    claim_output_dir(tmp_path, resume=False, overwrite=False)  # empty: fine
    (tmp_path / "metrics.jsonl").write_text('{"iteration": 0}\n')
    (tmp_path / "checkpoints" / "iter_000000").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds a run already.*--resume continues it, --overwrite"):
        claim_output_dir(tmp_path, resume=False, overwrite=False)
    claim_output_dir(tmp_path, resume=True, overwrite=False)
    assert (tmp_path / "checkpoints").exists()
    claim_output_dir(tmp_path, resume=False, overwrite=True)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "metrics.jsonl").exists()

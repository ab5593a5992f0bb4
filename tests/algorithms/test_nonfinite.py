"""NaN and infinity never reach the weights or a checkpoint: skipped steps, a streak limit, a
refused save; on a real (random) tiny Qwen3 with real peft adapters."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.algorithms.checkpoint import save_checkpoint
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.schedules import Joint
from selfplay_gym.algorithms.update import (
    NonFiniteError,
    NonFiniteGuard,
    UpdateConfig,
    update_adapter,
)
from selfplay_gym.types import Sample
from tests.algorithms.test_trainer import make_trainer

NAN = float("nan")
GRPO = dataclasses.replace(PRESETS["grpo"], kl_coef=0.0)  # no reference pass needed


def sample(group: str = "g", completion=(5, 6)) -> Sample:
    return Sample(role="solver", agent="solver_0", episode_id="e", group_id=group,
                  prompt_ids=[1, 2, 3], completion_ids=list(completion),
                  old_logprobs=[0.0] * len(completion), reward=1.0)


@pytest.fixture
def learner(random_model_dir):
    backend = HFBackend(random_model_dir, adapters=["policy"], seed=0)
    optimizer = torch.optim.AdamW(list(backend.adapter_parameters("policy").values()), lr=1e-2)
    return backend, optimizer


def weights(backend):
    return {n: p.detach().clone() for n, p in backend.adapter_parameters("policy").items()}


def step(backend, optimizer, advantage: float, guard=None):
    """One minibatch of two samples; a NaN advantage makes the loss and every gradient NaN."""
    return update_adapter(backend, "policy", [sample(), sample(completion=(7, 8))],
                          torch.tensor([advantage, -advantage]), None, optimizer, GRPO,
                          UpdateConfig(log_entropy=False), 1.0, torch.Generator().manual_seed(0),
                          guard=guard)


def test_a_nan_loss_skips_the_step_and_counts_it(learner):
    backend, optimizer = learner
    before = weights(backend)
    stats = step(backend, optimizer, NAN)
    assert stats == {"optimizer_steps": 0, "skipped_nonfinite": 1}  # no NaN stats either
    assert all(torch.equal(before[n], p) for n, p in weights(backend).items())
    assert not optimizer.state, "the optimizer's moments saw the NaN gradient"
    assert all(p.grad is None for p in backend.adapter_parameters("policy").values())
    stats = step(backend, optimizer, 1.0)
    assert stats["optimizer_steps"] == 1 and stats["skipped_nonfinite"] == 0
    assert all(torch.isfinite(p).all() for p in weights(backend).values())


def test_a_streak_of_nonfinite_steps_stops_the_run_naming_the_fix(learner):
    backend, optimizer = learner
    guard = NonFiniteGuard("policy", limit=3)
    step(backend, optimizer, NAN, guard)
    step(backend, optimizer, NAN, guard)
    step(backend, optimizer, 1.0, guard)  # a finite step ends the streak
    assert guard.streak == 0
    step(backend, optimizer, NAN, guard)
    step(backend, optimizer, NAN, guard)
    with pytest.raises(NonFiniteError, match=r"adapter 'policy': 3 optimizer steps in a row had a "
                                             r"non-finite loss or gradient.*--train.learning-rate.*"
                                             r"--train.max-nonfinite-steps"):
        step(backend, optimizer, NAN, guard)
    assert all(torch.isfinite(p).all() for p in weights(backend).values())


def test_a_step_that_overflows_the_weights_stops_at_once(learner):
    backend, optimizer = learner
    for group in optimizer.param_groups:
        group["lr"] = float("inf")
    with pytest.raises(NonFiniteError, match=r"an optimizer step at learning rate inf made \d+ of "
                                             r"\d+ weight tensors NaN or infinite; lower "
                                             r"--train.learning-rate"):
        step(backend, optimizer, 1.0)


def test_a_checkpoint_with_nan_weights_is_refused_and_nothing_is_written(learner, tmp_path):
    backend, optimizer = learner
    save_checkpoint(tmp_path, 0, backend, {"policy": optimizer}, {"config": {}})
    with torch.no_grad():
        next(iter(backend.adapter_parameters("policy").values())).fill_(NAN)
    with pytest.raises(ValueError, match=r"refusing to save checkpoint 1: adapter 'policy' has "
                                         r"non-finite weights in 1 of \d+ tensors.*lower "
                                         r"--train.learning-rate"):
        save_checkpoint(tmp_path, 1, backend, {"policy": optimizer}, {"config": {}})
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["iter_000000"]


def test_training_at_an_infinite_learning_rate_stops_before_any_checkpoint(random_model_dir, tmp_path):
    """The issue's run: ``--train.learning-rate inf`` wrote a checkpoint with NaN adapters. The
    config check refuses inf; a trainer built past it (from Python) stops at its first step."""
    trainer, _ = make_trainer(random_model_dir, tmp_path / "ok", Joint(("solver",)), iterations=1)
    assert trainer.train()[0]["update/solver/skipped_nonfinite"] == 0
    trainer, backend = make_trainer(random_model_dir, tmp_path / "inf", Joint(("solver",)), iterations=2)
    for optimizer in trainer.optimizers.values():
        for group in optimizer.param_groups:
            group["lr"] = float("inf")
    with pytest.raises(NonFiniteError, match="lower --train.learning-rate"):
        trainer.train()
    assert not (tmp_path / "inf" / "checkpoints").exists()

"""Sampler/learner mismatch: agreement statistics and truncated importance weights, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from selfplay_gym.algorithms.losses import PRESETS, AlgorithmConfig, policy_loss
from selfplay_gym.algorithms.off_policy import agreement_stats, truncated_importance_weights

LEARNER = torch.log(torch.tensor([[0.5, 0.2, 0.9]]))  # [1, 3]; the last token is padding
ENGINE = torch.log(torch.tensor([[0.25, 0.4, 0.1]]))
MASK = torch.tensor([[1.0, 1.0, 0.0]])


def test_truncated_importance_weights_are_the_ratio_capped_at_c():
    # ratios p_learner / p_engine: 0.5 / 0.25 = 2, 0.2 / 0.4 = 0.5, (0.9 / 0.1 = 9, padding)
    weights = truncated_importance_weights(LEARNER, ENGINE, cap=1.5)
    assert torch.allclose(weights, torch.tensor([[1.5, 0.5, 1.5]]))
    assert not weights.requires_grad
    with pytest.raises(ValueError, match="cap must be > 0"):
        truncated_importance_weights(LEARNER, ENGINE, cap=0.0)


def test_agreement_stats_over_the_masked_tokens():
    stats = agreement_stats(LEARNER, ENGINE, MASK, cap=1.5)
    # |log 2| = |log 0.5| = 0.6931; ratios 2 and 0.5: mean 1.25; one of two above 1.5
    assert stats["logp_diff_mean"] == pytest.approx(math.log(2))
    assert stats["logp_diff_max"] == pytest.approx(math.log(2))
    assert (stats["ratio_mean"], stats["ratio_min"], stats["ratio_max"]) == pytest.approx((1.25, 0.5, 2.0))
    assert stats["truncated_fraction"] == 0.5
    assert "truncated_fraction" not in agreement_stats(LEARNER, ENGINE, MASK)
    assert agreement_stats(LEARNER, ENGINE, torch.zeros_like(MASK))["logp_diff_max"] == 0.0


def test_token_weights_scale_each_tokens_surrogate():
    config = AlgorithmConfig("grpo", "token_mean")
    logp = torch.zeros(1, 2, requires_grad=True)  # ratio 1 against old = logp
    advantages = torch.tensor([1.0])
    mask = torch.ones(1, 2)
    plain = policy_loss(logp, logp.detach(), None, advantages, mask, config)
    weighted = policy_loss(logp, logp.detach(), None, advantages, mask, config,
                           token_weights=torch.tensor([[1.5, 0.25]]))
    assert plain["loss"].item() == pytest.approx(-1.0)  # -A * ratio per token, token mean
    assert weighted["loss"].item() == pytest.approx(-(1.5 + 0.25) / 2)


def test_each_loss_owns_its_sample_filter_and_the_presets_name_it():
    assert [PRESETS["kto"].keeps(r) for r in (-1.0, 0.0, 1.0)] == [True, False, True]
    assert [PRESETS["rft"].keeps(r) for r in (-1.0, 0.0, 0.5)] == [False, False, True]
    assert [PRESETS["grpo"].keeps(r) for r in (-1.0, 0.0)] == [True, True]
    assert AlgorithmConfig(loss="kto").keeps(0.0) is False  # a hand-made KTO config too
    assert AlgorithmConfig(loss="kto", sample_filter="all").keeps(0.0) is True
    assert PRESETS["kto"].ratio_free and PRESETS["kto"].needs_reference
    assert not PRESETS["rft"].needs_reference and not PRESETS["grpo"].ratio_free
    with pytest.raises(ValueError, match="unknown sample_filter 'some'"):
        AlgorithmConfig(sample_filter="some")
    with pytest.raises(ValueError, match="tis_cap must be > 0"):
        AlgorithmConfig(tis_cap=-1.0)

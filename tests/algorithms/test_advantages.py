"""Advantage estimators against numbers worked by hand in the comments."""

from __future__ import annotations

import pytest
import torch

from selfplay_gym.algorithms.advantages import (
    ADVANTAGES,
    dr_grpo,
    group_normalized,
    reinforce_pp,
    rloo,
    zero_variance_groups,
)

EPS = 1e-6
# Group 0: rewards 1, 0, 1, 1. Group 1: rewards 0, 0 (zero variance). Group 2: a singleton.
REWARDS = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 5.0])  # [B]
GROUPS = torch.tensor([0, 0, 0, 0, 1, 1, 2])  # [B]


def test_grpo_two_groups_and_a_singleton():
    # Group 0: mean = 3/4 = 0.75; deviations 0.25, -0.75, 0.25, 0.25;
    # squares sum 0.0625 + 0.5625 + 0.0625 + 0.0625 = 0.75; unbiased var 0.75/3 = 0.25; std 0.5.
    # A = deviation / (0.5 + eps) ~ [0.5, -1.5, 0.5, 0.5].
    # Group 1: both 0, std 0 -> exact zeros. Group 2: singleton -> 0 (no baseline).
    expected = torch.tensor([0.25, -0.75, 0.25, 0.25, 0.0, 0.0, 0.0])  # [B]
    expected[:4] /= 0.5 + EPS
    got = group_normalized(REWARDS, GROUPS, eps=EPS)  # [B]
    torch.testing.assert_close(got, expected)
    assert got[4:].eq(0).all()  # exactly zero, not merely close


def test_grpo_matches_torch_std_per_group():
    rewards = torch.tensor([0.3, 0.9, 0.1, 2.0, -1.0, 0.5])  # [B]
    groups = torch.tensor([0, 0, 0, 1, 1, 1])  # [B]
    expected = torch.cat([(g - g.mean()) / (g.std() + EPS) for g in rewards.split(3)])  # [B]
    torch.testing.assert_close(group_normalized(rewards, groups, eps=EPS), expected)


def test_zero_variance_group_is_exactly_zero_even_when_the_mean_rounds():
    # In float32 the mean of ten 0.1s is 7.5e-9 off 0.1 (and of three 0.9s, 6e-8 off 0.9), so
    # r - mean alone would give ~7.5e-9 / 1e-6 ~ 0.0075 under GRPO, not 0.
    rewards = torch.tensor([0.1] * 10 + [0.9] * 3)  # [B]
    groups = torch.tensor([4] * 10 + [9] * 3)  # [B]
    assert (rewards[:10] - rewards[:10].sum() / 10).abs().max() > 0  # the rounding is real
    for fn in ADVANTAGES.values():
        got = fn(rewards, groups)  # [B]
        assert got.eq(0).all() and not got.isnan().any(), fn.__name__


@pytest.mark.parametrize("name", sorted(ADVANTAGES))
def test_group_ids_are_only_labels(name):
    # Ids 7 and 3, interleaved, give the same as contiguous 0/1 in sorted order.
    fn = ADVANTAGES[name]
    rewards = torch.tensor([1.0, 2.0, 0.0, 4.0, 1.0, 3.0])  # [B]
    contiguous = torch.tensor([0, 1, 0, 1, 0, 1])  # [B]
    arbitrary = torch.tensor([7, 3, 7, 3, 7, 3])  # [B]
    torch.testing.assert_close(fn(rewards, arbitrary), fn(rewards, contiguous))


def test_dr_grpo_is_the_centred_reward():
    # Group 0: r - 0.75 = [0.25, -0.75, 0.25, 0.25]; group 1: [0, 0]; singleton: 0.
    expected = torch.tensor([0.25, -0.75, 0.25, 0.25, 0.0, 0.0, 0.0])  # [B]
    torch.testing.assert_close(dr_grpo(REWARDS, GROUPS), expected)


def test_rloo_leave_one_out():
    # Group 0 (n = 4): r_0 - mean(0, 1, 1) = 1 - 2/3 = 1/3; r_1 - mean(1, 1, 1) = 0 - 1 = -1.
    # Same as n/(n-1) (r - 0.75) = 4/3 * [0.25, -0.75, 0.25, 0.25].
    expected = torch.tensor([1 / 3, -1.0, 1 / 3, 1 / 3, 0.0, 0.0, 0.0])  # [B]
    torch.testing.assert_close(rloo(REWARDS, GROUPS), expected)


def test_singleton_batch_gets_zero_everywhere():
    rewards = torch.tensor([3.0, -2.0])  # [B] two groups of one
    groups = torch.tensor([11, 12])  # [B]
    for fn in ADVANTAGES.values():
        assert fn(rewards, groups).eq(0).all(), fn.__name__


def test_zero_variance_groups():
    # Group 0 has 1 and 0: signal. Group 1 is all 0: no signal. A singleton: no signal.
    expected = torch.tensor([False, False, False, False, True, True, True])  # [B]
    assert torch.equal(zero_variance_groups(REWARDS, GROUPS), expected)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same length"):
        group_normalized(torch.zeros(3), torch.zeros(4, dtype=torch.long))


def test_reinforce_pp_worked_example():
    # B = 2, T = 3, kl_coef = 0.5. Row 0 has 3 tokens, row 1 has 2 (its last column is padding,
    # so its kl of 7 must be ignored).
    rewards = torch.tensor([1.25, 0.0])  # [B]
    token_kl = torch.tensor([[2.0, 0.0, 0.5], [0.0, 2.0, 7.0]])  # [B, T]
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])  # [B, T]
    # Per-token reward -0.5 kl, plus the scalar reward at the last real token:
    #   row 0: [-1, 0, -0.25 + 1.25] = [-1, 0, 1];   row 1: [0, -1 + 0, (pad)] = [0, -1, 0].
    # Return-to-go (sum from t on):
    #   row 0: [-1 + 0 + 1, 0 + 1, 1] = [0, 1, 1];  row 1: [0 - 1, -1, (pad)] = [-1, -1, 0].
    # Masked values {0, 1, 1, -1, -1}: mean 0; squares sum 4; unbiased var 4 / (5 - 1) = 1.
    # A = (G - 0) / (1 + eps), 0 on padding.
    expected = torch.tensor([[0.0, 1.0, 1.0], [-1.0, -1.0, 0.0]]) / (1.0 + EPS)  # [B, T]
    got = reinforce_pp(rewards, token_kl, mask, kl_coef=0.5, eps=EPS)  # [B, T]
    torch.testing.assert_close(got, expected)
    assert got[1, 2] == 0


def test_reinforce_pp_without_kl_is_the_whitened_reward():
    # kl_coef 0: every token of a row has return r_b. Rows of 1 and 3 tokens, rewards 2 and 0:
    # values {2, 0, 0, 0}: mean 0.5, deviations 1.5, -0.5 x3, squares 2.25 + 0.75 = 3, var 1.
    rewards = torch.tensor([2.0, 0.0])  # [B]
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])  # [B, T]
    got = reinforce_pp(rewards, torch.randn(2, 3), mask, kl_coef=0.0, eps=EPS)  # [B, T]
    expected = torch.tensor([[1.5, 0.0, 0.0], [-0.5, -0.5, -0.5]]) / (1.0 + EPS)  # [B, T]
    torch.testing.assert_close(got, expected)


def test_reinforce_pp_empty_mask_is_zero_not_nan():
    got = reinforce_pp(torch.ones(2), torch.ones(2, 3), torch.zeros(2, 3), kl_coef=0.1)  # [B, T]
    assert got.eq(0).all()

"""Surrogate, KL estimators, aggregations, distillation, KTO and presets, on hand-worked numbers."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from selfplay_gym.algorithms.advantages import ADVANTAGES, reinforce_pp
from selfplay_gym.algorithms.losses import (
    AGGREGATIONS,
    KL_ESTIMATORS,
    PRESETS,
    AlgorithmConfig,
    constant_normalizer,
    distillation_loss,
    kl_k1,
    kl_k2,
    kl_k3,
    kto_loss,
    masked_mean,
    policy_loss,
    ratio_and_clipped_surrogate,
    sequence_mean,
    token_mean,
)

MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])  # [B, T]: 3 tokens, then 1


def one_token(ratio: float, advantage: float, **clip) -> tuple[float, float, dict]:
    """Loss and d loss / d logp for one token with the given ratio and advantage."""
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)  # [1, 1]
    out = ratio_and_clipped_surrogate(logp, torch.zeros(1, 1), torch.tensor([advantage]), **clip)
    out["loss"].sum().backward()
    return out["loss"].item(), logp.grad.item(), out


def test_ratio_one_gives_minus_mean_advantage():
    # Ratio 1 everywhere: per-token loss = -A. A = [1, -2] broadcast over tokens:
    # [[-1, -1, -1], [2, pad, pad]] -> token mean (-1 - 1 - 1 + 2) / 4 = -0.25.
    logp = torch.randn(2, 3)  # [B, T]
    config = AlgorithmConfig(aggregate="token_mean")
    out = policy_loss(logp, logp.clone(), None, torch.tensor([1.0, -2.0]), MASK, config)
    assert out["loss"].item() == pytest.approx(-0.25)
    assert out["ratio_mean"] == pytest.approx(1.0)
    assert out["clip_fraction"] == 0.0


# (ratio, advantage, expected loss, expected gradient wrt logp). With ε = 0.2 the clip range is
# [0.8, 1.2]. Unclipped: loss = -ρA, d/dlogp = -ρA (since dρ/dlogp = ρ). Clipped: constant.
CLIP_ROWS = [
    (1.1, 1.0, -1.1, -1.1),  # inside, A > 0: gradient flows
    (1.3, 1.0, -1.2, 0.0),  # above 1.2, A > 0: clipped to -1.2 A, no gradient
    (1.2 * 1.001, 1.0, -1.2, 0.0),  # just above the edge: already clipped
    (1.2 * 0.999, 1.0, -1.1988, -1.1988),  # just below the edge: not yet
    (0.7, 1.0, -0.7, -0.7),  # below 0.8 with A > 0: min picks ρA, gradient flows
    (0.9, -1.0, 0.9, 0.9),  # inside, A < 0
    (0.7, -1.0, 0.8, 0.0),  # below 0.8, A < 0: clipped to 0.8 |A|, no gradient
    (0.8 * 0.999, -1.0, 0.8, 0.0),  # just below the edge: clipped
    (0.8 * 1.001, -1.0, 0.8008, 0.8008),  # just above: not
    (1.3, -1.0, 1.3, 1.3),  # above 1.2 with A < 0: unclipped (pessimistic bound)
]


@pytest.mark.parametrize(("ratio", "advantage", "loss", "grad"), CLIP_ROWS)
def test_clip_engages_exactly_at_one_plus_minus_eps(ratio, advantage, loss, grad):
    got_loss, got_grad, out = one_token(ratio, advantage, clip_low=0.2, clip_high=0.2)
    assert got_loss == pytest.approx(loss, abs=1e-5)
    assert got_grad == pytest.approx(grad, abs=1e-5)
    assert out["clipped"].item() == (grad == 0.0)


def test_clip_higher_is_asymmetric():
    # ρ = 1.25, A = 1. ε_high = 0.28: 1.25 < 1.28, so loss -1.25 and gradient -1.25.
    loss, grad, _ = one_token(1.25, 1.0, clip_low=0.2, clip_high=0.28)
    assert (loss, grad) == (pytest.approx(-1.25), pytest.approx(-1.25))
    # ε_high = 0.2: 1.25 > 1.2, so loss -1.2 and no gradient.
    loss, grad, _ = one_token(1.25, 1.0, clip_low=0.2, clip_high=0.2)
    assert (loss, grad) == (pytest.approx(-1.2), 0.0)
    # ε_low stays 0.2 either way: ρ = 0.75, A = -1 is clipped to 0.8 under both.
    for high in (0.2, 0.28):
        assert one_token(0.75, -1.0, clip_low=0.2, clip_high=high)[:2] == (pytest.approx(0.8), 0)


def test_dual_clip_caps_negative_advantage_loss():
    # A = -1, ρ = 5, c = 3: PPO loss max(5 * 1, 1.2 * 1) = 5; dual clip caps at -c A = 3.
    loss, grad, out = one_token(5.0, -1.0, dual_clip=3.0)
    assert (loss, grad) == (pytest.approx(3.0), 0.0)
    assert out["dual_clipped"].item()
    # A = -2, ρ = 5: PPO loss 10, cap 3 * 2 = 6.
    assert one_token(5.0, -2.0, dual_clip=3.0)[0] == pytest.approx(6.0)
    # ρ = 2 < c: loss 2 is under the cap 3 and keeps its gradient 2.
    assert one_token(2.0, -1.0, dual_clip=3.0)[:2] == (pytest.approx(2.0), pytest.approx(2.0))
    # A > 0 is untouched by the dual clip: ρ = 5 -> ordinary clip -1.2.
    loss, _, out = one_token(5.0, 1.0, dual_clip=3.0)
    assert loss == pytest.approx(-1.2) and not out["dual_clipped"].item()


def test_kl_estimators_on_numbers():
    logp, ref = torch.tensor([[-1.0]]), torch.tensor([[-2.0]])  # [1, 1]
    # k1 = -1 - (-2) = 1. k2 = 0.5 * 1^2 = 0.5. k3: ref - logp = -1 -> e^-1 - (-1) - 1 = e^-1.
    assert kl_k1(logp, ref).item() == pytest.approx(1.0)
    assert kl_k2(logp, ref).item() == pytest.approx(0.5)
    assert kl_k3(logp, ref).item() == pytest.approx(math.exp(-1.0))  # ~0.3679
    assert set(KL_ESTIMATORS) == {"k1", "k2", "k3"}


def test_k3_is_nonnegative_and_clamped():
    torch.manual_seed(0)
    logp, ref = torch.randn(64, 32) * 3, torch.randn(64, 32) * 3  # [B, T]
    assert (kl_k3(logp, ref) >= 0).all()
    # ref - logp = 30: e^20 (after verl's [-20, 20] clamp) - 20 - 1 is huge -> clamped to 10.
    assert kl_k3(torch.tensor([[-30.0]]), torch.tensor([[0.0]])).item() == 10.0
    assert kl_k3(torch.tensor([[0.5]]), torch.tensor([[0.5]])).item() == 0.0


LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # [B, T]
PAD_MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])  # [B, T]: 2 tokens, then 1


def test_aggregations_on_a_padded_batch():
    # token mean: (1 + 2 + 4) / 3 = 7/3.
    assert token_mean(LOSS, PAD_MASK).item() == pytest.approx(7 / 3)
    # sequence mean: row means (1 + 2)/2 = 1.5 and 4/1 = 4 -> (1.5 + 4) / 2 = 2.75.
    assert sequence_mean(LOSS, PAD_MASK).item() == pytest.approx(2.75)
    # constant, max_tokens 4: (1 + 2 + 4) / (B * 4) = 7 / 8 = 0.875.
    assert constant_normalizer(LOSS, PAD_MASK, max_tokens=4).item() == pytest.approx(0.875)
    assert set(AGGREGATIONS) == {"token_mean", "sequence_mean", "constant"}


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
def test_extra_padding_columns_change_nothing(name):
    # Append two columns of junk (100) with mask 0: every aggregation, constant included (same
    # max_tokens), gives the same number as before: Dr. GRPO's point.
    padded_loss = torch.cat([LOSS, torch.full((2, 2), 100.0)], dim=1)  # [B, T + 2]
    padded_mask = torch.cat([PAD_MASK, torch.zeros(2, 2)], dim=1)  # [B, T + 2]
    aggregate = AGGREGATIONS[name]
    before = aggregate(LOSS, PAD_MASK, 4)  # []
    after = aggregate(padded_loss, padded_mask, 4)  # []
    assert after.item() == pytest.approx(before.item())


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
def test_empty_mask_gives_zero_not_nan(name):
    loss = torch.randn(2, 3, requires_grad=True)  # [B, T]
    out = AGGREGATIONS[name](loss, torch.zeros(2, 3), 4)  # []
    out.backward()
    assert out.item() == 0.0
    assert torch.isfinite(loss.grad).all()
    assert masked_mean(loss, torch.zeros(2, 3)).item() == 0.0


def test_constant_needs_max_tokens_and_says_how():
    with pytest.raises(ValueError, match=r"max_tokens.*dataclasses\.replace"):
        constant_normalizer(LOSS, PAD_MASK)


def test_distillation_loss_numbers():
    student_logp = torch.tensor([[-1.0, -2.0, -9.0], [-0.5, -9.0, -9.0]])  # [B, T]
    # Unweighted: NLL of real tokens 1, 2, 0.5 -> (1 + 2 + 0.5) / 3 = 7/6.
    assert distillation_loss(student_logp, PAD_MASK).item() == pytest.approx(7 / 6)
    # Weights [1, 0.5] (teacher vote fractions): (1 + 2 + 0.5 * 0.5) / 3 = 3.25 / 3.
    weights = torch.tensor([1.0, 0.5])  # [B]
    assert distillation_loss(student_logp, PAD_MASK, weights).item() == pytest.approx(3.25 / 3)


def test_kto_numbers():
    # β = 0.1, logratio 2, z_ref 0.5. Desirable: 1 - σ(0.1 * (2 - 0.5)) = 1 - σ(0.15).
    # σ(0.15) = 1 / (1 + e^-0.15) = 1 / 1.860708 = 0.537430 -> loss 0.462570.
    # Undesirable: 1 - σ(0.1 * (0.5 - 2)) = 1 - σ(-0.15) = σ(0.15) = 0.537430.
    logratio = torch.tensor([2.0, 2.0])  # [B]
    desirable = torch.tensor([True, False])  # [B]
    out = kto_loss(logratio, 0.5, desirable, beta=0.1)
    sigma = 1 / (1 + math.exp(-0.15))
    assert out["loss"].item() == pytest.approx(((1 - sigma) + sigma) / 2)  # mean = 0.5
    assert kto_loss(logratio[:1], 0.5, desirable[:1])["loss"].item() == pytest.approx(0.462570)
    torch.testing.assert_close(out["rewards"], torch.tensor([0.2, 0.2]))  # β * logratio
    # Weights: w_D = 2, w_U = 1 -> (2 * 0.462570 + 0.537430) / 2.
    weighted = kto_loss(logratio, 0.5, desirable, desirable_weight=2.0)["loss"].item()
    assert weighted == pytest.approx((2 * (1 - sigma) + sigma) / 2)
    # A negative KL estimate is clamped to 0: 1 - σ(0.1 * 2) for the desirable sample.
    clamped = kto_loss(logratio[:1], torch.tensor(-3.0), desirable[:1])["loss"].item()
    assert clamped == pytest.approx(1 - 1 / (1 + math.exp(-0.2)))


@pytest.mark.parametrize(
    ("field", "value", "choices"),
    [
        ("advantage", "ppo", "grpo, dr_grpo, rloo, reinforce_pp"),
        ("aggregate", "sum", "token_mean, sequence_mean, constant"),
        ("kl_estimator", "k4", "k1, k2, k3"),
    ],
)
def test_config_rejects_unknown_keys_naming_the_choices(field, value, choices):
    with pytest.raises(ValueError, match=f"unknown {field} '{value}'; valid choices: {choices}"):
        AlgorithmConfig(**{field: value})


@pytest.mark.parametrize(
    "kwargs",
    [{"dual_clip": 1.0}, {"clip_low": 1.0}, {"kl_coef": -1.0}, {"max_tokens": 0},
     {"kl_in_reward": True}],
)
def test_config_rejects_bad_constants(kwargs):
    with pytest.raises(ValueError):
        AlgorithmConfig(**kwargs)


def test_preset_constants_match_their_sources():
    rzero = PRESETS["rzero"]  # rzero.md: clip 0.2 / 0.3, dual-clip 3, low_var_kl 1e-2
    assert (rzero.clip_low, rzero.clip_high, rzero.dual_clip) == (0.2, 0.3, 3.0)
    assert (rzero.kl_estimator, rzero.kl_coef, rzero.aggregate) == ("k3", 1e-2, "token_mean")
    dapo = PRESETS["dapo"]
    assert (dapo.clip_low, dapo.clip_high, dapo.kl_coef, dapo.dynamic_sampling) == (
        0.2, 0.28, 0.0, True
    )
    assert (PRESETS["grpo"].kl_coef, PRESETS["grpo"].aggregate) == (0.04, "sequence_mean")
    assert (PRESETS["darc"].advantage, PRESETS["darc"].kl_coef) == ("dr_grpo", 0.0)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_gives_a_finite_differentiable_loss(name):
    config = PRESETS[name]
    if config.aggregate == "constant":  # the generation budget is a per-run constant
        config = dataclasses.replace(config, max_tokens=8)
    torch.manual_seed(0)
    mask = torch.tensor([[1.0] * 6 + [0.0] * 2] * 2 + [[1.0] * 8] * 2)  # [B, T] = [4, 8]
    logits = torch.randn(4, 8, requires_grad=True)  # [B, T] stands in for the model
    logp = torch.nn.functional.logsigmoid(logits)  # [B, T]
    old_logp = (logp + 0.1 * torch.randn(4, 8)).detach()  # [B, T]
    ref_logp = (logp + 0.1 * torch.randn(4, 8)).detach()  # [B, T]
    rewards, groups = torch.tensor([1.0, 0.0, 0.5, 1.0]), torch.tensor([0, 0, 1, 1])  # [B]
    if config.advantage == "reinforce_pp":
        token_kl = kl_k1(old_logp, ref_logp)  # [B, T]
        advantages = reinforce_pp(rewards, token_kl, mask, config.kl_coef)  # [B, T]
    else:
        advantages = ADVANTAGES[config.advantage](rewards, groups)  # [B]
    out = policy_loss(logp, old_logp, ref_logp, advantages, mask, config, torch.rand(4, 8))
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    for key in ("pg_loss", "kl", "entropy", "clip_fraction", "ratio_mean"):
        assert isinstance(out[key], float), key


def test_dr_grpo_preset_without_max_tokens_says_how_to_fix():
    logp = torch.zeros(2, 3)  # [B, T]
    with pytest.raises(ValueError, match="max_tokens"):
        policy_loss(logp, logp, None, torch.ones(2), MASK, PRESETS["dr_grpo"])


def test_policy_loss_is_the_sum_of_its_reported_terms():
    torch.manual_seed(1)
    logp = torch.randn(2, 3, requires_grad=True)  # [B, T]
    old_logp, ref_logp = torch.randn(2, 3), torch.randn(2, 3)  # [B, T]
    entropy = torch.rand(2, 3)  # [B, T]
    config = AlgorithmConfig(kl_coef=0.1, entropy_coef=0.01, aggregate="sequence_mean")
    out = policy_loss(logp, old_logp, ref_logp, torch.tensor([1.0, -1.0]), MASK, config, entropy)
    expected = out["pg_loss"] + 0.1 * out["kl"] - 0.01 * out["entropy"]
    assert out["loss"].item() == pytest.approx(expected, rel=1e-5)
    # KL in the reward (REINFORCE++): the loss holds no KL term, the stat still reports it.
    pp = policy_loss(logp, old_logp, ref_logp, torch.ones(2, 3), MASK, PRESETS["reinforce_pp"])
    assert pp["loss"].item() == pytest.approx(pp["pg_loss"]) and pp["kl"] != 0.0


def test_policy_loss_refuses_a_kl_it_cannot_compute():
    logp = torch.zeros(2, 3)  # [B, T]
    with pytest.raises(ValueError, match="needs ref_logp"):
        policy_loss(logp, logp, None, torch.ones(2), MASK, AlgorithmConfig(kl_coef=0.1))
    with pytest.raises(ValueError, match="needs entropy"):
        policy_loss(logp, logp, None, torch.ones(2), MASK, AlgorithmConfig(entropy_coef=0.1))

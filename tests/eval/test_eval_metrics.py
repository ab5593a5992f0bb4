"""Metrics against hand-worked numbers."""

from __future__ import annotations

import math

import pytest

from selfplay_gym.eval.metrics import (
    accuracy,
    domain_averages,
    macro_average,
    majority_correct,
    mean_maj_at_k,
    mean_pass_at_k,
    pass_at_k,
)


def exact(a: str, b: str) -> bool:
    return a == b


def test_pass_at_k_hand_worked():
    # n=5, c=2: k=1 -> 2/5; k=2 -> 1 - C(3,2)/C(5,2) = 1 - 3/10; k=3 -> 1 - C(3,3)/C(5,3) = 0.9
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9)
    assert pass_at_k(5, 2, 4) == 1.0  # n - c = 3 < k: every 4-subset holds a correct sample
    assert pass_at_k(5, 0, 3) == 0.0 and pass_at_k(5, 5, 1) == 1.0


def test_pass_at_k_matches_binomials_and_stays_finite_for_large_n():
    for n, c, k in [(10, 3, 4), (16, 1, 8), (64, 7, 16)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))
    assert 0 < pass_at_k(10_000, 3, 100) < 1


def test_pass_at_k_rejects_impossible_counts():
    for n, c, k in [(4, 5, 1), (4, 2, 5), (4, 2, 0)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)


def test_accuracy_and_mean_pass_at_k():
    correct = [[True, False, False, False], [True, True, False, False]]
    assert accuracy(correct) == pytest.approx((1 / 4 + 2 / 4) / 2)
    # q1: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5; q2: 1 - C(2,2)/C(4,2) = 1 - 1/6
    assert mean_pass_at_k(correct, 2) == pytest.approx((0.5 + 5 / 6) / 2)
    assert accuracy([[True], [False], [True], [True]]) == 0.75  # greedy: one sample each


def test_maj_at_k_hand_worked():
    # 5 samples answer 7, 7, 3, 7, None; the reference is 7: the majority (3 of 4) is right
    answers = ["7", "7", "3", "7", None]
    correct = [True, True, False, True, False]
    assert majority_correct(answers, correct, exact)
    # over the first 3 only: 7, 7, 3 -> still 7; a wrong majority: 3, 3, 7
    assert majority_correct(["3", "3", "7"], [False, False, True], exact) is False
    # a tie goes to the answer seen first
    assert majority_correct(["3", "7"], [False, True], exact) is False
    assert majority_correct([None, None], [False, False], exact) is False
    assert (
        mean_maj_at_k(
            [answers, ["3", "3", "7", "7", "7"]],
            [correct, [False, False, True, True, True]],
            3,
            exact,
        )
        == 0.5
    )


def test_maj_at_k_clusters_with_the_given_equivalence():
    same_number = lambda a, b: float(a) == float(b)  # noqa: E731
    assert majority_correct(["0.5", "0.50", "2"], [True, True, False], same_number)


def test_macro_and_domain_averages_follow_the_papers():
    scores = {
        "math500": 0.8,
        "gsm8k": 0.9,
        "aime24": 0.1,
        "mmlu_pro": 0.6,
        "supergpqa": 0.3,
        "bbeh": 0.1,
        "custom": 0.5,
    }
    assert macro_average(scores, ["math500", "gsm8k", "nothing"]) == pytest.approx(0.85)
    assert macro_average({}) is None
    averages = domain_averages(scores)
    assert averages["math"] == pytest.approx(0.6)  # (0.8 + 0.9 + 0.1) / 3
    assert averages["general"] == pytest.approx(1 / 3)  # (0.6 + 0.3 + 0.1) / 3
    assert averages["all"] == pytest.approx(sum(scores.values()) / 7)
    assert averages["overall"] == pytest.approx((0.6 + 0.6 + 0.3 + 0.1) / 4)  # R-Zero
    assert domain_averages({"gsm8k": 0.5}) == {"math": 0.5, "all": 0.5}

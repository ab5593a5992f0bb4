"""Reward terms: uncertainty, batch repetition penalty, match reward and the consistency band."""

from __future__ import annotations

import math

import pytest

from selfplay_gym.envs.rewards import (
    in_band,
    match_reward,
    repetition_penalties,
    uncertainty_reward,
)

# ---------------------------------------------------------------------------------------------
# uncertainty_reward
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agreement", "code", "paper"),
    [
        # code: min(p, 1 - p); paper: 1 - 2|p - 0.5|
        (0.0, 0.0, 0.0),
        (0.3, 0.3, 0.6),
        (0.5, 0.5, 1.0),
        (0.7, 0.3, 0.6),
        (1.0, 0.0, 0.0),
        (0.25, 0.25, 0.5),
    ],
)
def test_uncertainty_reward_rows(agreement, code, paper):
    assert uncertainty_reward(agreement) == pytest.approx(code)
    assert uncertainty_reward(agreement, scale="code") == pytest.approx(code)
    assert uncertainty_reward(agreement, scale="paper") == pytest.approx(paper)


@pytest.mark.parametrize("agreement", [-0.01, 1.01, -1.0, 2.0, math.nan])
@pytest.mark.parametrize("scale", ["code", "paper"])
def test_uncertainty_reward_out_of_range(agreement, scale):
    with pytest.raises(ValueError, match="agreement"):
        uncertainty_reward(agreement, scale=scale)


@pytest.mark.parametrize("scale", ["Code", "", "both", "nltk"])
def test_uncertainty_reward_bad_scale(scale):
    with pytest.raises(ValueError, match="scale"):
        uncertainty_reward(0.5, scale=scale)


# ---------------------------------------------------------------------------------------------
# repetition_penalties
# ---------------------------------------------------------------------------------------------

# Questions with no token in common: BLEU 0, distance 1, so no two ever cluster.
Q1 = "what is the sum of 37 and 48 ?"
Q2 = "compute 12 times 9"
Q3 = "How many apples remain"
Q4 = "Solve x^2 = 4 for x"
Q5 = "Find the prime factors of 91"  # shares "the", "of" with Q1 only

PENALTY_ROWS = [
    # B = 4 distinct questions: each alone in its cluster, 1/4.
    ("distinct", [Q1, Q2, Q3, Q4], {}, [0.25, 0.25, 0.25, 0.25]),
    # An identical pair (BLEU 1, distance 0 < 0.5) forms a cluster of 2: 2/4; the rest 1/4.
    ("identical_pair", [Q1, Q2, Q1, Q3], {}, [0.5, 0.25, 0.5, 0.25]),
    ("three_copies", [Q2, Q2, Q3, Q2], {}, [0.75, 0.75, 0.25, 0.75]),
    ("all_same", [Q1] * 4, {}, [1.0, 1.0, 1.0, 1.0]),
    # None is in no cluster and gets 0, but still counts in B = 4.
    ("none_counts_in_batch", [Q1, None, Q2, None], {}, [0.25, 0.0, 0.25, 0.0]),
    ("none_and_pair", [Q1, None, Q1, Q3], {}, [0.5, 0.0, 0.5, 0.25]),
    ("empty_string_is_missing", [Q1, "", Q2], {}, [1 / 3, 0.0, 1 / 3]),
    # weight (lambda) scales every penalty.
    ("weight", [Q1, Q2, Q1, Q3], {"weight": 2.0}, [1.0, 0.5, 1.0, 0.5]),
    ("weight_zero", [Q1, Q2, Q1, Q3], {"weight": 0.0}, [0.0, 0.0, 0.0, 0.0]),
    # threshold 0: even identical questions (distance 0) are not merged (strict <).
    ("threshold_zero", [Q1, Q2, Q1, Q3], {"threshold": 0.0}, [0.25, 0.25, 0.25, 0.25]),
    ("all_none", [None, None, None], {}, [0.0, 0.0, 0.0]),
    ("empty_batch", [], {}, []),
    ("single", [Q1], {}, [1.0]),
    # Identical questions of one whitespace token have NLTK BLEU 0.1 ** (3/4) = 0.178 (no
    # 2-, 3-, 4-grams to match), which alone would leave exact duplicates such as "37+48"
    # unpenalised; identical token sequences are therefore at distance 0: one cluster of 2.
    ("short_duplicates_cluster", ["37+48", "37+48", "12*9"], {}, [2 / 3, 2 / 3, 1 / 3]),
]


@pytest.mark.parametrize(
    ("questions", "kwargs", "expected"),
    [row[1:] for row in PENALTY_ROWS],
    ids=[row[0] for row in PENALTY_ROWS],
)
def test_repetition_penalties_rows(questions, kwargs, expected):
    assert repetition_penalties(questions, **kwargs) == pytest.approx(expected)


def test_repetition_penalties_near_duplicates_cluster():
    # hyp "the cat sat on the mat" vs ref "the cat is on the mat": BLEU = (1/240) ** (1/4)
    # = 0.254 either way round (same length), distance 0.746: apart at 0.5, merged at 0.8.
    near = ["the cat sat on the mat", "the cat is on the mat", Q2]
    assert repetition_penalties(near) == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert repetition_penalties(near, threshold=0.8) == pytest.approx([2 / 3, 2 / 3, 1 / 3])


def test_repetition_penalties_partial_overlap_stays_apart():
    # Q5 shares two unigrams with Q1 but no bigram: BLEU well below 0.5, so no cluster.
    assert repetition_penalties([Q1, Q5]) == pytest.approx([0.5, 0.5])


# ---------------------------------------------------------------------------------------------
# match_reward and in_band
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("correct", "valid", "kwargs", "expected"),
    [
        (True, True, {}, 1.0),
        (False, True, {}, 0.0),
        (None, True, {}, 0.0),
        (True, True, {"format_penalty": -1.0}, 1.0),
        (False, True, {"format_penalty": -1.0}, 0.0),
        (None, False, {}, 0.0),
        (False, False, {"format_penalty": -0.5}, -0.5),
        # An invalid answer gets the format penalty even if flagged correct.
        (True, False, {"format_penalty": -1.0}, -1.0),
        (True, False, {}, 0.0),
    ],
)
def test_match_reward(correct, valid, kwargs, expected):
    assert match_reward(correct, valid, **kwargs) == expected


@pytest.mark.parametrize(
    ("agreement", "expected"),
    [
        (0.0, False),
        (0.29, False),
        (0.3, True),  # inclusive lower edge
        (0.5, True),
        (0.8, True),  # inclusive upper edge
        (0.81, False),
        (1.0, False),
    ],
)
def test_in_band(agreement, expected):
    assert in_band(agreement, 0.3, 0.8) is expected

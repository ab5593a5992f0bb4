"""Sentence BLEU, the BLEU distance matrix and average-linkage clustering, against hand-worked rows.

Every expected BLEU below is worked out in a comment (NLTK's definition with smoothing method1:
a zero n-gram match count becomes 0.1 over the same denominator); nltk itself is never imported.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from selfplay_gym.envs.similarity import (
    average_linkage_clusters,
    bleu_distance_matrix,
    sentence_bleu,
)

# ---------------------------------------------------------------------------------------------
# sentence_bleu
# ---------------------------------------------------------------------------------------------

ABC = ["a", "b", "c"]
ABCD = ["a", "b", "c", "d"]

BLEU_ROWS = [
    # hyp "a b c" vs ref "a b c d": p1 = 3/3, p2 = 2/2, p3 = 1/1, p4 = 0/0 -> 0.1/1 (the
    # denominator is at least 1); c = 3 <= r = 4 so BP = exp(1 - 4/3) = exp(-1/3).
    # BLEU = exp(-1/3) * (1 * 1 * 1 * 0.1) ** (1/4) = 0.71653 * 0.56234 = 0.40294.
    ("a b c", "a b c d", math.exp(-1 / 3) * 0.1**0.25),
    # Swapped: hyp "a b c d" vs ref "a b c": p1 = 3/4, p2 = 2/3, p3 = 1/2, p4 = 0/1 -> 0.1/1;
    # c = 4 > r = 3 so BP = 1. BLEU = (3/4 * 2/3 * 1/2 * 0.1) ** (1/4) = 0.025 ** 0.25 = 0.39764.
    ("a b c d", "a b c", 0.025**0.25),
    # Longer hypothesis, BP = 1: hyp "a b c d e" vs ref "a b c d": p1 = 4/5, p2 = 3/4, p3 = 2/3,
    # p4 = 1/2; c = 5 > r = 4. BLEU = (4/5 * 3/4 * 2/3 * 1/2) ** (1/4) = 0.2 ** 0.25 = 0.66874.
    ("a b c d e", "a b c d", 0.2**0.25),
    # Clipping: hyp "the the the the" vs ref "the cat". p1: "the" occurs 4 times in the hyp but
    # only once in the ref, so 1/4 (not 4/4). p2: 3 x "the the", none in ref -> 0.1/3. p3: 2
    # trigrams, no match -> 0.1/2. p4: 1 four-gram, no match -> 0.1/1. c = 4 > r = 2, BP = 1.
    # BLEU = (1/4 * 1/30 * 1/20 * 1/10) ** (1/4) = (1/24000) ** (1/4) = 0.080343.
    ("the the the the", "the cat", (1 / 24000) ** 0.25),
    # hyp "the cat sat on the mat" vs ref "the cat is on the mat": p1 = 5/6 (sat misses; "the"
    # twice in both), p2 = 3/5 (the cat, on the, the mat), p3 = 1/4 (on the mat), p4 = 0/3 ->
    # 0.1/3; c = r = 6 so BP = exp(0) = 1. BLEU = (5/6 * 3/5 * 1/4 * 1/30) ** (1/4)
    # = (1/240) ** (1/4) = 0.25407.
    ("the cat sat on the mat", "the cat is on the mat", (1 / 240) ** 0.25),
    # Identical sentences of at least 4 tokens: every p_n = 1, BP = 1 -> 1.
    ("what is 37 plus 48 ?", "what is 37 plus 48 ?", 1.0),
    ("a b c d", "a b c d", 1.0),
    # Identical but shorter than max_n: there is no 4-gram (and, for one token, no 2- or
    # 3-gram), so those precisions are smoothed 0.1/1 even though the sentences are equal.
    # 3 tokens: (1 * 1 * 1 * 0.1) ** (1/4) = 0.56234; 1 token: (1 * 0.1 ** 3) ** (1/4) = 0.17783.
    ("a b c", "a b c", 0.1**0.25),
    ("37+48", "37+48", 0.1**0.75),
    # No unigram in common: 0, however long the sentences (NLTK returns 0 before smoothing).
    ("a b c d", "e f g h", 0.0),
    ("x", "y", 0.0),
    # Empty hypothesis or reference: 0.
    ("", "a b c d", 0.0),
    ("a b c d", "", 0.0),
    ("", "", 0.0),
]


@pytest.mark.parametrize(("hyp", "ref", "expected"), BLEU_ROWS)
def test_sentence_bleu_hand_worked(hyp, ref, expected):
    got = sentence_bleu(ref.split(), hyp.split())
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_sentence_bleu_argument_order_is_reference_then_hypothesis():
    # Brevity is judged on the hypothesis: a short hyp is penalised, a long one is not.
    assert sentence_bleu(ABCD, ABC) == pytest.approx(0.40293516672844)
    assert sentence_bleu(ABC, ABCD) == pytest.approx(0.39763536438352)


@pytest.mark.parametrize(
    ("max_n", "expected"),
    [
        # hyp "a b c" vs ref "a b c d", BP = exp(-1/3) throughout.
        (1, math.exp(-1 / 3)),  # p1 = 1
        (2, math.exp(-1 / 3)),  # p1 = p2 = 1
        (3, math.exp(-1 / 3)),  # p1 = p2 = p3 = 1
        (4, math.exp(-1 / 3) * 0.1**0.25),  # p4 smoothed to 0.1
    ],
)
def test_sentence_bleu_max_n(max_n, expected):
    assert sentence_bleu(ABCD, ABC, max_n=max_n) == pytest.approx(expected, rel=1e-12)


def test_sentence_bleu_accepts_tuples_and_is_bounded():
    tokens = ("the", "cat", "sat", "on", "the", "mat")
    assert sentence_bleu(tokens, tokens) == 1.0
    assert 0.0 <= sentence_bleu(tokens, tokens[::-1]) <= 1.0


# ---------------------------------------------------------------------------------------------
# bleu_distance_matrix
# ---------------------------------------------------------------------------------------------

TEXTS = [
    "a b c",
    "a b c d",
    "the cat sat on the mat",
    "the cat is on the mat",
    "e f g h",
    "",
]


def test_bleu_distance_matrix_shape_symmetry_diagonal_range():
    dist = bleu_distance_matrix(TEXTS)
    assert dist.shape == (len(TEXTS), len(TEXTS))
    np.testing.assert_array_equal(dist, dist.T)
    np.testing.assert_array_equal(np.diag(dist), np.zeros(len(TEXTS)))
    assert ((dist >= 0.0) & (dist <= 1.0)).all()


def test_bleu_distance_matrix_uses_texts_i_as_hypothesis_for_i_lt_j():
    dist = bleu_distance_matrix(TEXTS)
    for i in range(len(TEXTS)):
        for j in range(i + 1, len(TEXTS)):
            expected = 1.0 - sentence_bleu(TEXTS[j].split(), TEXTS[i].split())
            assert dist[i, j] == dist[j, i] == pytest.approx(expected, rel=0, abs=1e-15)


@pytest.mark.parametrize(
    ("texts", "expected_d01"),
    [
        # hyp "a b c", ref "a b c d": 1 - 0.40294 (short hyp: BP applies).
        (["a b c", "a b c d"], 1 - math.exp(-1 / 3) * 0.1**0.25),
        # hyp "a b c d", ref "a b c": 1 - 0.39764 (BP = 1). Differs from the row above.
        (["a b c d", "a b c"], 1 - 0.025**0.25),
        (["a b c d", "a b c d"], 0.0),
        (["a b c d", "e f g h"], 1.0),
        (["a b c d", ""], 1.0),
    ],
)
def test_bleu_distance_matrix_pairs(texts, expected_d01):
    dist = bleu_distance_matrix(texts)
    assert dist[0, 1] == dist[1, 0] == pytest.approx(expected_d01, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("texts", [[], ["only one"]])
def test_bleu_distance_matrix_small(texts):
    dist = bleu_distance_matrix(texts)
    assert dist.shape == (len(texts), len(texts))
    assert not dist.any()


# ---------------------------------------------------------------------------------------------
# average_linkage_clusters
# ---------------------------------------------------------------------------------------------


def _matrix(n: int, pairs: dict[tuple[int, int], float]) -> np.ndarray:
    """A symmetric [n, n] matrix with a zero diagonal from its upper-triangle entries."""
    dist = np.zeros((n, n))
    for (i, j), value in pairs.items():
        dist[i, j] = dist[j, i] = value
    return dist


# Two tight pairs far apart, interleaved: {0, 2} and {1, 3}.
TWO_PAIRS = _matrix(
    4, {(0, 2): 0.1, (1, 3): 0.2, (0, 1): 0.9, (0, 3): 0.95, (1, 2): 0.85, (2, 3): 0.9}
)

# A near B (0.1), C near A (0.4) but far from B (0.9). Single linkage merges {A, B} and then C
# at min(0.4, 0.9) = 0.4 < 0.5. Average linkage: d({A, B}, C) = (0.4 + 0.9) / 2 = 0.65 >= 0.5,
# so C stays apart.
SINGLE_VS_AVERAGE = _matrix(3, {(0, 1): 0.1, (0, 2): 0.4, (1, 2): 0.9})

# Average linkage weighs by cluster size (UPGMA), not by merge (WPGMA). A-B merge at 0.1; then
# C joins {A, B} at (0.2 + 0.2) / 2 = 0.2 (before D at 0.3); then
# d({A, B, C}, D) = (0.3 + 0.3 + 0.9) / 3 = 0.5 < 0.55, so D merges too. WPGMA would give
# (d({A, B}, D) + d(C, D)) / 2 = (0.3 + 0.9) / 2 = 0.6 >= 0.55 and keep D apart.
UPGMA_VS_WPGMA = _matrix(
    4, {(0, 1): 0.1, (0, 2): 0.2, (1, 2): 0.2, (0, 3): 0.3, (1, 3): 0.3, (2, 3): 0.9}
)

CLUSTER_ROWS = [
    ("two_pairs", TWO_PAIRS, 0.5, [0, 1, 0, 1]),
    ("two_pairs_tight_threshold", TWO_PAIRS, 0.15, [0, 1, 0, 2]),  # 0.1 < 0.15 <= 0.2
    ("two_pairs_zero_threshold", TWO_PAIRS, 0.0, [0, 1, 2, 3]),
    # {0,2} vs {1,3}: (0.9 + 0.95 + 0.85 + 0.9) / 4 = 0.9 < 1.0 -> one cluster.
    ("two_pairs_loose_threshold", TWO_PAIRS, 1.0, [0, 0, 0, 0]),
    ("single_vs_average", SINGLE_VS_AVERAGE, 0.5, [0, 0, 1]),
    ("single_vs_average_loose", SINGLE_VS_AVERAGE, 0.7, [0, 0, 0]),  # 0.65 < 0.7
    ("upgma", UPGMA_VS_WPGMA, 0.55, [0, 0, 0, 0]),
    ("upgma_below", UPGMA_VS_WPGMA, 0.45, [0, 0, 0, 1]),
    # Strict threshold: a pair at exactly the threshold is not merged; just above it is.
    ("at_threshold", _matrix(2, {(0, 1): 0.5}), 0.5, [0, 1]),
    ("below_threshold", _matrix(2, {(0, 1): 0.5}), 0.5000001, [0, 0]),
    ("identical_at_zero", _matrix(2, {(0, 1): 0.0}), 0.0, [0, 1]),
    # Labels number clusters by first appearance of an item, not by merge order: the tight
    # pair {1, 2} merges first, yet item 0 (alone) is label 0.
    ("first_appearance", _matrix(3, {(0, 1): 0.9, (0, 2): 0.9, (1, 2): 0.1}), 0.5, [0, 1, 1]),
    ("all_far", _matrix(3, {(0, 1): 1.0, (0, 2): 1.0, (1, 2): 1.0}), 0.5, [0, 1, 2]),
    ("single", np.zeros((1, 1)), 0.5, [0]),
    ("empty", np.zeros((0, 0)), 0.5, []),
]


@pytest.mark.parametrize(
    ("dist", "threshold", "expected"),
    [row[1:] for row in CLUSTER_ROWS],
    ids=[row[0] for row in CLUSTER_ROWS],
)
def test_average_linkage_clusters_hand_built(dist, threshold, expected):
    assert average_linkage_clusters(dist, threshold) == expected


def test_average_linkage_clusters_does_not_mutate_input():
    dist = UPGMA_VS_WPGMA.copy()
    average_linkage_clusters(dist, 0.55)
    np.testing.assert_array_equal(dist, UPGMA_VS_WPGMA)


def _naive_upgma(dist: np.ndarray, threshold: float) -> list[int]:
    """Average linkage from its definition: mean over all cross pairs, recomputed every step."""
    clusters = [[i] for i in range(dist.shape[0])]
    while len(clusters) > 1:
        best, a, b = min(
            (dist[np.ix_(clusters[a], clusters[b])].mean(), a, b)
            for a in range(len(clusters))
            for b in range(a + 1, len(clusters))
        )
        if not best < threshold:
            break
        clusters[a] += clusters.pop(b)
    owner = {item: k for k, members in enumerate(clusters) for item in members}
    relabel: dict[int, int] = {}
    return [relabel.setdefault(owner[i], len(relabel)) for i in range(dist.shape[0])]


@pytest.mark.parametrize("seed", range(20))
def test_average_linkage_clusters_matches_definition(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    upper = np.triu(rng.random((n, n)), 1)
    dist = upper + upper.T
    threshold = float(rng.uniform(0.2, 0.8))
    assert average_linkage_clusters(dist, threshold) == _naive_upgma(dist, threshold)

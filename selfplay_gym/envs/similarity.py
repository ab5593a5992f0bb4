"""Question similarity for batch-level repetition penalties: sentence BLEU and clustering.

R-Zero (arXiv 2508.05004, and its caller_penalty.py) measures how alike two generated
questions are by ``d_ij = 1 - BLEU(x_i, x_j)`` (NLTK sentence BLEU, whitespace tokens,
smoothing method1) and groups them by agglomerative clustering with average linkage at a
distance threshold of 0.5. Both are small enough to write here exactly, without NLTK or
scikit-learn.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

EPSILON = 0.1
"""NLTK's SmoothingFunction.method1: a zero n-gram match count becomes 0.1."""


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def sentence_bleu(reference: Sequence[str], hypothesis: Sequence[str], max_n: int = 4) -> float:
    """Sentence BLEU of ``hypothesis`` against one ``reference``, as NLTK computes it.

    BLEU = BP * exp(sum_n w_n log p_n), w_n = 1/max_n, where p_n is the clipped n-gram
    precision (denominator at least 1), zero counts smoothed to EPSILON / denominator
    (method1), and BP = 1 if c > r else exp(1 - r/c), c = len(hypothesis), r = len(reference).
    As in NLTK, no unigram match at all gives 0. (Papineni et al. 2002; NLTK bleu_score.py.)
    """
    if not hypothesis or not reference:
        return 0.0
    log_sum = 0.0
    for n in range(1, max_n + 1):
        hyp_counts = _ngrams(hypothesis, n)
        ref_counts = _ngrams(reference, n)
        matches = sum(min(count, ref_counts[gram]) for gram, count in hyp_counts.items())
        denominator = max(1, sum(hyp_counts.values()))
        if n == 1 and matches == 0:
            return 0.0
        precision = (matches if matches else EPSILON) / denominator
        log_sum += math.log(precision) / max_n
    c, r = len(hypothesis), len(reference)
    brevity = 1.0 if c > r else math.exp(1 - r / c)
    return brevity * math.exp(log_sum)


def bleu_distance_matrix(texts: Sequence[str]) -> np.ndarray:
    """``D[i, j] = 1 - BLEU(hyp=texts[i], ref=texts[j])`` for i < j, mirrored; zero diagonal.

    Whitespace tokens, as R-Zero's caller_penalty.py. One deliberate difference: identical
    token sequences are at distance 0. NLTK gives a one-token sentence BLEU 0.1^(3/4) = 0.18
    against itself (no 2- to 4-grams), which would let a Challenger repeat a short question
    such as "37+48" without penalty. Shape [N, N].
    """
    tokens = [t.split() for t in texts]
    n = len(texts)
    dist = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            same = tokens[i] == tokens[j]
            dist[i, j] = dist[j, i] = 0.0 if same else 1.0 - sentence_bleu(tokens[j], tokens[i])
    return dist


def average_linkage_clusters(dist: np.ndarray, threshold: float) -> list[int]:
    """Agglomerative clustering, average linkage (UPGMA): a cluster label per item.

    Repeatedly merges the two clusters whose mean pairwise distance is smallest while it is
    below ``threshold`` (scikit-learn's ``distance_threshold`` semantics). Labels number the
    clusters by first appearance. Each merge is O(N) in NumPy, so a batch of 512 is cheap.
    """
    n = dist.shape[0]
    if n == 0:
        return []
    d = dist.astype(float).copy()  # [N, N] distances between current clusters
    np.fill_diagonal(d, np.inf)
    sizes = np.ones(n)
    owner = list(range(n))  # item -> index of the cluster that holds it
    alive = np.ones(n, dtype=bool)
    while alive.sum() > 1:
        flat = np.argmin(d)
        i, j = divmod(int(flat), n)
        if not d[i, j] < threshold:
            break
        merged = (sizes[i] * d[i] + sizes[j] * d[j]) / (sizes[i] + sizes[j])
        d[i, :] = merged
        d[:, i] = merged
        d[i, i] = np.inf
        d[j, :] = np.inf
        d[:, j] = np.inf
        sizes[i] += sizes[j]
        alive[j] = False
        owner = [i if o == j else o for o in owner]
    relabel: dict[int, int] = {}
    return [relabel.setdefault(o, len(relabel)) for o in owner]

"""Reusable reward terms: small pure functions, each with its formula and its source.

Modes compose these into their per-role reward functions; users compose them into their own
(``SelfPlayReasoningEnv(mode=..., rewards={"questioner": my_fn})``).
"""

from __future__ import annotations

from collections.abc import Sequence

from selfplay_gym.envs.similarity import average_linkage_clusters, bleu_distance_matrix


def uncertainty_reward(agreement: float, scale: str = "code") -> float:
    """R-Zero's Challenger reward for a question the Solver agrees with itself on ``p̂`` of the time.

    ``scale="code"``: u = min(p̂, 1 - p̂) in [0, 0.5] (caller_penalty.py, the default).
    ``scale="paper"``: r = 1 - 2|p̂ - 0.5| in [0, 1] (arXiv 2508.05004, eq. for r_uncertainty).
    Both peak at p̂ = 0.5: questions at the edge of the Solver's ability.
    """
    if not 0.0 <= agreement <= 1.0:
        raise ValueError(f"agreement must be in [0, 1], got {agreement}")
    if scale == "code":
        return min(agreement, 1.0 - agreement)
    if scale == "paper":
        return 1.0 - 2.0 * abs(agreement - 0.5)
    raise ValueError(f"scale must be 'code' or 'paper', got {scale!r}")


def repetition_penalties(
    questions: Sequence[str | None],
    threshold: float = 0.5,
    weight: float = 1.0,
    missing_as_singletons: bool = False,
) -> list[float]:
    """R-Zero's batch repetition penalty: ``λ |C_k| / B`` for a question in BLEU cluster C_k.

    Questions are clustered by average linkage on d_ij = 1 - BLEU(x_i, x_j) with distance
    threshold ``threshold`` (0.5); B is the batch size (every episode, valid or not); λ =
    ``weight`` (1). Missing questions (None) are in no cluster and get 0, or, with
    ``missing_as_singletons``, λ/B each: R-Zero's code clusters an unparsable output as the
    empty string, which no question is within BLEU distance 0.5 of. A batch of B distinct
    questions costs each 1/B. (arXiv 2508.05004 §3.2; caller_penalty.py.)
    """
    batch = len(questions)
    present = [i for i, q in enumerate(questions) if q]
    penalties = [weight / batch if missing_as_singletons else 0.0] * batch
    if not present:
        return penalties
    labels = average_linkage_clusters(
        bleu_distance_matrix([questions[i] for i in present]), threshold
    )
    sizes = {label: labels.count(label) for label in set(labels)}
    for i, label in zip(present, labels, strict=True):
        penalties[i] = weight * sizes[label] / batch
    return penalties


def match_reward(correct: bool | None, valid: bool, format_penalty: float = 0.0) -> float:
    """1 for an answer equivalent to the label, 0 otherwise; ``format_penalty`` if unparsable.

    R-Zero's Solver reward is 0.9 acc + 0.1 format with a format regex its prompt never asks
    for, so in effect it is the binary match against the majority pseudo-label (math.py).
    """
    if not valid:
        return format_penalty
    return 1.0 if correct else 0.0


def in_band(agreement: float, low: float, high: float) -> bool:
    """R-Zero's consistency filter: keep questions with low <= p̂ <= high (0.3, 0.8 in the code)."""
    return low <= agreement <= high

"""Scores from per-sample correctness: accuracy, pass@k, maj@k, and the papers' averages.

All pure functions of numbers and answers; the runner feeds them what the checker decided.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from selfplay_gym.envs.verify import majority_vote
from selfplay_gym.eval.benchmarks import GENERAL_BENCHMARKS, MATH_BENCHMARKS


def accuracy(correct: Sequence[Sequence[bool]]) -> float:
    """Mean over questions of the share of correct samples.

    acc = (1/Q) * sum_q c_q / n_q. With one greedy sample per question this is the greedy
    accuracy the papers report (R-Zero, DARC: temperature 0); with n samples it is mean@n, the
    unbiased pass@1 estimate (Chen et al. 2021).
    """
    if not correct:
        raise ValueError("accuracy of no questions is undefined")
    return sum(sum(flags) / len(flags) for flags in correct) / len(correct)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one question with ``c`` correct among ``n`` samples.

    pass@k = 1 - C(n - c, k) / C(n, k)   (Chen et al. 2021, "Evaluating Large Language Models
    Trained on Code", eq. 1), computed as 1 - prod_{i = n-c+1}^{n} (1 - k / i) so that no
    binomial coefficient is formed. Needs 0 <= c <= n and 1 <= k <= n.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over questions: (1/Q) * sum_q pass_at_k(n_q, c_q, k)."""
    if not correct:
        raise ValueError("pass@k of no questions is undefined")
    return sum(pass_at_k(len(flags), sum(flags), k) for flags in correct) / len(correct)


def majority_correct(
    answers: Sequence[str | None],
    correct: Sequence[bool],
    equivalent_fn: Callable[[str, str], bool],
) -> bool:
    """maj@k of one question: is the most common answer among these k samples right?

    The answers are clustered by ``equivalent_fn`` (``verify.majority_vote``: greedy clusters,
    ties to the answer seen first, empty answers ignored) and the largest cluster's first
    member carries the verdict, so no answer is checked twice. No valid answer -> wrong.
    maj@k as in Wang et al. 2023 (self-consistency) and Lewkowycz et al. 2022 (Minerva).
    """
    if len(answers) != len(correct):
        raise ValueError(f"{len(answers)} answers but {len(correct)} verdicts")
    vote = majority_vote(answers, equivalent_fn)
    if vote.answer is None:
        return False
    return bool(correct[list(answers).index(vote.answer)])


def mean_maj_at_k(
    answers: Sequence[Sequence[str | None]],
    correct: Sequence[Sequence[bool]],
    k: int,
    equivalent_fn: Callable[[str, str], bool],
) -> float:
    """maj@k averaged over questions, each voting over its first ``k`` samples."""
    if not answers:
        raise ValueError("maj@k of no questions is undefined")
    if any(len(a) < k for a in answers):
        raise ValueError(f"maj@{k} needs at least {k} samples per question")
    wins = [
        majority_correct(a[:k], c[:k], equivalent_fn) for a, c in zip(answers, correct, strict=True)
    ]
    return sum(wins) / len(wins)


def macro_average(scores: Mapping[str, float], names: Iterable[str] | None = None) -> float | None:
    """Unweighted mean over benchmarks (each counts once, whatever its size); None if none."""
    values = [scores[n] for n in (scores if names is None else names) if n in scores]
    return sum(values) / len(values) if values else None


def domain_averages(scores: Mapping[str, float]) -> dict[str, float]:
    """The papers' summary columns over whichever benchmarks are present.

    * ``math``: mean over MATH-500, GSM8K, AMC23, AIME24/25, Minerva, OlympiadBench
      (R-Zero "MATH-avg"; DARC "math").
    * ``general``: mean over MMLU-Pro, SuperGPQA, GPQA-Diamond, BBEH (DARC "gen").
    * ``all``: mean over every benchmark (DARC "Avg" over its 9).
    * ``overall``: mean of the math average and each general benchmark (R-Zero "Overall" =
      mean of MATH-avg, SuperGPQA, MMLU-Pro, BBEH).
    """
    out: dict[str, float] = {}
    math = macro_average(scores, MATH_BENCHMARKS)
    general = macro_average(scores, GENERAL_BENCHMARKS)
    everything = macro_average(scores)
    if math is not None:
        out["math"] = math
    if general is not None:
        out["general"] = general
    if everything is not None:
        out["all"] = everything
    parts = ([math] if math is not None else []) + [
        scores[n] for n in GENERAL_BENCHMARKS if n in scores
    ]
    if math is not None and len(parts) > 1:
        out["overall"] = sum(parts) / len(parts)
    return out

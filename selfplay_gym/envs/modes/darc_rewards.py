"""DARC's reward terms as pure functions: the Questioner's difficulty reward and ranking
penalty, the no-document solve rate and the stage-2 student's distillation reward.

Source: RUCBM/DARC examples/reward_function/difficulty_aware_questioner.py and
difficulty_aware_solver.py; each function's docstring gives its formula.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence

from selfplay_gym.envs.curriculum import usable
from selfplay_gym.envs.verify import equivalent


def difficulty_reward(
    s: float | None, difficulty: int, targets: Sequence[float] = (0.8, 0.5, 0.2)
) -> float:
    """DARC's Questioner reward: ``1 - |s - tau_d|`` if s > 0, -0.1 if s = 0, -1 if invalid.

    s: the no-document solve rate (None: no valid gold or no usable answer); tau_d =
    ``targets[d - 1]``, {1: 0.8, 2: 0.5, 3: 0.2} (difficulty_aware_questioner.py).
    """
    if s is None or s < 0 or not 1 <= difficulty <= len(targets):
        return -1.0
    return -0.1 if s == 0 else 1.0 - abs(s - targets[difficulty - 1])


def ranking_penalties(
    items: Sequence[tuple[Hashable, int, float, float] | None],
    margin: float = 0.2,
    weight: float = 0.5,
) -> list[float]:
    """DARC's per-document ranking term: each reward's change (<= 0), in input order.

    ``items[i] = (document, difficulty, s, reward)``, None if ineligible (DARC ranks questions
    with s >= 0 and reward >= 0 after the copy/relatedness checks). Per document, stable-sort by
    difficulty; for each adjacent pair with d_lo < d_hi, ``pen = max(0, s_hi + margin - s_lo)``
    and both rewards become ``max(0, r - weight * pen)``: the floor is on the reward.
    """
    rewards = [item[3] if item else 0.0 for item in items]
    by_doc: dict[Hashable, list[int]] = defaultdict(list)
    for i, item in enumerate(items):
        if item is not None:
            by_doc[item[0]].append(i)
    for members in by_doc.values():
        members.sort(key=lambda i: items[i][1])
        for lo, hi in zip(members, members[1:], strict=False):
            pen = max(0.0, items[hi][2] + margin - items[lo][2])
            if items[hi][1] > items[lo][1] and pen > 0:
                rewards[lo] = max(0.0, rewards[lo] - weight * pen)
                rewards[hi] = max(0.0, rewards[hi] - weight * pen)
    return [new - item[3] if item else 0.0 for new, item in zip(rewards, items, strict=True)]


def solve_rate(answers: Sequence[str | None], correct: Sequence[bool]) -> float | None:
    """s = matches / m over the no-document answers; None (invalid) if none is usable.

    As DARC's server: a missing box reads "None", which counts in m and never matches; when no
    sample has a usable answer the question scores -1. (It also leaves empty ``\\boxed{}``
    samples out of m; here they count, as wrong.)
    """
    return sum(correct) / len(answers) if any(map(usable, answers)) else None


def distill_reward(
    answer: str | None, fmt: bool, label: str | None, format_weight: float = 0.05,
    grader: Callable[[str, str], bool] = equivalent,
) -> float:
    """DARC's stage-2 student reward: ``(1 - w) acc + w fmt`` with w = 0.05, and 0 if fmt = 0.

    fmt: a ``\\boxed{}`` plus some text outside it; acc: the boxed answer is equivalent to the
    teacher majority label under ``grader`` (difficulty_aware_solver.py ``_score_against_gold``).
    """
    if not fmt:
        return 0.0
    acc = usable(answer) and bool(label) and grader(answer, label)
    return (1.0 - format_weight) * float(acc) + format_weight

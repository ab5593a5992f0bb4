"""Graders: the one function a mode asks "do these two final answers agree?".

A mode makes that comparison in many places (answer clusters, p-hat, labels, the band filter,
rewards, ICC convergence, solve rates). All of them go through the grader its ``grader``
option names, so swapping the grader swaps it everywhere. A grader is
``grader(candidate, reference) -> bool``; it never raises.

* ``"math_verify"``: exact match after light normalisation, else the ``math_verify`` package
  (``verify.equivalent``). The default of every mode: deterministic, bounded, on by default.
* ``"mathruler"``: the grader R-Zero's and DARC's code cluster answers with
  (vllm_service_init/start_vllm_server.py, ``process_single``; DARC's
  start_vllm_server_difficulty_aware.py, ``answer_from_text``): equal strings, or both contain
  "no ", else mathruler's ``grade_answer`` in either direction. Needs the optional package
  (``pip install 'selfplay-gym[mathruler]'``).
* ``"exact"``: equality with spaces removed (AERO's shortcut, synth/answer_analyzer.py).

``space_stripped(grader)`` puts AERO's shortcut in front of any grader.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from functools import lru_cache

from selfplay_gym.envs.verify import equivalent, normalize_answer

__all__ = ["GRADERS", "Grader", "GraderBudget", "exact_grader", "get_grader", "mathruler_grader",
           "space_stripped"]

Grader = Callable[[str, str], bool]
"""``grader(candidate, reference) -> bool``; False for a missing side, never raises."""

MATHRULER_TIMEOUT_S = 10
"""R-Zero bounds each ``grade_answer`` call at 10 s (``grade_answer_with_timeout``)."""


def exact_grader(candidate: str | None, reference: str | None) -> bool:
    """Equal once every space is removed: AERO's check before it asks its judge."""
    if not candidate or not reference:
        return False
    return candidate.replace(" ", "") == reference.replace(" ", "")


def space_stripped(grader: Grader) -> Grader:
    """``grader`` behind AERO's space-insensitive shortcut (``56`` equals ``5 6``)."""

    def shortcut_then_grader(candidate: str, reference: str) -> bool:
        return exact_grader(candidate, reference) or grader(candidate, reference)

    shortcut_then_grader.__name__ = f"space_stripped_{getattr(grader, '__name__', 'grader')}"
    return shortcut_then_grader


class _Timeout(Exception):
    pass


def _bounded(fn: Callable[[], bool], seconds: int) -> bool:
    """``fn()`` with a wall-clock bound in the main thread (SIGALRM); False on timeout or error.

    Outside the main thread no alarm can be set, and the call runs unbounded.
    """
    if threading.current_thread() is not threading.main_thread():
        try:
            return bool(fn())
        except Exception:
            return False

    def on_alarm(signum, frame):
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return bool(fn())
    except (_Timeout, Exception):
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _grade_answer() -> Callable[[str, str], bool]:
    try:
        from mathruler.grader import grade_answer
    except ImportError as exc:
        raise ImportError(
            "grader 'mathruler' needs the mathruler package (and pylatexenc): "
            "pip install 'selfplay-gym[mathruler]', or use grader='math_verify'"
        ) from exc
    return grade_answer


@lru_cache(maxsize=65536)
def mathruler_grader(candidate: str | None, reference: str | None) -> bool:
    """R-Zero's clustering test: ``a == b``, both contain "no ", or ``grade_answer`` either way.

    Source: R-Zero vllm_service_init/start_vllm_server.py, ``process_single`` (DARC's server
    repeats it). ``grade_answer(given, ground_truth)`` is mathruler's; each direction is bounded
    at 10 s and a timeout or error counts as "not equal", as there.
    """
    if not candidate or not reference:
        return False
    if candidate == reference or ("no " in candidate.lower() and "no " in reference.lower()):
        return True
    grade = _grade_answer()
    return _bounded(lambda: grade(candidate, reference), MATHRULER_TIMEOUT_S) or _bounded(
        lambda: grade(reference, candidate), MATHRULER_TIMEOUT_S
    )


def _math_verify_grader(candidate: str | None, reference: str | None) -> bool:
    return equivalent(candidate, reference)


GRADERS: dict[str, Grader] = {
    "math_verify": _math_verify_grader,
    "mathruler": mathruler_grader,
    "exact": exact_grader,
}


def get_grader(name: str) -> Grader:
    """The grader named ``name``; an unknown name or a missing optional package says what to do."""
    if name not in GRADERS:
        raise ValueError(f"unknown grader {name!r}; choose one of {', '.join(GRADERS)}")
    if name == "mathruler":
        _grade_answer()  # fail now, with the install hint, not at the first comparison
    return GRADERS[name]


class GraderBudget:
    """One episode's grader with a wall-clock budget, so hostile answers cannot stall a batch.

    Clustering m answers makes up to m(m-1)/2 comparisons, each bounded only by the grader's own
    timeout (math-verify: 5 s), so 8 crafted answers could cost minutes. Once ``seconds`` are
    spent, the remaining comparisons fall back to the exact-match shortcut
    (``verify.normalize_answer`` on both sides) and are counted in ``over_budget``, which the
    mode records as ``fields["grader_over_budget"]`` (logged as its mean per iteration). Only
    an episode that ran out of budget can depend on timing.
    """

    def __init__(self, grader: Grader, seconds: float):
        self.grader, self.seconds = grader, seconds
        self.spent, self.over_budget = 0.0, 0

    def __call__(self, candidate: str | None, reference: str | None) -> bool:
        if not candidate or not reference:
            return False
        if self.spent >= self.seconds:
            self.over_budget += 1
            return normalize_answer(candidate) == normalize_answer(reference)
        start = time.perf_counter()
        try:
            return self.grader(candidate, reference)
        finally:
            self.spent += time.perf_counter() - start

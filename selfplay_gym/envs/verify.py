"""Final answers: extract them, decide when two are the same, cluster them, vote on them.

Sources and the choices they fix:

* R-Zero labels a question by sampling the Solver several times and clustering the answers
  greedily: an answer joins the first cluster whose representative it matches, by exact string
  match first and then by a symbolic grader (in both directions there, with a timeout). The
  largest cluster's share is both the Challenger's uncertainty signal (p-hat) and the Solver's
  pseudo-label confidence, so ``majority_vote`` reports both shares.
* Hand-written answer normalisers (strip units, ``\\frac`` rewriting, ...) are replaced by the
  ``math_verify`` package, which parses LaTeX and plain expressions to SymPy and compares them.
  ``normalize_answer`` stays deliberately cheap: it only decides the exact-match shortcut.
* Symbolic checkers are known to hang on hostile input, so every check is bounded: math_verify's
  own ``signal.alarm`` timeouts in the main thread (other threads must bound the call from
  outside), and a failure or timeout becomes a recorded ``Verdict``, never an exception.

Everything here is a pure function of strings; no model code.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from math_verify import parse, verify
from math_verify.errors import TimeoutException

__all__ = [
    "FALLBACKS",
    "MajorityVote",
    "Verdict",
    "check_equivalence",
    "cluster_answers",
    "equivalent",
    "extract_all_boxed",
    "extract_answer",
    "extract_boxed",
    "majority_vote",
    "normalize_answer",
]

FALLBACKS = ("none", "last_number")
"""What ``extract_answer`` may do when there is no box."""

_BOX_OPENER = re.compile(r"\\(?:boxed|fbox)\s*\{")
# One token per escape pair (so "\{" and "\}" are literal, not grouping) or per bare brace.
_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)
# A minus sign only where it cannot be a binary minus ("3-5" ends in 5, "is -12" in -12).
_NUMBER = re.compile(r"(?:(?<![\w)\]}])-)?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)")
_CACHE_SIZE = 65536
MAX_CHECKED_DEPTH = 12
"""Brace nesting past which math_verify is not asked: 10 levels cost it about 1 s per
comparison here, 15 its whole timeout (and its alarm can be lost inside a GC callback)."""
MAX_CHECKED_CHARS = 1000


@dataclass(frozen=True)
class Verdict:
    """Whether two answers agree, and how that was decided, so a log can say why."""

    equivalent: bool
    method: str
    """``"exact"``, ``"math_verify"``, ``"none"`` (a side is missing) or ``"error"``."""
    error: str | None = None
    """A checker exception or timeout as ``"ExcType: message"``; recorded, never raised."""


@dataclass(frozen=True)
class MajorityVote:
    """The largest cluster of answers and the shares R-Zero's rewards are built from."""

    answer: str | None
    count: int
    total: int
    num_valid: int

    @property
    def agreement(self) -> float:
        """Share of all answers in the majority: R-Zero's p-hat for the Challenger reward."""
        return self.count / self.total if self.total else 0.0

    @property
    def valid_agreement(self) -> float:
        """Share of non-empty answers in the majority: R-Zero's pseudo-label confidence."""
        return self.count / self.num_valid if self.num_valid else 0.0


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------


def _box_spans(text: str) -> list[tuple[int, int | None]]:
    """(content start, content end or None if never closed) for every box opener, in order.

    One pass over braces with a stack, so many unclosed openers cost linear time, not quadratic.
    """
    openers = {m.end() - 1: m.end() for m in _BOX_OPENER.finditer(text)}
    if not openers:
        return []
    ends: dict[int, int] = {}
    stack: list[int] = []
    for token in _BRACE_TOKEN.finditer(text):
        char = token.group()
        if char == "{":
            stack.append(token.start())
        elif char == "}" and stack:
            opened = stack.pop()
            if opened in openers:
                ends[opened] = token.start()
    return [(start, ends.get(brace)) for brace, start in sorted(openers.items())]


def extract_boxed(text: object, unclosed: str = "none") -> str | None:
    """The stripped content of the last ``\\boxed{...}``/``\\fbox{...}``, or None.

    The last opener decides: if it is unclosed (a truncated answer) or empty, the result is None
    rather than an earlier box, which would reward a draft the model moved away from.
    ``unclosed="previous"`` skips unclosed openers and takes the last closed box instead, as
    AERO's answer extraction does (synth/answerer.py).
    """
    if not isinstance(text, str):
        return None
    spans = _box_spans(text)
    if unclosed == "previous":
        spans = [span for span in spans if span[1] is not None]
    if not spans:
        return None
    start, end = spans[-1]
    if end is None:
        return None
    return text[start:end].strip() or None


def extract_all_boxed(text: object) -> list[str]:
    """Every closed, non-empty box content in order of its opener (outer before inner)."""
    if not isinstance(text, str):
        return []
    contents = (text[start:end].strip() for start, end in _box_spans(text) if end is not None)
    return [content for content in contents if content]


def _last_number(text: str) -> str | None:
    """The last integer or decimal in the text, sign kept, thousands separators kept."""
    last = None
    for match in _NUMBER.finditer(text):
        last = match
    return last.group() if last else None


def extract_answer(text: object, fallback: str = "none", unclosed: str = "none") -> str | None:
    """The boxed answer, else what ``fallback`` says: ``"none"`` -> None, ``"last_number"``.

    ``unclosed`` is ``extract_boxed``'s: "none" (a last unclosed box is no answer) or "previous".
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r}; allowed values: {', '.join(FALLBACKS)}")
    boxed = extract_boxed(text, unclosed)
    if boxed is not None or not isinstance(text, str):
        return boxed
    return _last_number(text) if fallback == "last_number" else None


# ---------------------------------------------------------------------------------------------
# Equivalence
# ---------------------------------------------------------------------------------------------


def normalize_answer(answer: str) -> str:
    """A cheap canonical form for the exact-match shortcut; math_verify decides the rest.

    Strips, collapses whitespace, drops surrounding ``$`` and one trailing period. Commas and
    units are left alone: "1,000" may be a number or a pair, which only a parser can tell.
    """
    text = " ".join(answer.split()).removesuffix(".").rstrip()
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$").strip().removesuffix(".").rstrip()
    return text


def _wrap(answer: str) -> str:
    """Box a bare answer so math_verify's LaTeX extractor reads all of it.

    Unwrapped, plain-expression extraction takes a fragment ("1+x" parses as 1) or nothing
    ("\\sqrt{2}", "x+1" parse to nothing); boxed, both LaTeX and plain forms parse whole.
    """
    return f"\\boxed{{{answer}}}"


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@lru_cache(maxsize=_CACHE_SIZE)
def _math_verify_cached(candidate: str, reference: str, timeout: int | None) -> Verdict:
    """math_verify on one normalised pair; cached because self-play compares the same pairs."""
    try:
        gold = parse(_wrap(reference), parsing_timeout=timeout, raise_on_error=True)
        target = parse(_wrap(candidate), parsing_timeout=timeout, raise_on_error=True)
        same = verify(gold, target, timeout_seconds=timeout, raise_on_error=True)
    except (Exception, TimeoutException) as exc:  # TimeoutException is a BaseException
        return Verdict(False, "error", error=f"{type(exc).__name__}: {exc}")
    return Verdict(bool(same), "math_verify")


def check_equivalence(
    candidate: str | None, reference: str | None, *, timeout_seconds: int = 5
) -> Verdict:
    """Whether ``candidate`` states the same answer as ``reference``; never raises.

    Exact match after ``normalize_answer`` first, then math_verify with ``reference`` as gold.
    math_verify times out through ``signal.alarm``, which works only in the main thread; in any
    other thread the check runs unbounded and the caller must bound it.
    """
    if not candidate or not reference:
        return Verdict(False, "none")
    cand, ref = normalize_answer(candidate), normalize_answer(reference)
    if not cand or not ref:
        return Verdict(False, "none")
    if cand == ref:
        return Verdict(True, "exact")
    for text in (cand, ref):
        if len(text) > MAX_CHECKED_CHARS or _brace_depth(text) > MAX_CHECKED_DEPTH:
            return Verdict(False, "error", error=f"ValueError: answer too long or nested too deep "
                           f"for the checker (> {MAX_CHECKED_CHARS} chars or {MAX_CHECKED_DEPTH} levels)")
    timeout = timeout_seconds if _in_main_thread() else None
    return _math_verify_cached(cand, ref, timeout)


def _brace_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "})]":
            depth = max(0, depth - 1)
    return deepest


def equivalent(candidate: str | None, reference: str | None, *, timeout_seconds: int = 5) -> bool:
    """``check_equivalence`` as a bool, the shape clustering and rewards want."""
    return check_equivalence(candidate, reference, timeout_seconds=timeout_seconds).equivalent


# ---------------------------------------------------------------------------------------------
# Clustering and voting
# ---------------------------------------------------------------------------------------------

EquivalenceFn = Callable[[str, str], bool]
"""``fn(candidate, reference) -> bool``; ``equivalent`` by default."""


def _is_valid(answer: object) -> bool:
    return isinstance(answer, str) and bool(answer.strip())


def cluster_answers(
    answers: Sequence[str | None], equivalent_fn: EquivalenceFn = equivalent
) -> list[list[int]]:
    """Greedy clusters of answer indices, as R-Zero builds them, largest first.

    Each valid answer joins the first cluster whose representative (first member) it matches,
    called as ``equivalent_fn(answer, representative)``, else opens a new cluster. None and
    empty answers belong to no cluster. Ties in size keep order of first appearance.
    """
    clusters: list[list[int]] = []
    for index, answer in enumerate(answers):
        if not _is_valid(answer):
            continue
        for cluster in clusters:
            if equivalent_fn(answer, answers[cluster[0]]):
                cluster.append(index)
                break
        else:
            clusters.append([index])
    return sorted(clusters, key=lambda cluster: (-len(cluster), cluster[0]))


def majority_vote(
    answers: Sequence[str | None], equivalent_fn: EquivalenceFn = equivalent
) -> MajorityVote:
    """The largest cluster's representative and size, with the counts its shares divide by."""
    clusters = cluster_answers(answers, equivalent_fn)
    num_valid = sum(1 for answer in answers if _is_valid(answer))
    if not clusters:
        return MajorityVote(answer=None, count=0, total=len(answers), num_valid=num_valid)
    top = clusters[0]
    return MajorityVote(
        answer=answers[top[0]], count=len(top), total=len(answers), num_valid=num_valid
    )

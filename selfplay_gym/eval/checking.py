"""Is a completion right? Extract its final answer by the item's type and compare.

* ``math``: the last ``\\boxed{}`` (the papers' protocol; no boxed answer is wrong), compared to
  the reference by ``verify.check_equivalence`` inside a ``BoundedChecker`` worker, so a hung
  check is cut off, counted as wrong and recorded with method ``"timeout"``; so is one that
  math-verify's own (inner) timeout stops.
* ``choice``: the option letter in the last box (``B``, ``(B)``, ``\\text{B}``, ``B. text``, or
  the option's full text), else a trailing ``Answer: B``; right iff it is the reference letter.
* ``text`` (BBEH): the boxed answer, else the text after the last "answer is"; compared with
  BBEH's own fuzzy match (google-deepmind/bbeh ``evaluate.py``: case, quotes, ``(a)`` vs ``a``,
  numbers, brackets, a trailing question mark).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from selfplay_gym.envs.verify import Verdict, check_equivalence, extract_boxed, normalize_answer
from selfplay_gym.eval.bounded import BoundedChecker, CheckFn
from selfplay_gym.eval.items import LETTERS, EvalItem


@dataclass(frozen=True)
class Check:
    """One completion judged: what was extracted, whether it is right, and how that was decided."""

    extracted: str | None
    correct: bool
    method: str
    """exact, math_verify, none, error, timeout (math); letter (choice); fuzzy (text)."""
    error: str | None = None


# --- choice ------------------------------------------------------------------------------------
_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LEADING_LETTER = re.compile(r"^\(?([A-Z])\)?(?:$|[\s.:)\]])")
_ANSWER_LETTER = re.compile(r"(?i:answer)(?:\s+is)?\s*:?\s*\**\s*\(?([A-Z])\)?(?![A-Za-z0-9])")


def _letter_in(content: str, choices: Sequence[str]) -> str | None:
    text = _WRAPPER.sub(r"\1", content).strip().strip("$*").strip()
    valid = LETTERS[: len(choices)]
    match = _LEADING_LETTER.match(text)
    if match and match.group(1) in valid:
        return match.group(1)
    folded = " ".join(text.split()).casefold()
    for letter, choice in zip(valid, choices, strict=False):
        if folded and folded == " ".join(choice.split()).casefold():
            return letter
    return None


def extract_choice(text: str, choices: Sequence[str]) -> str | None:
    """The chosen option letter: from the last box, else the last ``Answer: X``; or None."""
    boxed = extract_boxed(text)
    if boxed is not None:
        letter = _letter_in(boxed, choices)
        if letter is not None:
            return letter
    valid = LETTERS[: len(choices)]
    found = [m.group(1) for m in _ANSWER_LETTER.finditer(text or "") if m.group(1) in valid]
    return found[-1] if found else None


# --- text (BBEH) -------------------------------------------------------------------------------
_ANSWER_PREFIXES = (
    "the final answer is:",
    "the final answer is",
    "the answer is:",
    "the answer is",
    "final answer:",
    "answer:",
)


def _strip_latex(text: str) -> str:
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text[1:-1]
    return _WRAPPER.sub(r"\1", text)


def extract_text_answer(text: str) -> str | None:
    """The boxed answer, else what follows the last "answer is"/"Answer:"; first line only."""
    boxed = extract_boxed(text)
    if boxed is None:
        lowered = (text or "").lower()
        ends = [lowered.rfind(p) + len(p) for p in _ANSWER_PREFIXES if p in lowered]
        if not ends:
            return None
        boxed = text[max(ends) :]
    lines = boxed.strip().splitlines()
    answer = _strip_latex(lines[0].strip() if lines else "").strip()
    return answer or None


def normalize_text_answer(answer: str) -> str:
    """BBEH's normalisation: lower case, ``", "`` -> ``","``, no ``**``, no final period."""
    text = answer.strip().lower().replace(", ", ",").replace("**", "")
    return text[:-1] if text.endswith(".") else text


def fuzzy_match(prediction: str, reference: str) -> bool:
    """BBEH's fuzzy match of two normalised answers (google-deepmind/bbeh, evaluate.py)."""
    if prediction == reference:
        return True
    if len(prediction) == 3 and prediction[0] == "(" and prediction[-1] == ")":
        return prediction[1] == reference
    if len(reference) == 3 and reference[0] == "(" and reference[-1] == ")":
        return reference[1] == prediction
    try:
        if float(prediction) == float(reference):
            return True
    except ValueError:
        pass
    if prediction.replace("'", "") == reference.replace("'", ""):
        return True
    if f"[{reference}]" == prediction or f"[{prediction}]" == reference:
        return True
    return prediction.endswith("?") and prediction[:-1] == reference


# --- math --------------------------------------------------------------------------------------
def math_verdict(candidate: str, reference: str, timeout_seconds: int = 3) -> Verdict:
    """``check_equivalence`` as run inside the worker (its main thread: alarms work there).

    math-verify's own timeout comes back as an ``"error"`` verdict holding its
    ``TimeoutException``; it is a timeout here, counted with those of the worker's deadline.
    """
    verdict = check_equivalence(candidate, reference, timeout_seconds=timeout_seconds)
    if verdict.method == "error" and (verdict.error or "").startswith("TimeoutException"):
        return Verdict(False, "timeout", error=verdict.error)
    return verdict


class AnswerChecker:
    """Checks completions against ``EvalItem``s; math checks run in a bounded worker process.

    ``timeout`` is the hard limit per math check in seconds (math-verify's own per-call budget
    inside the worker is a third of it). ``math_fn`` replaces the math comparison (tests inject
    a hanging one). Close it, or use it as a context manager, to stop the worker.
    """

    def __init__(
        self, timeout: float = 10.0, *, math_fn: CheckFn | None = None, context: str = "spawn"
    ):
        inner = max(1, int(timeout / 3))
        fn = math_fn or functools.partial(math_verdict, timeout_seconds=inner)
        self.math = BoundedChecker(fn, timeout, context=context)

    @property
    def timeouts(self) -> int:
        return self.math.timeouts

    def extract(self, text: str, item: EvalItem) -> str | None:
        if item.answer_type == "choice":
            return extract_choice(text, item.choices)
        if item.answer_type == "text":
            return extract_text_answer(text)
        return extract_boxed(text)

    def same(self, answer: str | None, other: str | None, answer_type: str) -> bool:
        """Whether two extracted answers agree (majority voting clusters with this)."""
        return self.compare(answer, other, answer_type).equivalent

    def compare(self, candidate: str | None, reference: str | None, answer_type: str) -> Verdict:
        if not candidate or not reference:
            return Verdict(False, "none")
        if answer_type == "choice":
            return Verdict(candidate == reference, "letter")
        if answer_type == "text":
            same = fuzzy_match(normalize_text_answer(candidate), normalize_text_answer(reference))
            return Verdict(same, "fuzzy")
        cand, ref = normalize_answer(candidate), normalize_answer(reference)
        if cand and cand == ref:
            return Verdict(True, "exact")  # no round trip to the worker for the common case
        return self.math(candidate, reference)

    def check(self, text: str, item: EvalItem) -> Check:
        extracted = self.extract(text, item)
        verdict = self.compare(extracted, item.answer, item.answer_type)
        return Check(extracted, verdict.equivalent, verdict.method, verdict.error)

    def close(self) -> None:
        self.math.close()

    def __enter__(self) -> AnswerChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

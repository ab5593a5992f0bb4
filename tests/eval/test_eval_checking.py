"""Answer checking: choice letters, BBEH text, and math checks bounded by a worker deadline."""

from __future__ import annotations

import threading
import time

import pytest

from selfplay_gym.envs.verify import Verdict
from selfplay_gym.eval.checking import (
    AnswerChecker,
    extract_choice,
    extract_text_answer,
    fuzzy_match,
    normalize_text_answer,
)
from selfplay_gym.eval.items import choice_item, math_item, text_item

CHOICES = ("Venus", "Jupiter", "Mars", "Saturn")


def hang(candidate: str, reference: str) -> Verdict:
    """A checker that never answers (module level, so a spawned worker can import it)."""
    while True:
        time.sleep(1)


def explode(candidate: str, reference: str) -> Verdict:
    raise RuntimeError("parser crashed")


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("so it is \\boxed{C}", "C"),
        ("\\boxed{(C)}", "C"),
        ("\\boxed{\\text{C}}", "C"),
        ("\\boxed{C. Mars}", "C"),
        ("\\boxed{mars}", "C"),
        ("First \\boxed{A}, no wait: \\boxed{B}", "B"),
        ("Reasoning...\nAnswer: D", "D"),
        ("The answer is (B).", "B"),
        ("\\boxed{E}", None),  # only four options
        ("The answer is Bob", None),
        ("no answer here", None),
    ],
)
def test_extract_choice(text, letter):
    assert extract_choice(text, CHOICES) == letter


def test_choice_items_are_right_iff_the_letter_matches():
    item = choice_item("q", "Which planet is red?", CHOICES, "C")
    checker = AnswerChecker()
    assert checker.check("\\boxed{C}", item).correct
    wrong = checker.check("\\boxed{A}", item)
    assert not wrong.correct and wrong.extracted == "A" and wrong.method == "letter"
    assert checker.check("I cannot tell", item).method == "none"


@pytest.mark.parametrize(
    ("text", "reference", "right"),
    [
        ("\\boxed{True}", "True", True),
        ("The answer is: (A)", "(A)", True),
        ("\\boxed{a}", "(A)", True),
        ("\\boxed{3.0}", "3", True),
        ("\\boxed{[cat, dog]}", "cat, dog", True),
        ("\\boxed{False}", "True", False),
        ("no final answer", "True", False),
    ],
)
def test_text_items_use_bbeh_fuzzy_match(text, reference, right):
    assert AnswerChecker().check(text, text_item("b", "q", reference)).correct is right


def test_bbeh_normalisation_and_fuzzy_rules():
    assert normalize_text_answer(" Cat, Dog. ") == "cat,dog"
    assert extract_text_answer("blah The final answer is: **yes**\nmore") == "**yes**"
    assert fuzzy_match("'a'", "a") and fuzzy_match("what?", "what") and not fuzzy_match("1", "2")


def test_math_checks_equivalence_in_the_worker():
    with AnswerChecker() as checker:
        item = math_item("m", "Half?", "\\frac{1}{2}")
        right = checker.check("so \\boxed{0.5}", item)
        assert right.correct and right.method == "math_verify" and right.extracted == "0.5"
        assert checker.check("\\boxed{1/2}", math_item("m", "q", "1/2")).method == "exact"
        assert not checker.check("\\boxed{0.6}", item).correct
        unboxed = checker.check("the answer is 0.5", item)
        assert unboxed.extracted is None and not unboxed.correct


def test_a_hanging_checker_is_cut_off_and_counted_wrong():
    with AnswerChecker(timeout=1.0, math_fn=hang) as checker:
        checker.math.start()  # warm start: the deadline covers the check, not the start
        began = time.monotonic()
        result = checker.check("\\boxed{x^2}", math_item("h", "q", "y^2"))
        assert time.monotonic() - began < 5
        assert not result.correct and result.method == "timeout" and "TimeoutError" in result.error
        assert checker.timeouts == 1
        # the verdict is cached: the same pair does not cost the deadline again
        began = time.monotonic()
        assert checker.check("\\boxed{x^2}", math_item("h", "q", "y^2")).method == "timeout"
        assert time.monotonic() - began < 0.5 and checker.timeouts == 1


def test_the_deadline_holds_outside_the_main_thread():
    out = {}

    def run():
        with AnswerChecker(timeout=1.0, math_fn=hang) as checker:
            out["check"] = checker.check("\\boxed{1}", math_item("h", "q", "2"))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive() and out["check"].method == "timeout"


def test_a_checker_error_is_a_wrong_verdict_and_the_worker_lives_on():
    with AnswerChecker(math_fn=explode) as checker:
        first = checker.check("\\boxed{2}", math_item("e", "q", "3"))
        assert first.method == "error" and "RuntimeError: parser crashed" in first.error
        assert checker.check("\\boxed{4}", math_item("e", "q", "5")).method == "error"

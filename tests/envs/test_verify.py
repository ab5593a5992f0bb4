"""Hand-worked rows for answer extraction, equivalence, clustering and majority vote."""

from __future__ import annotations

import random
import string
import threading
import time

import pytest
from math_verify.errors import TimeoutException

from selfplay_gym.envs import verify as verify_mod
from selfplay_gym.envs.verify import (
    MajorityVote,
    Verdict,
    check_equivalence,
    cluster_answers,
    equivalent,
    extract_all_boxed,
    extract_answer,
    extract_boxed,
    majority_vote,
    normalize_answer,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test sees math_verify run, not a verdict another test left in the cache."""
    verify_mod._math_verify_cached.cache_clear()
    yield
    verify_mod._math_verify_cached.cache_clear()


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is \\boxed{42}.", "42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{ \\sqrt{\\frac{a}{b}} }", "\\sqrt{\\frac{a}{b}}"),
        ("first \\boxed{1}, then \\boxed{2}", "2"),
        ("\\boxed{1} and finally \\fbox{7}", "7"),
        ("\\fbox{x+1}", "x+1"),
        ("\\boxed {4}", "4"),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),
        ("\\boxed{\\left\\{ x \\right.}", "\\left\\{ x \\right."),
        ("}}} stray closers \\boxed{5}}}", "5"),
        ("\\boxed{\\boxed{3}}", "3"),
        ("no box here", None),
        ("\\boxed{\\frac{1}{2}", None),
        ("\\boxed{1} then truncated \\boxed{2", None),
        ("\\boxed{}", None),
        ("\\boxed{   }", None),
        ("\\boxedx{3}", None),
        ("", None),
        (None, None),
        (3, None),
        (b"\\boxed{1}", None),
    ],
)
def test_extract_boxed(text: object, expected: str | None) -> None:
    assert extract_boxed(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\\boxed{1} and \\fbox{2} and \\boxed{\\frac{3}{4}}", ["1", "2", "\\frac{3}{4}"]),
        ("\\boxed{\\boxed{3}}", ["\\boxed{3}", "3"]),
        ("\\boxed{1} \\boxed{} \\boxed{2", ["1"]),
        ("nothing", []),
        (None, []),
        (3, []),
        (b"\\boxed{1}", []),
    ],
)
def test_extract_all_boxed(text: object, expected: list[str]) -> None:
    assert extract_all_boxed(text) == expected


def test_extract_boxed_on_100kb_of_junk() -> None:
    rng = random.Random(0)
    junk = "".join(rng.choice(string.printable) for _ in range(100_000))
    start = time.perf_counter()
    assert extract_boxed(junk + " so \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    elapsed = time.perf_counter() - start
    print(f"100 kB junk: {elapsed * 1000:.1f} ms")


def test_extract_boxed_on_many_unclosed_openers() -> None:
    """A quadratic scan would take minutes here; the one-pass scan takes milliseconds."""
    assert extract_boxed("\\boxed{" * 20_000) is None
    assert extract_all_boxed("\\boxed{" * 20_000) == []
    assert extract_boxed("{" * 50_000 + "\\boxed{7}") == "7"


@pytest.mark.parametrize(
    ("text", "fallback", "expected"),
    [
        ("\\boxed{12}", "none", "12"),
        ("so it is -12.", "none", None),
        ("so it is -12.", "last_number", "-12"),
        ("first 3, then 4.5 apples", "last_number", "4.5"),
        ("pi is about 3.14.", "last_number", "3.14"),
        ("it costs 1,000 dollars", "last_number", "1,000"),
        ("3-5", "last_number", "5"),
        ("x = .5", "last_number", ".5"),
        ("no digits at all", "last_number", None),
        ("1 2 \\boxed{x}", "last_number", "x"),
        (None, "last_number", None),
        (7, "last_number", None),
    ],
)
def test_extract_answer(text: object, fallback: str, expected: str | None) -> None:
    assert extract_answer(text, fallback=fallback) == expected


@pytest.mark.parametrize("fallback", ["last", "", "None"])
def test_extract_answer_rejects_unknown_fallback(fallback: str) -> None:
    with pytest.raises(ValueError, match="allowed values: none, last_number"):
        extract_answer("\\boxed{1}", fallback=fallback)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("  42 ", "42"),
        ("x  +\n 1", "x + 1"),
        ("$5$", "5"),
        ("$$ 5 $$", "5"),
        ("7.", "7"),
        ("$7$.", "7"),
        ("$7.$", "7"),
        ("3.0", "3.0"),
        ("1,000", "1,000"),
        ("\\$5", "\\$5"),
        ("$", "$"),
        ("", ""),
    ],
)
def test_normalize_answer(answer: str, expected: str) -> None:
    assert normalize_answer(answer) == expected


# ---------------------------------------------------------------------------------------------
# Equivalence
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "reference", "expected"),
    [
        ("85", "85", Verdict(True, "exact")),
        (" 42 ", "42", Verdict(True, "exact")),
        ("$5$", "5", Verdict(True, "exact")),
        ("0.5", "\\frac{1}{2}", Verdict(True, "math_verify")),
        ("\\dfrac12", "0.5", Verdict(True, "math_verify")),
        ("2", "3", Verdict(False, "math_verify")),
        # math_verify treats these as the same polynomial, so they count as one answer.
        ("x+1", "1+x", Verdict(True, "math_verify")),
        ("(x+1)^2", "x^2+2x+1", Verdict(True, "math_verify")),
        ("3.0", "3", Verdict(True, "math_verify")),
        ("1,000", "1000", Verdict(True, "math_verify")),
        ("x=3", "3", Verdict(True, "math_verify")),
        ("\\{1,2\\}", "\\{2,1\\}", Verdict(True, "math_verify")),
        ("\\sqrt{2}", "2", Verdict(False, "math_verify")),
        ("y=3", "x=3", Verdict(False, "math_verify")),
        (None, "3", Verdict(False, "none")),
        ("3", None, Verdict(False, "none")),
        (None, None, Verdict(False, "none")),
        ("", "3", Verdict(False, "none")),
        ("   ", "3", Verdict(False, "none")),
    ],
)
def test_check_equivalence(candidate: str | None, reference: str | None, expected: Verdict) -> None:
    assert check_equivalence(candidate, reference) == expected
    assert equivalent(candidate, reference) is expected.equivalent


def test_check_equivalence_records_a_degenerate_answer_as_error() -> None:
    verdict = check_equivalence("1/0", "\\frac{1}{0}")
    assert verdict.method == "error"
    assert not verdict.equivalent
    assert verdict.error is not None and verdict.error.startswith("ValueError: ")


def test_check_equivalence_works_outside_the_main_thread() -> None:
    results: list[Verdict] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(check_equivalence("0.5", "\\frac{1}{2}"))
            results.append(check_equivalence("2", "3"))
        except BaseException as exc:  # pragma: no cover - the failure being guarded against
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=60)
    assert not errors
    assert results == [Verdict(True, "math_verify"), Verdict(False, "math_verify")]


def test_checker_exception_becomes_an_error_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("grader exploded")

    monkeypatch.setattr(verify_mod, "verify", broken)
    verdict = check_equivalence("0.5", "\\frac{1}{2}")
    assert verdict == Verdict(False, "error", error="RuntimeError: grader exploded")
    assert equivalent("0.5", "\\frac{1}{2}") is False
    # Exact matches never reach the checker.
    assert check_equivalence("7", "7") == Verdict(True, "exact")


def test_checker_timeout_becomes_an_error_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    """math_verify's TimeoutException is a BaseException; it must still be recorded."""

    def hangs(*args: object, **kwargs: object) -> bool:
        raise TimeoutException("Operation timed out!")

    monkeypatch.setattr(verify_mod, "verify", hangs)
    verdict = check_equivalence("2", "3")
    assert verdict == Verdict(False, "error", error="TimeoutException: Operation timed out!")


def test_repeated_pairs_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real_verify = verify_mod.verify

    def counting(gold: object, target: object, **kwargs: object) -> bool:
        calls.append((gold, target))
        return real_verify(gold, target, **kwargs)

    monkeypatch.setattr(verify_mod, "verify", counting)
    for _ in range(5):
        assert equivalent("0.5", "\\frac{1}{2}")
        assert equivalent(" 0.5 ", "$\\frac{1}{2}$")
    assert len(calls) == 1


def test_main_thread_passes_the_timeout_and_other_threads_pass_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[object] = []

    def recording(gold: object, target: object, *, timeout_seconds: object, **kw: object) -> bool:
        seen.append(timeout_seconds)
        return False

    monkeypatch.setattr(verify_mod, "verify", recording)
    check_equivalence("2", "3", timeout_seconds=3)
    thread = threading.Thread(target=lambda: check_equivalence("2", "4", timeout_seconds=3))
    thread.start()
    thread.join(timeout=60)
    assert seen == [3, None]


# ---------------------------------------------------------------------------------------------
# Clustering and majority vote
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "clusters"),
    [
        (["3", "3", "4", None, "3.0"], [[0, 1, 4], [2]]),
        (["\\frac{1}{2}", "0.5", "1/2", "2"], [[0, 1, 2], [3]]),
        (["4", "3", "3", "4"], [[0, 3], [1, 2]]),  # tie: first appearance wins
        (["1", "2", "3"], [[0], [1], [2]]),
        (["5", "", "  ", None, "5"], [[0, 4]]),
        ([None, None], []),
        ([], []),
    ],
)
def test_cluster_answers(answers: list[str | None], clusters: list[list[int]]) -> None:
    assert cluster_answers(answers) == clusters


@pytest.mark.parametrize(
    ("answers", "expected", "agreement", "valid_agreement"),
    [
        (["3", "3", "4", None, "3.0"], MajorityVote("3", 3, 5, 4), 0.6, 0.75),
        (["4", "3", "3", "4"], MajorityVote("4", 2, 4, 4), 0.5, 0.5),
        (["0.5", "\\frac{1}{2}"], MajorityVote("0.5", 2, 2, 2), 1.0, 1.0),
        ([None, None, ""], MajorityVote(None, 0, 3, 0), 0.0, 0.0),
        ([], MajorityVote(None, 0, 0, 0), 0.0, 0.0),
    ],
)
def test_majority_vote(
    answers: list[str | None], expected: MajorityVote, agreement: float, valid_agreement: float
) -> None:
    vote = majority_vote(answers)
    assert vote == expected
    assert vote.agreement == pytest.approx(agreement)
    assert vote.valid_agreement == pytest.approx(valid_agreement)


def test_custom_equivalent_fn_is_honoured() -> None:
    calls: list[tuple[str, str]] = []

    def same_first_letter(candidate: str, reference: str) -> bool:
        calls.append((candidate, reference))
        return candidate[0].lower() == reference[0].lower()

    answers = ["apple", "banana", "Avocado", None, "blueberry", "cherry", "apricot"]
    assert cluster_answers(answers, same_first_letter) == [[0, 2, 6], [1, 4], [5]]
    # Each answer is compared with representatives only, as (candidate, representative).
    assert ("Avocado", "apple") in calls
    assert ("blueberry", "banana") in calls
    assert all(reference in {"apple", "banana", "cherry"} for _, reference in calls)

    vote = majority_vote(answers, same_first_letter)
    assert vote == MajorityVote("apple", 3, 7, 6)


def test_custom_equivalent_fn_can_refuse_what_math_verify_accepts() -> None:
    def exact(candidate: str, reference: str) -> bool:
        return candidate == reference

    assert cluster_answers(["3", "3.0", "3"], exact) == [[0, 2], [1]]
    assert majority_vote(["3", "3.0", "3.0"], exact) == MajorityVote("3.0", 2, 3, 3)


def test_deeply_nested_answers_are_not_sent_to_math_verify():
    # 15 levels cost math_verify its whole 5 s timeout per comparison; the guard answers at once.
    import time

    from selfplay_gym.envs.verify import check_equivalence

    nested = "{" * 15 + "1" + "}" * 15
    start = time.perf_counter()
    verdict = check_equivalence(nested, "\\frac{1}{2}")
    assert time.perf_counter() - start < 0.5
    assert not verdict.equivalent and verdict.method == "error" and "nested too deep" in verdict.error
    assert check_equivalence(nested, nested).method == "exact"  # the shortcut still applies
    assert check_equivalence("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}").equivalent

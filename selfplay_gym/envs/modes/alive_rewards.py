"""ALIVE's reward terms (reconstruction): pure functions of a verdict, a span match and a pass
rate, which ``AliveMode`` combines per role."""

from __future__ import annotations

import re

from selfplay_gym.envs.verify import check_equivalence, normalize_answer

VERDICT_SCORES = {"correct": 1.0, "partially": 0.5, "wrong": 0.0}
"""A verdict as a reward; also the reviewer's partial credit."""
_TOKEN = re.compile(r"\d|[^\W\d_]+")


def span_match(answer: str | None, span: str | None) -> bool:
    """The cheap verifiable check: same text (case and spacing aside), or for a span with a
    digit, ``check_equivalence`` (math_verify). Words stay text: math_verify reads "ab" as a*b
    and calls it equal to "ba"."""
    if not answer or not span:
        return False
    if normalize_answer(answer).casefold() == normalize_answer(span).casefold():
        return True
    return any(c.isdigit() for c in span) and check_equivalence(answer, span).equivalent


def shares_token(answer: str | None, span: str | None) -> bool:
    """Whether the answer and span share a word or a digit (casefolded): "partially" right."""
    if not answer or not span:
        return False
    return bool(set(_TOKEN.findall(answer.casefold())) & set(_TOKEN.findall(span.casefold())))


def constructor_reward(pass_rate: float, scale: str = "adversarial") -> float:
    """Reconstruction. 'adversarial': r = 1 - p for p > 0, 0 at p = 0 (PretrainZero's min-max
    mask game, arXiv 2512.03442, plus our guard). 'variance': r = 4 p (1 - p), SPICE-style
    (SPICE, arXiv 2510.24684, uses exp(-(p(1-p) - 0.25)^2 / 0.02)); both peak off p = 0."""
    if not 0.0 <= pass_rate <= 1.0:
        raise ValueError(f"pass_rate must be in [0, 1], got {pass_rate}")
    if scale == "variance":
        return 4.0 * pass_rate * (1.0 - pass_rate)
    return 1.0 - pass_rate if pass_rate > 0 else 0.0


def reviewer_reward(verdict: str, matched: bool, overlap: bool) -> float:
    """Reconstruction: 1 if the verdict agrees with the match (correct <-> match, wrong <->
    no match); VERDICT_SCORES["partially"] for "partially" on a non-match sharing a token."""
    if verdict == "partially":
        return VERDICT_SCORES["partially"] if not matched and overlap else 0.0
    return 1.0 if (verdict == "correct") == matched else 0.0


def class_balance_weight(matched: bool, num_matched: int, num_answers: int) -> float:
    """Ours: w = n / (2 n_c), n_c the answers of the episode in the reviewed answer's class
    (match or not), when both classes are present; else 1. Each class then carries half the
    reviewers' reward, so a verdict that ignores the answer ("wrong" for everything, the
    cheapest optimum when most answers miss) earns 1/2 on average and only telling the
    classes apart pays more. 2 matches of 8: w = 2 for a match, 2/3 for a miss."""
    if not 0 <= num_matched <= num_answers or num_answers < 1:
        raise ValueError(f"need 0 <= num_matched <= num_answers >= 1, got {num_matched}, {num_answers}")
    if num_matched in (0, num_answers):
        return 1.0
    same = num_matched if matched else num_answers - num_matched
    return num_answers / (2 * same)

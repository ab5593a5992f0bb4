"""Scripted ALIVE experts: the constructor that masks a number, the solver that recovers it
from the story's sums, the reviewer and the reviser."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from selfplay_gym.agents.experts_common import Seeded, agent_index, done, wrong_answer
from selfplay_gym.envs.modes.alive_parse import MASK, parse_span, redact
from selfplay_gym.envs.modes.alive_rewards import span_match
from selfplay_gym.envs.tasks import solve, worked_solution
from selfplay_gym.types import Completion, Request

_SLOT = r"(?P<{}>\d+|\[MASK\])"
STORY = re.compile(
    rf"(?P<A>\w+) has {_SLOT.format('a')} (?P<thing>\w+)\. (?P<B>\w+) has {_SLOT.format('b')} "
    rf"(?P=thing)\. Together they have {_SLOT.format('t')} (?P=thing)\. (?P=A) gives "
    rf"{_SLOT.format('m')} (?P=thing) to (?P=B), so (?P=B) now has {_SLOT.format('f')} "
    r"(?P=thing)\."
)
"""A ``WordProblemCorpus`` story, any of its numbers masked: t = a + b and f = b + m."""
RECOVER = {"a": ("t", "-", "b"), "b": ("t", "-", "a"), "t": ("a", "+", "b"),
           "m": ("f", "-", "b"), "f": ("b", "+", "m")}
"""Each story number as an operation on two others."""


def story_expression(masked: str) -> str | None:
    """The sum or difference that gives the masked number of a story ("12+7"), else None."""
    match = STORY.search(masked)
    if not match:
        return None
    slots = [name for name in RECOVER if match.group(name) == MASK]
    if len(slots) != 1:
        return None
    left, op, right = RECOVER[slots[0]]
    if MASK in (match.group(left), match.group(right)):
        return None
    return f"{match.group(left)}{op}{match.group(right)}"


class Constructor(Seeded):
    """ALIVE's constructor: one number of the passage behind [MASK] (a random one of a story's
    five, else the last number, else the last word); remembers each span in ``spans``.
    ``mask_format`` as in ``AliveConfig``: "span" names the span, "copy" writes the masked
    passage too."""

    def __init__(self, seed: int = 0, spans: dict[str, str] | None = None, max_span_chars: int = 32,
                 mask_format: str = "span"):
        super().__init__(seed)
        self.spans = {} if spans is None else spans
        self.max_span_chars = max_span_chars
        self.mask_format = mask_format

    def mask(self, passage: str) -> tuple[str, str] | None:
        story = STORY.search(passage)
        if story:
            name = str(self.rng.choice(list(RECOVER)))
            start, end = story.span(name)
        else:
            numbers = list(re.finditer(r"\d+", passage)) or list(re.finditer(r"\w+", passage))
            numbers = [m for m in numbers if len(m.group(0)) <= self.max_span_chars]
            if not numbers:
                return None
            start, end = numbers[-1].span()
        return passage[:start] + MASK + passage[end:], passage[start:end]

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            passage = str((request.info.get("task") or {}).get("document") or "").strip()
            masked = self.mask(passage)
            if masked is None:
                out.append(done(f"<masked>{MASK}</masked><answer>?</answer>"))
                continue
            text, span = masked
            reply = f"<answer>{span}</answer>"
            if self.mask_format == "span":  # the env masks the span's first occurrence
                text = parse_span(reply, passage).fields.get("masked") or text
            else:
                reply = f"<masked>{text}</masked>{reply}"
            self.spans[text] = span
            out.append(done(reply))
        return out


class SpanSolver(Seeded):
    """ALIVE's solver: the masked number from the story's sums (else the span the constructor
    remembered), right with probability ``accuracy``. For a story it first states the sum to
    do, then works it as R-Zero's solver would: ``47+38: 47+30=77, 77+8=85. \\boxed{85}``
    (reading the story and doing the sum are two steps a small model learns apart)."""

    def __init__(self, accuracy: float = 0.7, seed: int = 0, spans: Mapping[str, str] | None = None):
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
        super().__init__(seed)
        self.accuracy = accuracy
        self.spans = {} if spans is None else spans

    def solve(self, masked: str) -> str:
        expression = story_expression(masked)
        truth = solve(expression) if expression else self.spans.get(masked.strip())
        if truth is None:
            return "The passage does not say. \\boxed{?}"
        answer = truth if self.rng.random() < self.accuracy else wrong_answer(truth, self.rng)
        if expression:
            return f"{expression}: {worked_solution(expression, answer, self.rng)}"
        return f"The passage suggests {answer}. \\boxed{{{answer}}}"

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [done(self.solve(str(r.info.get("masked") or ""))) for r in requests]


class Reviewer:
    """ALIVE's reviewer: verdict ``correct`` iff the solver's answer matches the span, with a
    one-line critique that points at the computation but never states the span."""

    def review(self, request: Request) -> str:
        info, i = request.info, agent_index(request.agent)
        span, masked = str(info.get("span") or ""), str(info.get("masked") or "")
        answer = (info.get("answers") or [None] * (i + 1))[i]
        expression = story_expression(masked)
        if span_match(answer, span):
            critique = f"Right: {expression} gives it." if expression else "Right: it fits."
            verdict = "correct"
        elif answer is None:
            critique, verdict = "No boxed answer.", "wrong"
        else:
            hint = f"; recompute {expression}" if expression else ""
            critique, verdict = f"{answer} does not fit{hint}.", "wrong"
        if span and redact(critique, span) != critique:
            critique = "Right." if verdict == "correct" else "That does not fit."
        return f"{critique} <verdict>{verdict}</verdict>"

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [done(self.review(r)) for r in requests]


class Reviser(SpanSolver):
    """ALIVE's reviser: keeps an answer its reviewer called correct, else solves again."""

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            info, i = request.info, agent_index(request.agent)
            verdicts, answers = info.get("verdicts") or [], info.get("answers") or []
            kept = answers[i] if i < len(answers) and i < len(verdicts) else None
            if kept and verdicts[i] == "correct":
                out.append(done(f"The review agrees. \\boxed{{{kept}}}"))
            else:
                out.append(done(self.solve(str(info.get("masked") or ""))))
        return out

"""ALIVE's parsers: the constructor's mask, the solvers' boxed answers, the reviewers' verdicts,
and the redaction that keeps a critique from handing over the span. Pure; they never raise."""

from __future__ import annotations

import re

from selfplay_gym.envs.mode import Parsed
from selfplay_gym.envs.modes.alive_rewards import VERDICT_SCORES
from selfplay_gym.envs.verify import extract_boxed

MASK = "[MASK]"
HIDDEN = "[HIDDEN]"
VERDICT_WORDS = {"partial": "partially", "incorrect": "wrong"} | {v: v for v in VERDICT_SCORES}
_VERDICT = re.compile(r"<verdict>\s*([A-Za-z]*)\s*</verdict>", re.IGNORECASE)


def _block(text: str, tag: str) -> str | None:
    start = text.rfind(f"<{tag}>")
    end = text.find(f"</{tag}>", start) if start >= 0 else -1
    return text[start + len(tag) + 2 : end] if end >= 0 else None


def _squash(text: str) -> str:
    return " ".join(text.split())


def parse_mask(text: object, passage: object = None, max_span_chars: int = 32) -> Parsed:
    """The constructor's masked passage and hidden span; with ``passage=None``, syntax only."""
    if not isinstance(text, str):
        return Parsed(False, error="action must be text")
    masked, raw = _block(text, "masked"), _block(text, "answer")
    if masked is None:
        return Parsed(False, error="no <masked>...</masked> block")
    if raw is None:
        return Parsed(False, error="no <answer>...</answer> block")
    span = raw.strip()
    fields = {"masked": masked.strip(), "span": span}
    if not span:
        return Parsed(False, fields, error="empty <answer> span")
    if len(span) > max_span_chars:
        error = f"span of {len(span)} chars > max_span_chars={max_span_chars}"
        return Parsed(False, fields, error=error)
    if masked.count(MASK) != 1:
        return Parsed(False, fields, error=f"need exactly one {MASK}, found {masked.count(MASK)}")
    if passage is not None:
        target = _squash(passage) if isinstance(passage, str) else None
        if not any(_squash(masked.replace(MASK, s)) == target for s in (raw, span)):
            return Parsed(False, fields, error="the span put back does not give the passage")
    return Parsed(True, fields)


def parse_span(text: object, passage: object = None, max_span_chars: int = 32) -> Parsed:
    """``mask_format="span"``: the last ``<answer>`` block names the span; the passage with its
    first whole-word occurrence replaced by [MASK] is the task. With ``passage=None``, syntax."""
    if not isinstance(text, str):
        return Parsed(False, error="action must be text")
    raw = _block(text, "answer")
    span = (raw or "").strip()
    if not span:
        return Parsed(False, error="no <answer>span</answer> block")
    if len(span) > max_span_chars:
        return Parsed(False, {"span": span}, error=f"span of {len(span)} chars > max_span_chars={max_span_chars}")
    if passage is None:
        return Parsed(True, {"masked": None, "span": span})
    match = re.search(rf"(?<!\w){re.escape(span)}(?!\w)", passage) if isinstance(passage, str) else None
    if match is None:
        return Parsed(False, {"span": span}, error="the span is not a word or number of the passage")
    masked = passage[: match.start()] + MASK + passage[match.end() :]
    return Parsed(True, {"masked": masked, "span": span})


def parse_boxed(text: object) -> Parsed:
    """A solver's or reviser's answer: the last ``\\boxed{}``."""
    answer = extract_boxed(text)
    if answer is None:
        return Parsed(False, error="no \\boxed{} answer")
    return Parsed(True, {"answer": answer})


def parse_review(text: object) -> Parsed:
    """The last ``<verdict>`` tag (any case) and the critique: the text around the tags."""
    if not isinstance(text, str):
        return Parsed(False, error="action must be text")
    found = _VERDICT.findall(text)
    verdict = VERDICT_WORDS.get(found[-1].lower()) if found else None
    critique = _VERDICT.sub(" ", text).strip()
    fields = {"verdict": verdict, "critique": critique}
    if verdict is None:
        return Parsed(False, fields, error="no <verdict>correct|partially|wrong</verdict> tag")
    if not critique:
        return Parsed(False, fields, error="a verdict without a critique")
    return Parsed(True, fields)


def redact(text: str, span: str) -> str:
    """``text`` with whole-token occurrences of ``span`` (any case) replaced by [HIDDEN]."""
    return re.sub(rf"(?<!\w){re.escape(span)}(?!\w)", HIDDEN, text, flags=re.IGNORECASE)

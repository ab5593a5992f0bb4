"""Scripted experts that play every LLM role of a mode validly: warm-start demonstrations.

``mode_experts(mode, problems=...)`` returns ``{role: policy}`` for R-Zero, AERO, DARC (stage 1
or 2) and ALIVE. Every turn they write parses (``Turn.valid``), in the shortest form the mode's
format allows, so a tiny model with a context of a few hundred tokens can learn them from the
episodes (as ``agents/tiny.py`` does for R-Zero). Solving roles are right with probability
``accuracy`` and otherwise off by one to three, so groups disagree and rewards vary; checking
roles (judges, reviewers, refiners, teachers) are always right.

* AERO: the generator asks ``problems`` as ``{"question": ..., "meta": {...}}``; solvers write
  a worked solution; the judge groups equal answers; refiners re-solve correctly.
* DARC stage 1: the questioner asks for an arithmetic expression over the document's numbers,
  one operation per difficulty level ("What is 45+12-7?"), in the 7-key JSON with short
  constant values; integer, float, categorical (3 options) and boolean answer types are
  written in their own form, other types as integers. Solvers with the document are right;
  students are right with ``accuracy ** steps`` (steps = operations), so harder questions
  are solved less often. The relatedness judge says "yes".
* DARC stage 2: teachers are right, students as in stage 1.
* ALIVE: the constructor masks one number of the passage (in a ``WordProblemCorpus`` story
  any of its five numbers, each recoverable from two others; elsewhere the last number, else
  the last word). Solvers recover it from the story's sums, or from the span the constructor
  remembers; reviewers compare the boxed answer with the span and give a hint that never
  states the span; revisers keep an answer judged correct and re-solve otherwise.

Every expert with a generator is seeded and has ``reseed(seed)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from selfplay_gym.agents.scripted import (
    DatasetQuestioner,
    FunctionPolicy,
    MajorityJudge,
    NoisySolver,
)
from selfplay_gym.envs.modes.alive import MASK, parse_span, redact, span_match
from selfplay_gym.envs.tasks import Problem, solve, worked_solution
from selfplay_gym.envs.verify import equivalent
from selfplay_gym.types import Completion, Policy, Request

MODES = ("rzero", "aero", "darc", "alive")
OFFSETS = (-3, -2, -1, 1, 2, 3)
"""How far a wrong integer answer lies from the right one."""


def _done(text: str) -> Completion:
    return Completion(text=text, finish_reason="scripted")


def _index(agent: str) -> int:
    return int(agent.rsplit("_", 1)[1])


def _wrong(answer: str, rng: np.random.Generator) -> str:
    """A nearby wrong answer: an integer moved by 1..3 (a float keeps its ".0"), else changed."""
    offset = int(rng.choice(OFFSETS))
    if re.fullmatch(r"-?\d+", answer):
        return str(int(answer) + offset)
    if re.fullmatch(r"-?\d+\.0", answer):
        return f"{int(answer[:-2]) + offset}.0"
    return f"{answer}{abs(offset)}"


class _Seeded:
    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)


# --- arithmetic inside a question ------------------------------------------------------------
_CANDIDATE = re.compile(r"[-+*()\d\s]+")
_BINARY = re.compile(r"\d\s*\)?\s*[-+*]\s*\(?\s*\d")


def expression_in(question: str) -> str | None:
    """The arithmetic expression a question asks about ("What is 45+12?" -> "45+12"), else None.

    Only the first line counts (later lines may list options); the longest run of digits,
    operators and parentheses with a binary operation that ``solve`` accepts wins.
    """
    line = question.strip().split("\n", 1)[0]
    found = [c.strip() for c in _CANDIDATE.findall(line)]
    found = [c for c in found if _BINARY.search(c) and solve(c) is not None]
    return max(found, key=len) if found else None


def _steps(expression: str) -> int:
    """Binary operations in an expression (at least 1)."""
    return max(1, len(re.findall(r"[\d)]\s*[-+*]", expression)))


# --- AERO --------------------------------------------------------------------------------------
class AeroGenerator(DatasetQuestioner):
    """AERO's generator: ``{"question": <a problem>, "meta": {"domain": ...}}``, strict JSON."""

    def __init__(self, problems: Sequence[Any], seed: int = 0, domain: str = "arithmetic"):
        super().__init__(problems, seed=seed)
        self.domain = domain

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for _ in requests:
            question, _answer = self._next()
            out.append(_done(json.dumps({"question": question, "meta": {"domain": self.domain}})))
        return out


class AeroJudge:
    """AERO's equivalence judge: ``{"same": [[1, 3], [2]]}`` over the numbered distinct answers."""

    def __init__(self, same: Callable[[str, str], bool] = equivalent):
        self.same = same

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            answers, groups = request.info.get("answers") or [], request.info.get("groups") or []
            keys = [answers[g[0]] for g in groups]
            blocks: list[list[int]] = []
            for number, key in enumerate(keys, start=1):
                block = next((b for b in blocks if self.same(key, keys[b[0] - 1])), None)
                if block is None:
                    blocks.append([number])
                else:
                    block.append(number)
            out.append(_done(json.dumps({"same": blocks})))
        return out


class Refiner(_Seeded):
    """A correct solver of arithmetic questions: AERO's refiner (ICC) writes the worked solution."""

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            question = str(request.info.get("question") or "")
            expression = expression_in(question) or question
            answer = solve(expression)
            text = worked_solution(expression, answer, self.rng) if answer else "\\boxed{0}"
            out.append(_done(text))
        return out


# --- DARC --------------------------------------------------------------------------------------
_ANSWER_TYPE = re.compile(r"answer_type: (\w+)\.")
_NUMBER = re.compile(r"(?<![\w.])\d{1,4}(?![\w]|\.\d)")
_OPTION = re.compile(r"^([A-J])\. (-?\d+)\s*$", re.MULTILINE)
_CLAIM = re.compile(r"equal to (-?\d+)")
TYPES = ("integer", "float", "categorical", "boolean")
"""Answer types the DARC experts write in their own form; any other is written as integer."""


def _answer_type(request: Request) -> str:
    info = request.info
    task = info.get("task") or {}
    found = info.get("answer_type") or task.get("answer_type")
    if not found:
        text = "\n".join(m.get("content", "") for m in request.messages)
        match = _ANSWER_TYPE.search(text)
        found = match.group(1) if match else "integer"
    return found if found in TYPES else "integer"


class DarcQuestioner(_Seeded):
    """DARC's Questioner: an arithmetic question over the document's numbers, one operation per
    difficulty level, as the strict 7-key JSON. A document with fewer than two numbers gets a
    question from ``problems`` instead."""

    def __init__(self, problems: Sequence[Any], seed: int = 0):
        super().__init__(seed)
        self.problems = [p.question if hasattr(p, "question") else p[0] for p in problems]
        self.problems = [q for q in self.problems if solve(q) is not None]

    def _expression(self, document: str, difficulty: int) -> str:
        numbers = [m.group(0) for m in _NUMBER.finditer(document)]
        if len(numbers) < 2:
            if not self.problems:
                return f"{int(self.rng.integers(10, 100))}+{int(self.rng.integers(10, 100))}"
            return self.problems[int(self.rng.integers(len(self.problems)))]
        k = min(len(numbers), max(1, difficulty) + 1)
        picked = sorted(self.rng.choice(len(numbers), size=k, replace=False).tolist())
        ops = ["+"] + [str(self.rng.choice(["+", "-"])) for _ in range(k - 2)]
        text = numbers[picked[0]]
        for op, i in zip(ops, picked[1:], strict=True):
            text += op + numbers[i]
        return text

    def question(self, request: Request) -> str:
        task = request.info.get("task") or {}
        difficulty = task.get("difficulty") if isinstance(task.get("difficulty"), int) else 1
        expression = self._expression(str(task.get("document") or ""), difficulty)
        value = int(solve(expression))
        answer_type, steps = _answer_type(request), _steps(expression)
        question, answer = f"What is {expression}?", value
        if answer_type == "float":
            answer = float(value)
        elif answer_type == "categorical":
            values = [value + d for d in self.rng.choice(OFFSETS, size=2, replace=False).tolist()]
            values = sorted([value, *values])
            letters = "ABC"
            question += "".join(f"\n{letter}. {v}" for letter, v in zip(letters, values, strict=True))
            answer = letters[values.index(value)]
        elif answer_type == "boolean":
            claim = value if self.rng.random() < 0.5 else value + int(self.rng.choice(OFFSETS))
            question = f"Is {expression} equal to {claim}?"
            answer = "true" if claim == value else "false"
        return json.dumps({
            "analysis": f"{steps} step{'s' if steps > 1 else ''}.",
            "question": question,
            "intermediate_results": {},
            "answer": answer,
            "solving_time_estimate": steps,
            "required_concepts": ["arithmetic"],
            "potential_errors": ["sign slip"],
        })

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [_done(self.question(r)) for r in requests]


class DarcSolver(_Seeded):
    """DARC's Solver (any view): right with probability ``accuracy ** steps``, steps = the
    question's operations (``per_step=False``: ``accuracy``), else off by 1..3; the answer is
    written in the question's answer type after a short worked solution."""

    def __init__(self, accuracy: float = 0.7, seed: int = 0, per_step: bool = True):
        if not 0.0 <= accuracy <= 1.0:
            raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
        super().__init__(seed)
        self.accuracy, self.per_step = accuracy, per_step

    def answer(self, request: Request) -> str:
        question = str(request.info.get("question") or "")
        expression = expression_in(question)
        if expression is None:
            return "I cannot read the question. \\boxed{0}"
        value = solve(expression)
        p = self.accuracy ** _steps(expression) if self.per_step else self.accuracy
        right = self.rng.random() < p
        answer_type = _answer_type(request)
        if answer_type == "categorical":
            options = dict(_OPTION.findall(question))
            letters = sorted(options)
            if options:
                correct = next((k for k, v in options.items() if v == value), letters[0])
                others = [k for k in letters if k != correct]
                letter = correct if right or not others else str(self.rng.choice(others))
                return f"{expression}={options[letter]}, so {letter}. \\boxed{{{letter}}}"
        if answer_type == "boolean":
            claim = _CLAIM.search(question)
            if claim:
                truth = claim.group(1) == value
                said = truth if right else not truth
                shown = value if right else (claim.group(1) if said else _wrong(value, self.rng))
                word = "true" if said else "false"
                return f"{expression}={shown}, so {word}. \\boxed{{{word}}}"
        answer = value if right else _wrong(value, self.rng)
        if answer_type == "float":
            answer += ".0"
        return worked_solution(expression, answer, self.rng)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [_done(self.answer(r)) for r in requests]


# --- ALIVE -------------------------------------------------------------------------------------
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


class Constructor(_Seeded):
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
                out.append(_done(f"<masked>{MASK}</masked><answer>?</answer>"))
                continue
            text, span = masked
            reply = f"<answer>{span}</answer>"
            if self.mask_format == "span":  # the env masks the span's first occurrence
                text = parse_span(reply, passage).fields.get("masked") or text
            else:
                reply = f"<masked>{text}</masked>{reply}"
            self.spans[text] = span
            out.append(_done(reply))
        return out


class SpanSolver(_Seeded):
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
        answer = truth if self.rng.random() < self.accuracy else _wrong(truth, self.rng)
        if expression:
            return f"{expression}: {worked_solution(expression, answer, self.rng)}"
        return f"The passage suggests {answer}. \\boxed{{{answer}}}"

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [_done(self.solve(str(r.info.get("masked") or ""))) for r in requests]


class Reviewer:
    """ALIVE's reviewer: verdict ``correct`` iff the solver's answer matches the span, with a
    one-line critique that points at the computation but never states the span."""

    def review(self, request: Request) -> str:
        info, i = request.info, _index(request.agent)
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
        return [_done(self.review(r)) for r in requests]


class Reviser(SpanSolver):
    """ALIVE's reviser: keeps an answer its reviewer called correct, else solves again."""

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            info, i = request.info, _index(request.agent)
            verdicts, answers = info.get("verdicts") or [], info.get("answers") or []
            kept = answers[i] if i < len(answers) and i < len(verdicts) else None
            if kept and verdicts[i] == "correct":
                out.append(_done(f"The review agrees. \\boxed{{{kept}}}"))
            else:
                out.append(_done(self.solve(str(info.get("masked") or ""))))
        return out


# --- the one entry point -----------------------------------------------------------------------
def mode_experts(
    mode: str,
    *,
    problems: Sequence[Problem],
    accuracy: float = 0.7,
    seed: int = 0,
    stage: int = 1,
    mask_format: str = "span",
) -> dict[str, Policy]:
    """Role -> scripted expert for every role ``mode`` asks an LLM to play (also the optional
    ones: AERO's judge, DARC's relatedness judge, ALIVE's reviser).

    ``problems`` feeds the R-Zero and AERO question writers (and DARC's, for a document
    without numbers); ``accuracy`` is the solving roles' chance of being right; ``stage``
    picks DARC's stage (1: questioner, solver, student, judge; 2: teacher, student);
    ``mask_format`` ALIVE's constructor format (``AliveConfig.mask_format``).
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
    if mode == "rzero":
        return {
            "questioner": DatasetQuestioner(problems, seed=seed),
            "solver": NoisySolver(solve, accuracy, seed=seed + 1, explain=worked_solution),
            "judge": MajorityJudge(),
        }
    if mode == "aero":
        return {
            "generator": AeroGenerator(problems, seed=seed),
            "solver": NoisySolver(solve, accuracy, seed=seed + 1, explain=worked_solution),
            "judge": AeroJudge(),
            "refiner": Refiner(seed + 2),
        }
    if mode == "darc":
        if stage == 1:
            return {
                "questioner": DarcQuestioner(problems, seed=seed),
                "solver": DarcSolver(1.0, seed=seed + 1),
                "student": DarcSolver(accuracy, seed=seed + 2),
                "judge": FunctionPolicy(lambda request: "yes"),
            }
        if stage == 2:
            return {"teacher": DarcSolver(1.0, seed=seed + 1),
                    "student": DarcSolver(accuracy, seed=seed + 2)}
        raise ValueError(f"DARC stage must be 1 or 2, got {stage!r}")
    if mode == "alive":
        spans: dict[str, str] = {}
        return {
            "constructor": Constructor(seed, spans, mask_format=mask_format),
            "solver": SpanSolver(accuracy, seed + 1, spans),
            "reviewer": Reviewer(),
            "reviser": Reviser(accuracy, seed + 2, spans),
        }
    raise ValueError(f"no experts for mode {mode!r}; choose one of {MODES}")

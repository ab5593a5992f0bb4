"""The embedded default domain: integer arithmetic small enough for a tiny model on a CPU.

Levels rise in difficulty so a ~1M-parameter model can learn levels 1-2 partly and still has
room to improve; ``solve`` is the exact, safe checker both the reference judge and the
evaluation of generated questions rely on.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from selfplay_gym.envs.tasks.base import TaskItem

LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)
"""1: a+b or a-b; 2: a+b-c or a-b+c; 3: a*b; 4: a*b+c; 5: (a+b)*c."""

MAX_EXPRESSION_CHARS = 200

_TRAILER = re.compile(r"\s*(?:=\s*\??|\?)\s*$")
_ALLOWED = re.compile(r"[0-9+\-*()\s]+")


@dataclass(frozen=True)
class Problem:
    """One generated question with its exact answer; compact so short contexts suffice."""

    question: str
    answer: str
    level: int


def _two_digit(rng: np.random.Generator) -> int:
    return int(rng.integers(10, 100))


def _one_digit(rng: np.random.Generator) -> int:
    return int(rng.integers(2, 10))


def _make(rng: np.random.Generator, level: int) -> tuple[str, int]:
    """Question text and its value; the value is computed directly, not by parsing the text."""
    if level == 1:
        a, b = _two_digit(rng), _two_digit(rng)
        return (f"{a}+{b}", a + b) if rng.random() < 0.5 else (f"{a}-{b}", a - b)
    if level == 2:
        a, b, c = _two_digit(rng), _two_digit(rng), _two_digit(rng)
        return (f"{a}+{b}-{c}", a + b - c) if rng.random() < 0.5 else (f"{a}-{b}+{c}", a - b + c)
    if level == 3:
        a, b = _two_digit(rng), _one_digit(rng)
        return f"{a}*{b}", a * b
    if level == 4:
        a, b, c = _two_digit(rng), _one_digit(rng), _two_digit(rng)
        return f"{a}*{b}+{c}", a * b + c
    a, b, c = _two_digit(rng), _two_digit(rng), _one_digit(rng)
    return f"({a}+{b})*{c}", (a + b) * c


def _is_level(level: object) -> bool:
    is_int = isinstance(level, (int, np.integer)) and not isinstance(level, bool)
    return is_int and level in LEVELS


def _check_level(level: object) -> int:
    if not _is_level(level):
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    return int(level)  # type: ignore[call-overload]


@dataclass
class ArithmeticTask:
    """Arithmetic problems at chosen difficulty levels; a ``TaskSource``."""

    levels: tuple[int, ...] = (1, 2, 3)
    name: str = "arithmetic"
    DOMAIN: ClassVar[str] = "integer arithmetic: one expression using + - * and parentheses"

    def __post_init__(self) -> None:
        try:
            levels = tuple(self.levels)
        except TypeError:
            raise ValueError(
                f"levels must be a non-empty tuple drawn from {LEVELS}, got {self.levels!r}"
            ) from None
        if not levels:
            raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got ()")
        bad = [lv for lv in levels if not _is_level(lv)]
        if bad:
            raise ValueError(f"levels must be drawn from {LEVELS}, got invalid {bad!r}")
        self.levels = tuple(int(lv) for lv in levels)

    def problem(self, rng: np.random.Generator, level: int | None = None) -> Problem:
        """One problem; ``level=None`` draws a level uniformly from ``self.levels``."""
        if level is None:
            level = self.levels[int(rng.integers(len(self.levels)))]
        level = _check_level(level)
        question, value = _make(rng, level)
        return Problem(question=question, answer=str(value), level=level)

    def sample(self, rng: np.random.Generator) -> TaskItem:
        p = self.problem(rng)
        return TaskItem(
            task_id=f"arith-L{p.level}-{p.question}",
            domain=self.DOMAIN,
            difficulty=p.level,
            reference=p.answer,
        )

    def problems(self, n: int, seed: int, level: int | None = None) -> list[Problem]:
        """A deterministic list: the same ``(n, seed, level)`` always gives the same problems."""
        rng = np.random.default_rng(seed)
        return [self.problem(rng, level) for _ in range(n)]

    def answer(self, question: str) -> str | None:
        """Ground truth for any question of this domain (for reference judges and evaluation)."""
        return solve(question)

    def held_out(self, n: int = 200, seed: int = 1234) -> list[Problem]:
        """A fixed evaluation set, identical across calls and processes."""
        return self.problems(n, seed)


def _evaluate(node: ast.AST) -> int:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        return left - right if isinstance(node.op, ast.Sub) else left * right
    raise ValueError(f"unsupported syntax: {type(node).__name__}")


def solve(expression: object) -> str | None:
    """The exact integer value of ``expression`` as a string, or None if it is not plain arithmetic.

    Parsed with ``ast`` and walked by hand (never ``eval``): only decimal integers, ``+ - *``,
    unary minus/plus and parentheses. ``x``/``X``/``×`` mean ``*``; surrounding whitespace and a
    trailing ``=``, ``= ?`` or ``?`` are ignored. Never raises.
    """
    if not isinstance(expression, str) or len(expression) > MAX_EXPRESSION_CHARS:
        return None
    text = _TRAILER.sub("", expression.strip())
    for times in ("×", "x", "X"):
        text = text.replace(times, "*")
    # Characters first: rules out names, floats, "1e5", "0x10", "1_000" before parsing.
    if not _ALLOWED.fullmatch(text) or not text.strip():
        return None
    try:
        return str(_evaluate(ast.parse(text.strip(), mode="eval")))
    except Exception:
        return None


_TWO_OPERANDS = re.compile(r"\s*(\d{1,3})\s*([+-])\s*(\d{1,3})\s*")


def worked_solution(question: str, answer: str, rng: np.random.Generator) -> str:
    """A short step-by-step solution of ``a+b`` or ``a-b`` ending in ``\\boxed{answer}``.

    One of three decompositions is drawn at random (split off the tens of ``b``, the tens of
    ``a``, or tens and ones apart), so that different samples reach an answer by different
    paths: what makes a majority vote over samples more reliable than one sample
    (self-consistency, Wang et al. 2022). The last step states ``answer`` even when it is
    wrong, as a noisy expert would. Other questions get ``question=answer``.
    """
    match = _TWO_OPERANDS.fullmatch(question)
    if not match:
        return f"{question}={answer}. \\boxed{{{answer}}}"
    a, op, b = int(match[1]), match[2], int(match[3])
    tens_a, ones_a, tens_b, ones_b = a - a % 10, a % 10, b - b % 10, b % 10
    sign = 1 if op == "+" else -1
    strategy = int(rng.integers(3))
    if strategy == 0 and ones_b and tens_b:  # a+b = (a+tens_b)+ones_b
        mid = a + sign * tens_b
        steps = [f"{a}{op}{tens_b}={mid}", f"{mid}{op}{ones_b}"]
    elif strategy == 1 and ones_a and tens_a:  # a+b = (tens_a+b)+ones_a; a-b = (tens_a-b)+ones_a
        mid = tens_a + sign * b
        steps = [f"{tens_a}{op}{b}={mid}", f"{mid}+{ones_a}"]
    elif ones_a and ones_b and tens_a and tens_b:  # tens and ones apart
        tens, ones = tens_a + sign * tens_b, ones_a + sign * ones_b
        steps = [f"{tens_a}{op}{tens_b}={tens}", f"{ones_a}{op}{ones_b}={ones}",
                 f"{tens}+{ones}" if ones >= 0 else f"{tens}-{-ones}"]
    else:
        steps = [f"{a}{op}{b}"]
    return ", ".join(steps) + f"={answer}. \\boxed{{{answer}}}"


def is_arithmetic(expression: object) -> bool:
    """Whether ``expression`` is a well-formed integer arithmetic expression ``solve`` accepts."""
    return solve(expression) is not None

"""Small Python functions as tasks: what does ``f(args)`` return? The sandbox says.

An embedded, deterministic source of code problems, for any mode that asks questions: each
problem is one of a few template families (loops, list filters, string slicing, counting,
recursion, a bounded while loop) filled with constants and inputs drawn from the caller's
generator, so one seed is one problem. Every program is pure (no imports, no I/O, no
randomness, no set or hash-order iteration: the sandbox's interpreter runs with a random hash
seed), so it returns the same value on every run. That value is never computed here: the
program runs in the sandbox (``envs/sandbox.py``) and its JSON result is the reference, which
is exactly how a model-written program would be labelled.

Answers are Python literals (``[3, 1]``, ``'cba2'``); ``matches`` compares a candidate with a
reference as JSON values, so ``(3, 1)`` and ``[3, 1]`` agree, as they do once returned
through the sandbox. ``sample`` runs one program per call (about 0.1 s); ``problems`` runs a
batch in parallel.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from selfplay_gym.envs.sandbox import ExecutionResult, Isolation, Job, run_many
from selfplay_gym.envs.tasks.base import TaskItem

LEVELS: tuple[int, ...] = (1, 2, 3)
"""Input size grows with the level: loop bounds, list and string lengths, recursion depth."""
MAX_ANSWER_CHARS = 1000
CALL = "f"


def _ints(rng: np.random.Generator, n: int, low: int = -9, high: int = 30) -> list[int]:
    return [int(v) for v in rng.integers(low, high, size=n)]


def _word(rng: np.random.Generator, n: int) -> str:
    return "".join("abcdeab"[int(i)] for i in rng.integers(0, 7, size=n))


def _accumulate(rng, level):
    k, m, d, start = (int(rng.integers(2, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 4)),
                      int(rng.integers(0, 10)))
    program = (f"def f(n):\n    total = {start}\n    for i in range(n):\n"
               f"        if i % {k} == 0:\n            total += i * {m}\n"
               f"        else:\n            total -= {d}\n    return total\n")
    return program, (int(rng.integers(3, 4 + 4 * level)),)


def _filter_list(rng, level):
    k, m, c = int(rng.integers(2, 4)), int(rng.integers(1, 4)), int(rng.integers(-5, 6))
    keep = ("==", "!=")[int(rng.integers(2))]
    order = ("", ", reverse=True")[int(rng.integers(2))]
    program = (f"def f(xs):\n    out = []\n    for x in xs:\n        if x % {k} {keep} 0:\n"
               f"            out.append(x * {m} + {c})\n    return sorted(out{order})\n")
    return program, (_ints(rng, 3 + 2 * level),)


def _slice_string(rng, level):
    step = (-1, 2, -2)[int(rng.integers(3))]
    method = ("upper", "lower", "swapcase")[int(rng.integers(3))]
    k = int(rng.integers(2, 6))
    word = _word(rng, 3 + 2 * level)
    word = word[: len(word) // 2].upper() + word[len(word) // 2:]  # mixed case: methods differ
    program = f"def f(s):\n    return s[::{step}].{method}() + str(len(s) % {k})\n"
    return program, (word,)


def _count(rng, level):
    top = int(rng.integers(1, 4))
    program = ("def f(s):\n    counts = {}\n    for ch in s:\n"
               "        counts[ch] = counts.get(ch, 0) + 1\n"
               f"    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))\n"
               f"    return ranked[:{top}]\n")
    return program, (_word(rng, 4 + 3 * level),)


def _recurse(rng, level):
    base, c, step = int(rng.integers(1, 3)), int(rng.integers(0, 4)), int(rng.integers(2, 4))
    op = ("+", "-")[int(rng.integers(2))]
    program = (f"def f(n):\n    if n < {base + 1}:\n        return n + {c}\n"
               f"    return f(n - 1) {op} f(n - {step})\n")
    return program, (int(rng.integers(3, 4 + 3 * level)),)


def _bounded_while(rng, level):
    a, cap = int(rng.integers(1, 4)) * 2 + 1, int(rng.integers(5, 10 + 10 * level))
    program = (f"def f(n):\n    steps = 0\n    while n != 1 and steps < {cap}:\n"
               f"        n = n // 2 if n % 2 == 0 else ({a} * n + 1) % 1000\n"
               "        steps += 1\n"
               "    return [n, steps]\n")
    return program, (int(rng.integers(2, 10 * level + 10)),)


FAMILIES: dict[str, Callable[[np.random.Generator, int], tuple[str, tuple]]] = {
    "accumulate": _accumulate, "filter_list": _filter_list, "slice_string": _slice_string,
    "count": _count, "recurse": _recurse, "bounded_while": _bounded_while,
}
"""Family name -> (generator, level) -> (program defining ``f``, its arguments)."""


@dataclass(frozen=True)
class CodeProblem:
    """One program, its arguments and the value the sandbox returned for them."""

    family: str
    level: int
    program: str
    args: tuple
    output: Any

    @property
    def question(self) -> str:
        call = ", ".join(repr(a) for a in self.args)
        return f"What does f({call}) return?\n\n```python\n{self.program}```"

    @property
    def answer(self) -> str:
        return repr(self.output)


@dataclass(frozen=True)
class CodeItem(TaskItem):
    """A task item that carries its program, call and question (``episode.task[...]``)."""

    program: str = ""
    call: str = CALL
    args: tuple = ()
    question: str = ""


class CodeTaskError(RuntimeError):
    """A generated program did not return a value in the sandbox: a bug in a template."""


@dataclass
class CodeTask:
    """Code problems at chosen levels, labelled by the sandbox; a ``TaskSource``."""

    levels: tuple[int, ...] = (1, 2)
    families: tuple[str, ...] = tuple(FAMILIES)
    timeout_s: float = 5.0
    isolation: Isolation = "namespace"
    name: str = "code"
    DOMAIN: ClassVar[str] = "Python: the value a small function returns"
    _outputs: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.levels = tuple(self.levels)
        self.families = tuple(self.families)
        if not self.levels or any(lv not in LEVELS for lv in self.levels):
            raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {self.levels!r}")
        unknown = [f for f in self.families if f not in FAMILIES]
        if not self.families or unknown:
            raise ValueError(f"families must be a non-empty subset of {tuple(FAMILIES)}, "
                             f"got unknown {unknown!r}")

    def draw(self, rng: np.random.Generator, level: int | None = None) -> tuple[str, int, str, tuple]:
        """(family, level, program, args) without running anything."""
        if level is None:
            level = self.levels[int(rng.integers(len(self.levels)))]
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        family = self.families[int(rng.integers(len(self.families)))]
        program, args = FAMILIES[family](rng, level)
        return family, int(level), program, args

    def problem(self, rng: np.random.Generator, level: int | None = None) -> CodeProblem:
        return self._label([self.draw(rng, level)])[0]

    def problems(self, n: int, seed: int, level: int | None = None) -> list[CodeProblem]:
        """A deterministic list: the same ``(n, seed, level)`` always gives the same problems."""
        rng = np.random.default_rng(seed)
        return self._label([self.draw(rng, level) for _ in range(n)])

    def held_out(self, n: int = 50, seed: int = 1234) -> list[CodeProblem]:
        """A fixed evaluation set, identical across calls and processes."""
        return self.problems(n, seed)

    def sample(self, rng: np.random.Generator) -> CodeItem:
        p = self.problem(rng)
        digest = hashlib.sha1(f"{p.program}{p.args!r}".encode()).hexdigest()[:12]
        return CodeItem(task_id=f"code-L{p.level}-{p.family}-{digest}", domain=self.DOMAIN,
                        difficulty=p.level, reference=p.answer, program=p.program, call=CALL,
                        args=p.args, question=p.question)

    def _label(self, drawn: list[tuple[str, int, str, tuple]]) -> list[CodeProblem]:
        """Run every program not seen before in the sandbox (in parallel); cache the values."""
        keys = [_key(program, args) for _, _, program, args in drawn]
        todo = {k: (program, args) for k, (_, _, program, args) in zip(keys, drawn, strict=True)
                if k not in self._outputs}
        jobs = [Job(program, CALL, args, timeout_s=self.timeout_s) for program, args in todo.values()]
        for key, result in zip(todo, run_many(jobs, isolation=self.isolation), strict=True):
            self._outputs[key] = _value(result, todo[key][0])
        return [CodeProblem(family, level, program, args, self._outputs[k])
                for k, (family, level, program, args) in zip(keys, drawn, strict=True)]


def _key(program: str, args: tuple) -> str:
    return json.dumps([program, list(args)])


def _value(result: ExecutionResult, program: str) -> Any:
    if not result.ok:
        raise CodeTaskError(f"generated program gave {result.verdict} ({result.detail}; "
                            f"{result.error_type}: {result.error_message}):\n{program}")
    return result.value


def matches(candidate: object, reference: str) -> bool:
    """Whether ``candidate`` (a model's answer) is the value ``reference`` writes.

    Both are read as Python literals (``ast.literal_eval``: no code runs) and compared as JSON
    values, the form the sandbox returns; unreadable or oversized text never matches. Never
    raises."""
    if not isinstance(candidate, str) or len(candidate) > MAX_ANSWER_CHARS:
        return False
    try:
        def as_json(text: str) -> Any:
            return json.loads(json.dumps(ast.literal_eval(text.strip())))

        return as_json(candidate) == as_json(reference)
    except Exception:  # SyntaxError, ValueError, TypeError (sets, bytes), RecursionError
        return False

"""What the ``azr`` mode reads in a model's text, and how it runs programs: fenced blocks,
banned words, Python literals, and ``f`` called on inputs in the sandbox.

Model-written programs are hostile input, so they run only in ``envs/sandbox.py``; one run
calls ``f`` on every input of a proposal or a solver's answer and returns each ``repr`` (or
None where that call raised), so an induction check of ten inputs costs one process, not ten.
Inputs are source text (``[1, 2], 'ab'`` is two arguments), placed between the parentheses of
``f(...)`` on lines of their own, exactly as AZR's executor evaluates ``f(<input>)``.
Values are compared as Python literals (``ast.literal_eval``: nothing runs in this process).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selfplay_gym.envs.sandbox import Isolation, Job, run_many

BANNED_WORDS: tuple[str, ...] = (
    "logging", "random", "multiprocessing", "pebble", "subprocess", "threading", "datetime",
    "time", "hashlib", "hmac", "bcrypt", "os.sys", "os.path", "sys.exit", "os.environ",
    "calendar",
)
"""AZR's ``azr.data_selection_strategy.banned_words`` (configs/azr_ppo_trainer.yaml): modules
that make a program non-deterministic or reach outside it."""
MAX_VALUE_CHARS = 1000
"""An input or output longer than this is not a task (AZR caps prompt content, too)."""
MAX_PROGRAM_CHARS = 4000
_BLOCK = re.compile(r"```([A-Za-z]*)[ \t]*\n(.*?)\n?```", re.DOTALL)
_RUNNER = "__selfplay_outputs__"


def blocks(text: str, tag: str) -> list[str]:
    """Contents of every fenced block tagged ``tag`` (```` ```input ````), in order."""
    return [body.strip() for name, body in _BLOCK.findall(text) if name.lower() == tag]


def last_block(text: str, tag: str) -> str | None:
    found = blocks(text, tag)
    return found[-1] if found and found[-1] else None


def defines_f(program: str) -> bool:
    """Whether the program parses and defines a top-level function ``f``."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return any(isinstance(node, ast.FunctionDef) and node.name == "f" for node in tree.body)


def banned_word(program: str, banned: Sequence[str] = BANNED_WORDS) -> str | None:
    """The first banned word the program uses: an imported module (``import random``, ``from
    time import sleep``), or a dotted name written anywhere (``os.path``); None if clean."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # not a program: defines_f refuses it
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    for word in banned:
        if ("." in word and word in program) or word in imported:
            return word
    return None


def literal(text: str | None) -> tuple[bool, Any]:
    """``(True, value)`` when ``text`` is a Python literal of at most MAX_VALUE_CHARS."""
    if not isinstance(text, str) or len(text) > MAX_VALUE_CHARS:
        return False, None
    try:
        return True, ast.literal_eval(text.strip())
    except Exception:  # SyntaxError, ValueError, TypeError, RecursionError, MemoryError
        return False, None


def same_value(candidate: str | None, reference: str | None) -> bool:
    """Whether two texts are equal Python literals (AZR compares evaluated values). Never raises."""
    ok_a, a = literal(candidate)
    ok_b, b = literal(reference)
    try:
        return ok_a and ok_b and bool(a == b)
    except Exception:  # pragma: no cover - literals compare without raising
        return False


def call_program(program: str, inputs: Sequence[str]) -> str:
    """The program, then a function that calls ``f`` on each input and returns the reprs."""
    thunks = "".join(f"    lambda: f(\n{text}\n),\n" for text in inputs)
    return (f"{program}\n\n\ndef {_RUNNER}():\n    results = []\n    for thunk in [\n{thunks}"
            "    ]:\n        try:\n            results.append(repr(thunk()))\n"
            "        except Exception:\n            results.append(None)\n    return results\n")


@dataclass(frozen=True)
class Executor:
    """Runs ``f`` on inputs in the sandbox, many programs at a time."""

    timeout_s: float = 10.0
    """AZR's ``execute_max_timeout``."""
    memory_mb: int = 512
    isolation: Isolation = "namespace"
    workers: int = 2

    def outputs(self, runs: Sequence[tuple[str, Sequence[str]]]) -> list[list[str | None] | None]:
        """Per (program, inputs): the repr of each call (None where it raised or its repr is
        over MAX_VALUE_CHARS), or None when the program failed as a whole (did not compile,
        timed out, ran out of memory, printed past the cap, exited early)."""
        jobs = [Job(call_program(program, inputs), call=_RUNNER, timeout_s=self.timeout_s,
                    memory_mb=self.memory_mb) for program, inputs in runs]
        results = run_many(jobs, workers=self.workers, isolation=self.isolation) if jobs else []
        out: list[list[str | None] | None] = []
        for result, (_, inputs) in zip(results, runs, strict=True):
            value = result.value if result.ok else None
            if not isinstance(value, list) or len(value) != len(inputs):
                out.append(None)
                continue
            out.append([v if isinstance(v, str) and len(v) <= MAX_VALUE_CHARS else None
                        for v in value])
        return out

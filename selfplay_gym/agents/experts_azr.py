"""Scripted experts for the ``azr`` mode: a proposer of template programs and a noisy solver.

The proposer writes programs from ``CodeTask``'s families, or from the one-line string family
here (``SIMPLE_FAMILIES``: what a model of a million parameters can learn to run), for
deduction and abduction; for induction, inputs shaped after the program's parameter. Its programs are this package's own
templates, pure and deterministic, so it may evaluate them here to remember each task's
answer (``memory``); it evaluates nothing it did not write (a model-written buffer program
gets inputs but no remembered answer). The solver looks the answer up and is right with
probability ``accuracy``, else writes a near miss: another value, another input, a program
with a changed constant. Every turn is in the blocks the mode parses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from selfplay_gym.envs.modes.azr_programs import blocks
from selfplay_gym.envs.modes.azr_prompts import fenced
from selfplay_gym.envs.tasks.code import FAMILIES, CodeTask
from selfplay_gym.envs.tasks.programs import IDENTITY
from selfplay_gym.types import Completion, Request


def _slice_case(rng: np.random.Generator, level: int) -> tuple[str, tuple]:
    step = (1, -1)[int(rng.integers(2))]
    method = ("upper", "lower", "swapcase")[int(rng.integers(3))]
    return f"def f(s):\n    return s[::{step}].{method}()\n", (_word(rng),)


def _word(rng: np.random.Generator) -> str:
    return "".join("abcdeABCDE"[int(i)] for i in rng.integers(0, 10, size=int(rng.integers(3, 7))))


SIMPLE_FAMILIES = {"slice_case": _slice_case}
"""Family name -> (generator, level) -> (program, args), beside ``code.FAMILIES``: a string
read forwards or backwards, then upper, lower or swapped case (six programs)."""


def draw_program(rng: np.random.Generator, families: Sequence[str]) -> tuple[str, tuple]:
    """A level-1 program of one of ``families`` (``SIMPLE_FAMILIES`` or ``code.FAMILIES``)."""
    family = families[int(rng.integers(len(families)))]
    if family in SIMPLE_FAMILIES:
        return SIMPLE_FAMILIES[family](rng, 1)
    _, _, program, args = CodeTask(levels=(1,), families=(family,)).draw(rng)
    return program, args


MESSAGE = "f maps each input to its output"
"""The expert's induction hint: it knows no more about a program than its parameter."""
Memory = dict[tuple[str, ...], str]
"""(task type, what the solver sees) -> the right answer block's body."""
_PARAM = re.compile(r"def f\((\w+)\)")


def evaluate_own(program: str, args_text: str) -> str:
    """repr(f(args)) of a program this module wrote (templates: pure, no imports)."""
    namespace: dict = {}
    exec(compile(program, "<expert template>", "exec"), namespace)  # noqa: S102 - own template
    return repr(eval(f"f({args_text})", namespace))  # noqa: S307 - own template and inputs


def input_for(param: str, rng: np.random.Generator) -> str:
    """An argument for a template parameter: n an int, xs a list, s or a a short word."""
    if param == "n":
        return str(int(rng.integers(2, 12)))
    if param == "xs":
        return repr([int(v) for v in rng.integers(-9, 30, size=int(rng.integers(3, 6)))])
    return repr(_word(rng))


class AzrProposer:
    """Deduction/abduction: a template program and its input; induction: N inputs + a hint."""

    def __init__(self, memory: Memory, *, families: Sequence[str], num_inputs: int = 10,
                 seed: int = 0):
        self.memory, self.num_inputs = memory, num_inputs
        self.families = tuple(families)
        unknown = [f for f in self.families if f not in SIMPLE_FAMILIES and f not in FAMILIES]
        if not self.families or unknown:
            raise ValueError(f"unknown program families {unknown!r}; choose from "
                             f"{[*SIMPLE_FAMILIES, *FAMILIES]}")
        self.own: set[str] = {IDENTITY.program}
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [Completion(self._propose(r)) for r in requests]

    def _propose(self, request: Request) -> str:
        task_type = request.info["task_type"]
        if task_type == "induction":
            return self._inputs(blocks(request.messages[-1]["content"], "python")[0] + "\n")
        program, args = draw_program(self.rng, self.families)
        self.own.add(program)
        given = ", ".join(repr(a) for a in args)
        output = evaluate_own(program, given)
        self.memory[("deduction", program.rstrip("\n"), given)] = output
        self.memory[("abduction", program.rstrip("\n"), output)] = given
        return f"{fenced('python', program.rstrip(chr(10)))}\n{fenced('input', given)}"

    def _inputs(self, program: str) -> str:
        match = _PARAM.search(program)
        param = match.group(1) if match else "a"
        inputs: list[str] = []
        for _ in range(50 * self.num_inputs):
            candidate = input_for(param, self.rng)
            if candidate not in inputs:
                inputs.append(candidate)
            if len(inputs) == self.num_inputs:
                break
        if program in self.own:
            shown = tuple(inputs[: len(inputs) // 2])
            self.memory[("induction", *shown)] = program.rstrip("\n")
        text = "\n".join(fenced("input", i) for i in inputs)
        return f"{text}\n{fenced('message', MESSAGE)}"


class AzrSolver:
    """The remembered answer with probability ``accuracy``, else a near miss."""

    def __init__(self, memory: Memory, accuracy: float = 0.7, seed: int = 0):
        self.memory, self.accuracy = memory, accuracy
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        return [Completion(self._solve(r)) for r in requests]

    def _solve(self, request: Request) -> str:
        task_type, user = request.info["task_type"], request.messages[-1]["content"]
        if task_type == "induction":
            key: tuple[str, ...] = ("induction", *blocks(user, "input"))
            tag = "python"
        else:
            shown = "output" if task_type == "abduction" else "input"
            key = (task_type, blocks(user, "python")[0], blocks(user, shown)[0])
            tag = "input" if task_type == "abduction" else "output"
        answer = self.memory.get(key)
        if answer is None or self.rng.random() >= self.accuracy:
            answer = self._miss(answer, tag)
        return fenced(tag, answer)

    def _miss(self, answer: str | None, tag: str) -> str:
        if tag == "python":
            base = answer or IDENTITY.program.rstrip("\n")
            return re.sub(r"\d+", lambda m: str(int(m.group()) + 1), base, count=1) \
                if re.search(r"\d", base) else base.replace("return a", "return [a]")
        if answer is None:
            return "0"
        number = re.search(r"-?\d+", answer)
        if number:
            value = int(number.group()) + int(self.rng.integers(1, 4))
            return answer[: number.start()] + str(value) + answer[number.end():]
        return answer[:-2] + answer[-2:][::-1] if len(answer) > 3 else repr("x")

"""The arithmetic domain: the safe evaluator, the generators per level, and determinism."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from selfplay_gym.envs.tasks import (
    ArithmeticTask,
    Problem,
    TaskItem,
    TaskSource,
    is_arithmetic,
    solve,
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("37+48", "85"),
        ("12-50", "-38"),
        ("(3+4)*5", "35"),
        ("7x8", "56"),
        ("7×8", "56"),
        ("0x10", "0"),  # "x" means times, so this is 0*10, never hex
        ("2*3=", "6"),
        ("2*3 = ?", "6"),
        ("2*3?", "6"),
        ("  10 - 4  ", "6"),
        ("-5+2", "-3"),
        ("-(2+3)*4", "-20"),
        ("+7", "7"),
        ("12345678901234567890*10", "123456789012345678900"),
    ],
)
def test_solve_accepts_integer_arithmetic(expression: str, expected: str) -> None:
    assert solve(expression) == expected
    assert is_arithmetic(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "2/3",
        "7//2",
        "7%2",
        "__import__('os')",
        "1e5",
        "1.5+2",
        "0b11+1",
        "1_000+1",
        "",
        "   ",
        "=",
        None,
        42,
        "9**9**9",
        "2**3",
        "a+1",
        "abs(-3)",
        "2+",
        "(2+3",
        "2+3=5",
        "1 2",
        "1<2",
        "[1]",
    ],
)
def test_solve_rejects_everything_else(expression: object) -> None:
    assert solve(expression) is None
    assert not is_arithmetic(expression)


def test_solve_rejects_overlong_expressions() -> None:
    long = "+".join(["1"] * 150)  # 299 characters
    assert len(long) > 200
    assert solve(long) is None
    assert solve("+".join(["1"] * 100)) == "100"  # 199 characters is fine


def test_solve_never_raises_on_deep_nesting() -> None:
    assert solve("(" * 99 + "1" + ")" * 99) == "1"
    assert solve("-" * 199 + "1") == "-1"


TWO_DIGIT = range(10, 100)
ONE_DIGIT = range(2, 10)
SHAPES = {
    1: (re.compile(r"(\d+)([+-])(\d+)"), (TWO_DIGIT, TWO_DIGIT)),
    2: (re.compile(r"(\d+)([+-])(\d+)([+-])(\d+)"), (TWO_DIGIT, TWO_DIGIT, TWO_DIGIT)),
    3: (re.compile(r"(\d+)(\*)(\d+)"), (TWO_DIGIT, ONE_DIGIT)),
    4: (re.compile(r"(\d+)(\*)(\d+)(\+)(\d+)"), (TWO_DIGIT, ONE_DIGIT, TWO_DIGIT)),
    5: (re.compile(r"\((\d+)(\+)(\d+)\)(\*)(\d+)"), (TWO_DIGIT, TWO_DIGIT, ONE_DIGIT)),
}


@pytest.mark.parametrize("level", [1, 2, 3, 4, 5])
def test_generated_problems_are_correct_and_in_range(level: int) -> None:
    task = ArithmeticTask(levels=(1, 2, 3, 4, 5))
    pattern, ranges = SHAPES[level]
    for p in task.problems(200, seed=level, level=level):
        assert p.level == level
        assert solve(p.question) == p.answer
        match = pattern.fullmatch(p.question)
        assert match, p.question
        operands = [int(g) for g in match.groups() if g.isdigit()]
        assert all(x in r for x, r in zip(operands, ranges, strict=True)), p.question
        if level == 2:
            assert sorted(match.group(2) + match.group(4)) == ["+", "-"]


def test_level_one_covers_both_operators_and_negative_answers() -> None:
    problems = ArithmeticTask().problems(200, seed=0, level=1)
    assert any("+" in p.question for p in problems)
    assert any("-" in p.question for p in problems)
    assert any(p.answer.startswith("-") for p in problems)


def test_default_levels_are_drawn_uniformly_from_the_task() -> None:
    problems = ArithmeticTask(levels=(2, 4)).problems(300, seed=7)
    counts = {lv: sum(p.level == lv for p in problems) for lv in (2, 4)}
    assert set(p.level for p in problems) == {2, 4}
    assert min(counts.values()) > 100


def test_problems_are_deterministic_per_seed() -> None:
    task = ArithmeticTask()
    assert task.problems(50, seed=3) == task.problems(50, seed=3)
    assert task.problems(50, seed=3) != task.problems(50, seed=4)
    assert all(isinstance(p, Problem) for p in task.problems(5, seed=0))


def test_held_out_is_fixed_across_calls_and_instances() -> None:
    first = ArithmeticTask().held_out()
    assert len(first) == 200
    assert ArithmeticTask().held_out() == first
    assert ArithmeticTask().held_out(n=20) == first[:20]
    assert ArithmeticTask().held_out(seed=99) != first


def test_generation_ignores_global_random_state() -> None:
    task = ArithmeticTask()
    np.random.seed(0)
    a = task.problem(np.random.default_rng(5))
    np.random.seed(1)
    b = task.problem(np.random.default_rng(5))
    assert a == b


@pytest.mark.parametrize("levels", [(), (0,), (6,), (1, 9), (True,), (2.0,), 3])
def test_bad_levels_raise_a_helpful_error(levels: object) -> None:
    with pytest.raises(ValueError, match=r"\(1, 2, 3, 4, 5\)"):
        ArithmeticTask(levels=levels)  # type: ignore[arg-type]


def test_bad_explicit_level_raises() -> None:
    with pytest.raises(ValueError, match=r"\(1, 2, 3, 4, 5\)"):
        ArithmeticTask().problem(np.random.default_rng(0), level=7)


def test_levels_list_is_normalised_to_a_tuple() -> None:
    assert ArithmeticTask(levels=[1, 2]).levels == (1, 2)  # type: ignore[arg-type]


def test_sample_returns_a_task_item_with_reference_and_difficulty() -> None:
    task = ArithmeticTask(levels=(3,))
    assert isinstance(task, TaskSource)
    item = task.sample(np.random.default_rng(0))
    assert isinstance(item, TaskItem)
    assert item.difficulty == 3
    assert item.domain == ArithmeticTask.DOMAIN
    assert item.document is None
    question = item.task_id.removeprefix("arith-L3-")
    assert item.task_id.startswith("arith-L3-")
    assert item.reference == solve(question)
    assert task.sample(np.random.default_rng(0)) == item
    assert json.loads(json.dumps(item.to_dict())) == item.to_dict()
    assert item.to_dict()["reference"] == item.reference


def test_worked_solutions_take_every_path_and_every_step_is_right() -> None:
    from selfplay_gym.envs.tasks import worked_solution

    rng = np.random.default_rng(0)
    paths = set()
    for problem in ArithmeticTask(levels=(1,)).problems(60, seed=3):
        text = worked_solution(problem.question, problem.answer, rng)
        steps, boxed = text.rsplit(". ", 1)
        assert boxed == f"\\boxed{{{problem.answer}}}"
        for step in steps.split(", "):
            left, right = step.split("=")
            assert solve(left) == right, step
        paths.add(len(steps.split(", ")))
    assert paths == {1, 2, 3}  # one step (a round number), two (split off tens) or three
    assert worked_solution("47+38", "85", np.random.default_rng(1)).endswith("=85. \\boxed{85}")


def test_a_wrong_worked_solution_states_the_wrong_answer_last() -> None:
    from selfplay_gym.envs.tasks import worked_solution

    text = worked_solution("47+38", "86", np.random.default_rng(0))
    assert text.endswith("=86. \\boxed{86}")
    assert worked_solution("(2+3)*4", "20", np.random.default_rng(0)) == "(2+3)*4=20. \\boxed{20}"

"""The embedded code tasks: seeded, pure, labelled by the sandbox, answers compared as values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfplay_gym.envs.tasks.base import TaskSource
from selfplay_gym.envs.tasks.code import FAMILIES, LEVELS, CodeItem, CodeTask, matches

pytestmark = pytest.mark.usefixtures("isolated")  # tests/envs/conftest.py


@pytest.fixture(scope="module")
def every_family():
    """Two problems of every family at every level, labelled in one parallel batch."""
    drawn, rng = [], np.random.default_rng(7)
    for family in FAMILIES:
        task = CodeTask(levels=LEVELS, families=(family,))
        drawn += [task.draw(rng, level) for level in LEVELS for _ in range(2)]
    return CodeTask(levels=LEVELS)._label(drawn)


def test_every_template_runs_to_a_value_the_program_itself_computes(every_family):
    assert {p.family for p in every_family} == set(FAMILIES)
    for p in every_family:
        namespace: dict = {}
        exec(p.program, namespace)  # our own templates, trusted here: a cross-check
        assert p.output == json.loads(json.dumps(namespace["f"](*p.args))), p
        assert "import" not in p.program and p.question.startswith("What does f(")
        assert matches(p.answer, p.answer)


def test_one_seed_is_one_problem_set_in_any_instance():
    first = CodeTask(levels=(1, 2, 3)).problems(6, seed=11)
    again = CodeTask(levels=(1, 2, 3)).problems(6, seed=11)
    assert first == again
    assert first != CodeTask(levels=(1, 2, 3)).problems(6, seed=12)
    assert CodeTask().held_out(4) == CodeTask().held_out(4)


def test_sample_is_a_task_item_with_its_program_and_reference():
    task = CodeTask()
    assert isinstance(task, TaskSource)
    item = task.sample(np.random.default_rng(0))
    assert isinstance(item, CodeItem) and item.task_id.startswith(f"code-L{item.difficulty}-")
    assert item == task.sample(np.random.default_rng(0))  # the second one comes from the cache
    assert item.program in item.question and item.reference
    json.dumps(item.to_dict())


@pytest.mark.parametrize("candidate, reference, expected", [
    ("[3, 1]", "[3, 1]", True),
    ("(3, 1)", "[3, 1]", True),
    (" 'ab2' ", "'ab2'", True),
    ("[['a', 2]]", "[('a', 2)]", True),
    ("[1, 3]", "[3, 1]", False),
    ("3.0", "3", True),  # the same JSON number
    ("'3'", "3", False),
    ("f(3)", "3", False),  # a call is not a literal: never run
    ("__import__('os')", "0", False),
    ("{1, 2}", "[1, 2]", False),  # a set is no JSON value
    ("[" * 5000 + "]" * 5000, "[]", False),
    (None, "1", False),
])
def test_matches_compares_values_and_never_runs_code(candidate, reference, expected):
    assert matches(candidate, reference) is expected


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="levels"):
        CodeTask(levels=(4,))
    with pytest.raises(ValueError, match="families"):
        CodeTask(families=("sorting",))

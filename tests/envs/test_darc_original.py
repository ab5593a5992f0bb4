"""DARC against its own code (RUCBM/DARC at 913dfd9): the "None" label bug and the places where
the code and a plain reading differ. Each test names the file and function it follows;
docs/modes/darc.md tables the same rows."""

from __future__ import annotations

import pytest

from selfplay_gym.envs.curriculum import boxed_format, matches_gold, usable
from selfplay_gym.envs.modes.darc import distill_reward
from tests.envs.test_darc import B, right, stage1, stage2

NONE_FORMS = ["\\text{None}", "\\mathrm{None}", "None.", "(none)", "none", "\\textbf{ None }"]


@pytest.mark.parametrize("answer", NONE_FORMS)
def test_none_like_answers_are_never_usable(answer):
    # vllm_service_init/start_vllm_server_difficulty_aware.py _is_invalid_candidate, with the
    # markup and punctuation the teachers wrap "None" in.
    assert not usable(answer)
    assert not matches_gold(answer, "None", "string")


def test_none_teacher_majority_gives_no_label_and_masks_the_group():
    # Eight teachers answer \boxed{\text{None}}: no label, v = 0, the students do not train,
    # and a student who writes the same earns the format weight only, never 1.0.
    teachers = [f"I think {B(chr(92) + 'text{None}')}"] * 8
    students = [f"so {B(chr(92) + 'text{None}')}"] * 8
    episode, mode = stage2(teachers, students)
    assert episode.fields["label"] is None and episode.fields["vote_fraction"] == 0.0
    assert not mode.keep_for_training("student_0", episode)
    assert episode.rewards["student_0"] == pytest.approx(0.05)


def test_none_doc_majority_is_no_gold_in_stage_one():
    episode = stage1(right(5), solver=f"so {B(chr(92) + 'mathrm{None}')}")
    assert episode.fields["gold"] is None and episode.fields["status"] == "no_gold"
    assert episode.rewards["questioner_0"] == -1.0


def test_mathruler_grader_reaches_gold_solve_rate_and_students():
    # start_vllm_server_difficulty_aware.py answer_from_text clusters with grade_answer; with
    # grader="mathruler" a student's "4 2" is 42 (mathruler strips spaces), with math-verify not.
    students = [f"so {B('4 2')}"] * 5 + [f"so {B(41)}"] * 5
    assert stage1(students, grader="mathruler").fields["solve_rate"] == 0.5
    assert stage1(students).fields["solve_rate"] == 0.0
    assert distill_reward("4 2", True, "42", grader=lambda a, b: a.replace(" ", "") == b) == 1.0


def test_nested_box_format_is_ours():
    # examples/reward_function/difficulty_aware_solver.py _format_score: the non-greedy
    # r"\\boxed\{(.*?)\}" leaves "{2}}" outside "\boxed{\frac{1}", so a bare nested box counts
    # as formatted there. Ours matches braces: a bare box has nothing outside it.
    assert not boxed_format("\\boxed{\\frac{1}{2}}")
    assert boxed_format("so \\boxed{\\frac{1}{2}}")


def test_categorical_answers_are_normalised_on_both_sides():
    # difficulty_aware_solver.py _score_against_gold compares the raw "B." with gold "B"; ours
    # reads the option letter from both.
    assert matches_gold("B.", "B", "categorical") and matches_gold("\\text{B}", "B", "categorical")

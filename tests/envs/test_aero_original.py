"""AERO against its own code (mira-ai-lab/AERO at f610208): the worked examples of the places
where the code and a plain reading differ. Each test names the file and function it follows;
docs/modes/aero.md tables the same rows."""

from __future__ import annotations

import json

import pytest

from selfplay_gym.envs.graders import exact_grader, space_stripped
from selfplay_gym.envs.modes.aero import parse_answer, parse_question
from selfplay_gym.envs.verify import equivalent
from tests.envs.test_aero import B, run

FENCED = '```json\n{"question": "7*8"}\n```'


@pytest.mark.parametrize("text, raw", [
    ("What is 7*8?", "What is 7*8?"),
    (FENCED, FENCED),
    (json.dumps({"question": 56}), json.dumps({"question": 56})),
])
def test_raw_question_fallback_keeps_the_output(text, raw):
    # synth/generator.py generate_questions: json.loads(out) or, on any failure, out itself.
    assert parse_question(text, raw_fallback=True).fields["question"] == raw
    assert parse_question(json.dumps({"question": " 7*8 "}), raw_fallback=True).fields["question"] == "7*8"


def test_default_question_parse_is_ours():
    # Ours: the JSON inside fences counts; plain text and a non-string question are invalid.
    assert parse_question(FENCED).fields["question"] == "7*8"
    assert not parse_question("What is 7*8?").valid
    assert not parse_question(json.dumps({"question": 56})).valid


def test_space_stripped_shortcut_joins_clusters_and_icc():
    # synth/answer_analyzer.py check_equivalence_with_model: expr_a.replace(" ", "") ==
    # expr_b.replace(" ", "") is "same" before any other check. math_verify alone reads "5 6"
    # as something else than 56.
    assert not equivalent("56", "5 6")
    assert space_stripped(equivalent)("56", "5 6") and exact_grader("5 6", "56")
    answers = [B(56)] * 2 + [B("5 6")] * 2 + [B(7)] * 2 + [B(8)] * 2
    episode, _ = run(answers, refiners=(B(56), B("5 6")))
    assert len(episode.fields["clusters"]) == 3 and episode.fields["converged"]
    episode, _ = run(answers, refiners=(B(56), B("5 6")), space_shortcut=False)
    assert len(episode.fields["clusters"]) == 4 and not episode.fields["converged"]


def test_llm_judge_never_sees_space_equal_answers():
    answers = [B(56), B("5 6"), B(7), B(7)]
    seen = {}
    episode, _ = run(answers, equivalence="llm", judge='{"same": [[1], [2]]}', seen=seen)
    assert len(episode.fields["groups"]) == 2
    listed = seen["judge_0"].messages[-1]["content"]
    assert "1. 7" in listed and "2. 56" in listed and "5 6" not in listed


def test_unclosed_last_box_takes_the_previous_closed_one():
    # synth/answer_analyzer.py extract_boxed_content: scans the openers from the last and
    # returns the first whose braces close.
    text = "first \\boxed{5}, then \\boxed{6"
    assert parse_answer(text).fields["answer"] == "5"
    assert parse_answer(text, unclosed="none").fields["answer"] is None

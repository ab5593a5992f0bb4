"""Scripted agents: one Completion per Request, in order, and each agent's own behaviour."""

from __future__ import annotations

import math
import re

import pytest

from selfplay_gym.agents.scripted import (
    DatasetQuestioner,
    FunctionPolicy,
    MajorityJudge,
    NoisySolver,
    RandomTextAgent,
    ReferenceJudge,
)
from selfplay_gym.envs.spaces import SAMPLE_CHARSET
from selfplay_gym.envs.tasks import ArithmeticTask, Problem, solve
from selfplay_gym.types import Completion, Policy, Request

QUESTIONS = ["37+48", "12*9", "(10+5)*3", "99-100", "7+8-20"]
BOXED_INT = re.compile(r" \\boxed\{(\d+)\}$")


def _req(i: int = 0, **info) -> Request:
    return Request(agent=f"agent_{i}", role="solver", messages=(), info=info)


def _texts(completions: list[Completion]) -> list[str]:
    return [c.text for c in completions]


AGENTS = {
    "function": lambda: FunctionPolicy(lambda r: r.agent),
    "dataset": lambda: DatasetQuestioner([("1+1", "2"), ("2+2", "4")]),
    "random": lambda: RandomTextAgent(seed=3),
    "noisy": lambda: NoisySolver(solve, accuracy=0.5),
    "majority": lambda: MajorityJudge(),
    "reference": lambda: ReferenceJudge(solve),
}


@pytest.mark.parametrize("name", AGENTS)
@pytest.mark.parametrize("n", [0, 1, 7])
def test_one_scripted_completion_per_request(name, n):
    agent = AGENTS[name]()
    assert isinstance(agent, Policy)
    requests = [
        _req(i, question=QUESTIONS[i % len(QUESTIONS)], answers=["3", "3", None]) for i in range(n)
    ]
    out = agent.generate(requests)
    assert len(out) == n
    assert all(isinstance(c, Completion) and c.finish_reason == "scripted" for c in out)
    assert all(isinstance(c.text, str) for c in out)
    # Scripted policies produce no token-level data.
    assert all(not (c.prompt_ids or c.completion_ids or c.logprobs) for c in out)


# ---------------------------------------------------------------------------------------------
# FunctionPolicy
# ---------------------------------------------------------------------------------------------


def test_function_policy_applies_fn_in_order():
    policy = FunctionPolicy(lambda r: f"{r.agent}:{r.info['question']}")
    out = policy.generate([_req(i, question=q) for i, q in enumerate(QUESTIONS)])
    assert _texts(out) == [f"agent_{i}:{q}" for i, q in enumerate(QUESTIONS)]


# ---------------------------------------------------------------------------------------------
# DatasetQuestioner
# ---------------------------------------------------------------------------------------------

PAIRS = [(f"{a}+{a}", str(2 * a)) for a in range(10)]
RENDERED = {f"<question>{q}</question>\n\\boxed{{{a}}}" for q, a in PAIRS}


def test_dataset_questioner_cycles_through_all_before_repeating():
    agent = DatasetQuestioner(PAIRS, seed=0)
    n = len(PAIRS)
    texts = _texts(agent.generate([_req()] * (3 * n)))
    for cycle in range(3):
        assert set(texts[cycle * n : (cycle + 1) * n]) == RENDERED


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_dataset_questioner_seeded_order_is_reproducible(seed):
    first = _texts(DatasetQuestioner(PAIRS, seed=seed).generate([_req()] * 25))
    # The same sequence whether asked in one batch or several.
    agent = DatasetQuestioner(PAIRS, seed=seed)
    split = [t for size in (3, 0, 10, 12) for t in _texts(agent.generate([_req()] * size))]
    assert first == split


def test_dataset_questioner_seeds_differ():
    orders = {
        tuple(_texts(DatasetQuestioner(PAIRS, seed=s).generate([_req()] * 10))) for s in range(5)
    }
    assert len(orders) > 1


def test_dataset_questioner_renders_r_zero_template():
    (completion,) = DatasetQuestioner([("What is 37+48?", "85")]).generate([_req()])
    assert completion.text == "<question>What is 37+48?</question>\n\\boxed{85}"


def test_dataset_questioner_accepts_problem_objects():
    problems = ArithmeticTask().problems(6, seed=0)
    assert all(isinstance(p, Problem) for p in problems)
    texts = _texts(DatasetQuestioner(problems, seed=5).generate([_req()] * 6))
    assert set(texts) == {
        f"<question>{p.question}</question>\n\\boxed{{{p.answer}}}" for p in problems
    }


def test_dataset_questioner_problems_and_tuples_agree():
    problems = [Problem(question=q, answer=a, level=1) for q, a in PAIRS]
    from_problems = DatasetQuestioner(problems, seed=7).generate([_req()] * 15)
    from_tuples = DatasetQuestioner(PAIRS, seed=7).generate([_req()] * 15)
    assert _texts(from_problems) == _texts(from_tuples)


def test_dataset_questioner_custom_template():
    agent = DatasetQuestioner([("q1", "a1")], template="Q: {question} A: {answer}")
    assert _texts(agent.generate([_req()] * 2)) == ["Q: q1 A: a1"] * 2


def test_dataset_questioner_needs_problems():
    with pytest.raises(ValueError, match="at least one problem"):
        DatasetQuestioner([])


# ---------------------------------------------------------------------------------------------
# RandomTextAgent
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 123])
def test_random_text_agent_is_deterministic_per_seed(seed):
    a = _texts(RandomTextAgent(seed=seed).generate([_req()] * 20))
    b = _texts(RandomTextAgent(seed=seed).generate([_req()] * 20))
    assert a == b
    assert a != _texts(RandomTextAgent(seed=seed + 1).generate([_req()] * 20))


def test_random_text_agent_never_boxes_at_zero():
    out = _texts(RandomTextAgent(seed=0, boxed_prob=0.0, max_length=32).generate([_req()] * 200))
    assert all("\\boxed" not in t for t in out)
    assert all(len(t) <= 32 and set(t) <= set(SAMPLE_CHARSET) for t in out)


@pytest.mark.parametrize("max_int", [0, 5, 20])
def test_random_text_agent_always_boxes_at_one(max_int):
    agent = RandomTextAgent(seed=0, boxed_prob=1.0, max_int=max_int)
    for text in _texts(agent.generate([_req()] * 200)):
        match = BOXED_INT.search(text)
        assert match, text
        assert 0 <= int(match.group(1)) <= max_int


# ---------------------------------------------------------------------------------------------
# NoisySolver
# ---------------------------------------------------------------------------------------------


def _solver_requests() -> list[Request]:
    return [_req(i, question=QUESTIONS[i % len(QUESTIONS)]) for i in range(50)]


def test_noisy_solver_perfect_accuracy_always_right():
    requests = _solver_requests()
    out = NoisySolver(solve, accuracy=1.0, seed=0).generate(requests)
    assert _texts(out) == [f"\\boxed{{{solve(r.info['question'])}}}" for r in requests]


def test_noisy_solver_zero_accuracy_never_right():
    requests = _solver_requests()
    out = NoisySolver(solve, accuracy=0.0, seed=0).generate(requests)
    for request, text in zip(requests, _texts(out), strict=True):
        truth = int(solve(request.info["question"]))
        match = re.fullmatch(r"\\boxed\{(-?\d+)\}", text)
        assert match, text
        assert int(match.group(1)) - truth in {-3, -2, -1, 1, 2, 3}


def test_noisy_solver_is_deterministic_per_seed():
    requests = _solver_requests()
    a = _texts(NoisySolver(solve, accuracy=0.5, seed=9).generate(requests))
    b = _texts(NoisySolver(solve, accuracy=0.5, seed=9).generate(requests))
    assert a == b


@pytest.mark.parametrize("info", [{"question": "What is love?"}, {"question": None}, {}])
def test_noisy_solver_unknown_question_has_no_box(info):
    (completion,) = NoisySolver(solve, accuracy=1.0).generate([_req(**info)])
    assert "\\boxed" not in completion.text
    assert completion.text


@pytest.mark.parametrize("accuracy", [-0.1, 1.1, math.nan])
def test_noisy_solver_bad_accuracy(accuracy):
    with pytest.raises(ValueError, match="accuracy"):
        NoisySolver(solve, accuracy=accuracy)


# ---------------------------------------------------------------------------------------------
# MajorityJudge and ReferenceJudge
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["3", "3", "4", None], "\\boxed{3}"),
        (["4", "3", "3", None], "\\boxed{3}"),
        ([None, "7", "", "7"], "\\boxed{7}"),
        (["5"], "\\boxed{5}"),
    ],
)
def test_majority_judge_names_majority(answers, expected):
    (completion,) = MajorityJudge().generate([_req(answers=answers)])
    assert completion.text == expected


@pytest.mark.parametrize("answers", [[None, None, None], [], ["", None]])
def test_majority_judge_no_valid_answer_has_no_box(answers):
    (completion,) = MajorityJudge().generate([_req(answers=answers)])
    assert "\\boxed" not in completion.text
    assert completion.text


def test_majority_judge_custom_equivalence():
    # Case-insensitive equality: "A" and "a" form the majority of three.
    judge = MajorityJudge(equivalent_fn=lambda x, y: x.lower() == y.lower())
    (completion,) = judge.generate([_req(answers=["b", "A", "a"])])
    assert completion.text == "\\boxed{A}"


def test_majority_judge_without_answers_raises():
    with pytest.raises(ValueError, match="answers"):
        MajorityJudge().generate([_req(question="37+48")])


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"question": "37+48"}, "\\boxed{85}"),
        ({"question": "10-20"}, "\\boxed{-10}"),
        ({"question": "(10+5)*3 = ?"}, "\\boxed{45}"),
        ({"question": "5-5"}, "\\boxed{0}"),
    ],
)
def test_reference_judge_solves(info, expected):
    (completion,) = ReferenceJudge(solve).generate([_req(**info)])
    assert completion.text == expected


@pytest.mark.parametrize("info", [{}, {"question": None}, {"question": "What is love?"}])
def test_reference_judge_without_question_has_no_box(info):
    (completion,) = ReferenceJudge(solve).generate([_req(**info)])
    assert "\\boxed" not in completion.text
    assert completion.text


def test_reference_judge_keeps_order():
    requests = [_req(i, question=q) for i, q in enumerate(QUESTIONS)]
    out = ReferenceJudge(solve).generate(requests)
    assert _texts(out) == [f"\\boxed{{{solve(q)}}}" for q in QUESTIONS]

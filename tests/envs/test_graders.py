"""Graders: one comparison per mode, bounded per episode."""

from __future__ import annotations

import time

import pytest

from selfplay_gym import SelfPlayVectorEnv
from selfplay_gym.agents.scripted import FunctionPolicy, MajorityJudge
from selfplay_gym.envs.graders import GRADERS, GraderBudget, exact_grader, space_stripped


def slow_equal(a: str, b: str) -> bool:
    time.sleep(0.05)
    return a == b


def test_budget_falls_back_to_exact_match_and_counts():
    grader = GraderBudget(slow_equal, seconds=0.1)
    answers = [str(i) for i in range(8)]
    start = time.perf_counter()
    pairs = [(a, b) for i, a in enumerate(answers) for b in answers[:i]]  # 28 comparisons
    assert not any(grader(a, b) for a, b in pairs)
    assert time.perf_counter() - start < 1.0  # 28 x 0.05 s = 1.4 s unbounded
    assert grader.over_budget >= 25 and grader("7", " 7 ") is True  # normalised exact match


@pytest.mark.parametrize("mode", ["rzero", "darc", "aero"])
def test_every_mode_records_what_ran_out_of_budget(mode, monkeypatch):
    monkeypatch.setitem(GRADERS, "math_verify", slow_equal)  # every mode's default
    options = {"grader_budget_s": 0.1, "num_solvers": 8}
    answers = [f"\\boxed{{{i}}}" for i in range(8)]
    texts = {
        "rzero": "<question>q</question>",
        "darc": '{"question": "q"}',
        "aero": '{"question": "q"}',
    }
    venv = SelfPlayVectorEnv.make(mode, num_envs=1, **options)
    policies = {role: FunctionPolicy(lambda r: answers[int(r.agent.rsplit("_", 1)[1]) % 8])
                for role in venv.roles}
    policies["questioner" if mode != "aero" else "generator"] = FunctionPolicy(lambda r: texts[mode])
    if mode == "rzero":
        policies["judge"] = MajorityJudge(budget_s=0.1)
    if mode == "darc":
        options["strict_keys"] = False
        venv = SelfPlayVectorEnv.make(mode, num_envs=1, **options)
    start = time.perf_counter()
    (episode,) = venv.rollout(policies, seed=0).episodes
    assert time.perf_counter() - start < 3.0
    assert episode.fields["grader_over_budget"] > 0


def test_space_stripped_shortcut():
    assert exact_grader("5 6", "56") and not exact_grader("56", "57")
    assert space_stripped(lambda a, b: False)("1 / 2", "1/2")

"""The azr mode: rewards with hand-worked numbers, parsing, the executor's validation,
TRR++ groups, hidden answers, and the program buffer growing and resuming."""

from __future__ import annotations

import numpy as np
import pytest

from selfplay_gym import SelfPlayReasoningEnv
from selfplay_gym.envs.modes.azr import AzrMode, parse_proposal, parse_solution
from selfplay_gym.envs.modes.azr_programs import banned_word, blocks, call_program, same_value
from selfplay_gym.envs.modes.azr_rewards import (
    composite_reward,
    learnability_reward,
    solve_reward,
    task_relative_group,
)
from selfplay_gym.envs.tasks.programs import IDENTITY, ProgramBuffer, Triplet
from selfplay_gym.envs.vector import SelfPlayVectorEnv

REVERSE = "```python\ndef f(s):\n    return s[::-1]\n```\n```input\n'abc'\n```"


def test_learnability_reward_by_hand():
    # 8 rollouts, 3 right: r̄ = 3/8, reward 1 - 3/8 = 0.625; all or none right: 0
    assert learnability_reward(3 / 8) == pytest.approx(0.625)
    assert learnability_reward(0.0) == 0.0
    assert learnability_reward(1.0) == 0.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        learnability_reward(1.5)


def test_composite_reward_by_hand():
    assert solve_reward(True) == 1.0 and solve_reward(False) == 0.0
    assert composite_reward(0.625, True) == 0.625
    assert composite_reward(0.0, True) == -0.5  # valid, but every rollout (or none) solved it
    assert composite_reward(0.0, False) == -1.0
    assert composite_reward(1.0, False) == 1.0  # a positive reward passes as it is
    assert task_relative_group("solver", "abduction") == "solver:abduction"


def test_blocks_and_parsers_read_the_last_blocks():
    text = "```input\n1\n```\n```python\nx\n```\n```input\n2\n```"
    assert blocks(text, "input") == ["1", "2"]
    proposal = parse_proposal(REVERSE + "\n```input\n'zz'\n```\n```message\nreverse\n```", 2)
    assert proposal.valid
    assert proposal.fields == {"program": "def f(s):\n    return s[::-1]\n", "input": "'zz'",
                               "inputs": ["'abc'", "'zz'"], "message": "reverse"}
    assert not parse_proposal("def f(s): return s", 2).valid
    assert not parse_proposal("```input\n1\n```\n```message\nm\n```", 2).valid  # 1 of 2 inputs
    assert parse_solution("so ```output\n3\n``` or ```output\n4\n```").fields == {"output": "4"}
    assert not parse_solution("the answer is 4").valid


def test_banned_words_and_literal_comparison():
    assert banned_word("import random\ndef f(a):\n    return a") == "random"
    assert banned_word("from time import sleep\ndef f(a):\n    return a") == "time"
    assert banned_word("import os\ndef f(a):\n    return os.path.sep") == "os.path"
    assert banned_word("def f(a):\n    return 'random'") is None  # a word, not a module
    assert same_value("(1, 2)", "(1,2)") and same_value("{2, 1}", "{1, 2}")
    assert not same_value("[1, 2]", "(1, 2)")
    assert not same_value("__import__('os')", "0") and not same_value(None, "0")


def _play(env, proposal, answers):
    env.step(proposal)
    for answer in answers:
        env.step(answer)
    return env.episode


def _env(task_types, **options):
    return SelfPlayReasoningEnv("azr", num_solvers=3, num_inputs=4,
                                task=ProgramBuffer(task_types=task_types), **options)


def test_deduction_episode_rewards_by_hand(isolated):
    env = _env(("deduction",))
    env.reset(seed=0)
    episode = _play(env, REVERSE, ["```output\n'cba'\n```", "```output\n'abc'\n```", "no block"])
    assert episode.fields["output"] == "'cba'" and episode.fields["correct"] == [True, False, False]
    # r̄ = 1/3: proposer 1 - 1/3; solvers 1, -0.5 (well formed, wrong), -1 (no block)
    assert episode.rewards == pytest.approx(
        {"proposer_0": 2 / 3, "solver_0": 1.0, "solver_1": -0.5, "solver_2": -1.0})
    assert Triplet("def f(s):\n    return s[::-1]\n", "'abc'", "'cba'") in env.task.triplets


def test_abduction_and_induction_are_checked_by_running_the_answer(isolated):
    env = _env(("abduction", "induction"), format_rewards=False)
    env.reset(seed=0)
    episode = _play(env, REVERSE, ["```input\n'cba'\n```", "```input\n'abc'\n```",
                                   "```input\nboom(\n```"])
    assert episode.fields["correct"] == [False, True, False]
    assert episode.rewards["proposer_0"] == pytest.approx(2 / 3)
    env.reset(seed=1)  # induction on a buffer program: identity or reverse
    inputs = "".join(f"```input\n'{w}'\n```\n" for w in ("ab", "cd", "ef", "gh"))
    env.step(inputs + "```message\nlook at the letters\n```")
    fields = env.episode.fields
    assert fields["given_inputs"] == ["'ab'", "'cd'"] and fields["hidden_inputs"] == ["'ef'", "'gh'"]
    program = fields["program"]
    for answer in (f"```python\n{program}```", "```python\ndef f(a):\n    return 0\n```",
                   "```python\nwhile True:\n    pass\n```"):
        env.step(answer)
    assert env.episode.fields["correct"] == [True, False, False]
    assert env.episode.rewards["solver_0"] == 1.0 and env.episode.rewards["solver_2"] == 0.0


@pytest.mark.parametrize("program, problem", [
    ("def g(s):\n    return s", "defines no function f"),
    ("import random\ndef f(s):\n    return s", "banned word 'random'"),
    ("def f(s):\n    return object()", "literal"),
    ("def f(s):\n    return hash(s)", "not deterministic"),  # str hashes are salted per process
    ("def f(s):\n    raise ValueError(s)", "literal"),
])
def test_invalid_proposals_end_the_episode_with_the_format_penalty(isolated, program, problem):
    env = _env(("deduction",))
    env.reset(seed=0)
    env.step(f"```python\n{program}\n```\n```input\n'abc'\n```")
    assert problem in env.episode.fields["proposal_error"]
    assert all(env.terminations.values()) and env.episode.rewards["proposer_0"] == -1.0
    assert env.task.triplets == [IDENTITY]


def test_hostile_inputs_stay_in_the_sandbox(isolated):
    source = call_program("def f(a):\n    return a", ["1) or __import__('os').getpid() or (2"])
    env = _env(("deduction",), timeout_s=2.0)
    env.reset(seed=0)
    env.step("```python\ndef f(a):\n    return a\n```\n```input\n__import__('os').getpid()\n```")
    assert env.episode.fields["proposal_valid"]  # runs, in the sandbox's own PID namespace
    assert int(env.episode.fields["output"]) <= 2  # PID 1 is the sandbox's supervisor
    assert "lambda: f(\n1) or" in source


def test_groups_are_task_relative_by_default_and_per_prompt_as_an_option(isolated):
    venv = SelfPlayVectorEnv.make("azr", 3, num_solvers=2, num_inputs=2, task=ProgramBuffer())
    policy = _Fixed()
    episodes = venv.rollout({"proposer": policy, "solver": policy}, seed=0).episodes
    assert [e.task["task_type"] for e in episodes] == ["deduction", "abduction", "induction"]
    assert {e.group_ids["solver_1"] for e in episodes} == {
        "solver:deduction", "solver:abduction", "solver:induction"}
    assert episodes[0].group_ids["proposer_0"] == "proposer:deduction"
    per_prompt = AzrMode.from_options(advantage_groups="prompt", num_solvers=2)
    assert per_prompt.group_id("solver_0", episodes[0], ()) == f"solver:{episodes[0].episode_id}"


class _Fixed:
    def generate(self, requests):
        return ["```python\ndef f(a):\n    return a\n```\n```input\n1\n```\n```input\n2\n```\n"
                "```message\nsame\n```\n```output\n1\n```"] * len(requests)


def test_solver_infos_hide_the_answer(isolated):
    env = _env(("deduction",))
    env.reset(seed=0)
    env.step(REVERSE)
    assert env.infos["proposer_0"]["output"] == "'cba'"
    assert "output" not in env.infos["solver_0"] and "triplet" not in env.infos["solver_0"]
    assert env.infos["solver_0"]["task_type"] == "deduction"


def test_buffer_cycles_task_types_and_resumes_from_its_state():
    buffer = ProgramBuffer(num_references=2)
    rng = np.random.default_rng(0)
    assert [buffer.sample(rng).task_type for _ in range(4)] == [
        "deduction", "abduction", "induction", "deduction"]
    buffer.add([Triplet("def f(a):\n    return -a\n", "3", "-3")] * 2)
    assert len(buffer.triplets) == 2  # a repeat is dropped
    restored = ProgramBuffer()
    restored.load_state_dict(buffer.state_dict())
    assert restored.triplets == buffer.triplets and restored.position == 4
    item = restored.sample(np.random.default_rng(1))
    assert item.task_type == "abduction" and len(item.references) == 2
    with pytest.raises(ValueError, match="task_types"):
        ProgramBuffer(task_types=("proof",))
    with pytest.raises(ValueError, match="ProgramBuffer"):
        AzrMode().task_from(object())

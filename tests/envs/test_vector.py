"""The vector env: one batched call per policy per phase, and batch rewards after the end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selfplay_gym import Completion, SelfPlayVectorEnv
from selfplay_gym.agents.scripted import FunctionPolicy, MajorityJudge

QUESTION = "<question>2+2</question> \\boxed{4}"


class CountingPolicy:
    """Records the size and roles of every batched call."""

    def __init__(self, text_for_role):
        self.text_for_role = text_for_role
        self.calls = []

    def generate(self, requests):
        self.calls.append([r.role for r in requests])
        return [Completion(text=self.text_for_role[r.role]) for r in requests]


def test_each_phase_is_one_call_per_policy_across_all_envs():
    questioner = CountingPolicy({"questioner": QUESTION})
    solver = CountingPolicy({"solver": "\\boxed{4}"})
    venv = SelfPlayVectorEnv.make("rzero", num_envs=5, num_solvers=3)
    rollout = venv.rollout({"questioner": questioner, "solver": solver, "judge": MajorityJudge()})
    assert questioner.calls == [["questioner"] * 5]
    assert solver.calls == [["solver"] * 15]
    assert rollout.policy_calls == 3
    assert len(rollout.episodes) == 5
    assert all(ep.rewards["solver_0"] == 1.0 for ep in rollout.episodes)


def test_one_policy_playing_every_role_gets_mixed_role_batches():
    shared = CountingPolicy({"questioner": QUESTION, "solver": "\\boxed{4}", "judge": "\\boxed{4}"})
    venv = SelfPlayVectorEnv.make("rzero", num_envs=2, num_solvers=2)
    venv.rollout({"questioner": shared, "solver": shared, "judge": shared})
    assert shared.calls == [["questioner"] * 2, ["solver"] * 4, ["judge"] * 2]


def test_envs_in_different_phases_share_a_tick():
    # Env 0 gets a junk question (episode over), env 1 a good one: env 1 goes on alone.
    texts = iter(["junk", QUESTION])
    solver = CountingPolicy({"solver": "\\boxed{4}"})
    venv = SelfPlayVectorEnv.make("rzero", num_envs=2, num_solvers=2)
    rollout = venv.rollout({
        "questioner": FunctionPolicy(lambda r: next(texts)),
        "solver": solver,
        "judge": MajorityJudge(),
    })
    assert solver.calls == [["solver"] * 2]
    assert rollout.episodes[0].rewards["questioner_0"] < 0
    assert "label" in rollout.episodes[1].fields


def test_completions_are_kept_per_episode_and_agent():
    venv = SelfPlayVectorEnv.make("rzero", num_envs=2, num_solvers=2)
    rollout = venv.rollout({
        "questioner": FunctionPolicy(lambda r: QUESTION),
        "solver": FunctionPolicy(lambda r: f"{r.agent} says \\boxed{{4}}"),
        "judge": MajorityJudge(),
    })
    assert rollout.completions[1]["solver_1"].text == "solver_1 says \\boxed{4}"
    assert set(rollout.completions[0]) == {"questioner_0", "solver_0", "solver_1", "judge_0"}


def test_seeded_rollouts_repeat_and_episode_ids_are_unique():
    def run():
        venv = SelfPlayVectorEnv.make("rzero", num_envs=3, num_solvers=1)
        policies = {"questioner": FunctionPolicy(lambda r: QUESTION),
                    "solver": FunctionPolicy(lambda r: "\\boxed{4}"), "judge": MajorityJudge()}
        first = venv.rollout(policies, seed=11)
        second = venv.rollout(policies)
        return [e.to_dict() for e in first.episodes + second.episodes]

    one, two = run(), run()
    assert one == two
    assert len({e["episode_id"] for e in one}) == 6


def test_missing_role_and_bad_policy_output_are_named():
    venv = SelfPlayVectorEnv.make("rzero", num_envs=1, num_solvers=1)
    with pytest.raises(ValueError, match=r"no policy for role\(s\) \['judge'\]"):
        venv.rollout({"questioner": MajorityJudge(), "solver": MajorityJudge()})

    class Short:
        def generate(self, requests):
            return []

    with pytest.raises(RuntimeError, match="exactly one per request"):
        venv.rollout({"questioner": Short(), "solver": Short(), "judge": Short()})

    class WrongType:
        def generate(self, requests):
            return [3 for _ in requests]

    with pytest.raises(TypeError, match="must return Completion"):
        venv.rollout({"questioner": WrongType(), "solver": WrongType(), "judge": WrongType()})


def test_bad_construction():
    with pytest.raises(ValueError, match="num_envs"):
        SelfPlayVectorEnv.make("rzero", num_envs=0)


def test_state_dict_restores_episode_ids_and_task_cursors():
    # A resumed run must continue the rollout count (episode and group ids) and a task's
    # cursor mid-block (DARC's document prompts: 3 difficulties x 8 samples per document).
    from selfplay_gym.envs.curriculum import DocumentPrompts
    from selfplay_gym.envs.tasks import WordProblemCorpus

    def make():
        task = DocumentPrompts(WordProblemCorpus(), (1, 2, 3), samples_per_prompt=8)
        return SelfPlayVectorEnv.make("darc", num_envs=4, task=task, num_solvers=2)

    straight, resumed = make(), make()
    rng = np.random.default_rng(0)
    for _ in range(5):  # 5 resets into the first document's block
        straight.envs[0].task.sample(rng)
    straight._rollouts = 3
    resumed.load_state_dict(json.loads(json.dumps(straight.state_dict())))
    assert resumed.state_dict() == straight.state_dict()
    assert resumed.envs[0].task.sample(rng) == straight.envs[0].task.sample(np.random.default_rng(1))

"""The parallel view: one step per phase, the same episode as the AEC env, who acts is explicit."""

from __future__ import annotations

import doctest
import pickle

import pytest

from selfplay_gym import Episode, Request, SelfPlayReasoningEnv, parallel_env
from selfplay_gym.agents.experts import MODES, mode_experts
from selfplay_gym.envs import parallel
from selfplay_gym.envs.tasks import ArithmeticTask

PROBLEMS = ArithmeticTask().problems(16, seed=0)
IGNORED = "an idle agent's action, which must never reach the episode"


def expert_texts(experts, requests: list[Request]) -> dict[str, str]:
    """One expert call per request, in the given order (so both envs draw the same numbers)."""
    return {r.agent: experts[r.role].generate([r])[0].text for r in requests}


def play_aec(mode: str, seed: int) -> tuple[Episode, list[tuple[str, ...]]]:
    env, experts, phases = SelfPlayReasoningEnv(mode), mode_experts(mode, problems=PROBLEMS), []
    env.reset(seed=seed)
    while not env.done:
        phase = env.phase_agents()
        phases.append(phase)
        requests = [Request(a, env.infos[a]["role"], env.observe(a)["messages"], env.infos[a])
                    for a in phase]
        for text in expert_texts(experts, requests).values():  # in phase order
            env.step(text)
    return env.episode, phases


@pytest.mark.parametrize("mode", MODES)
def test_each_phase_is_one_step_and_the_episode_equals_the_aec_one(mode):
    expected, phases = play_aec(mode, seed=3)
    env, experts = parallel_env(mode), mode_experts(mode, problems=PROBLEMS)
    observations, infos = env.reset(seed=3)
    acted, rewards = [], []
    while env.agents:
        acting = tuple(a for a in env.agents if infos[a]["acting"])
        assert all(observations[a]["messages"] for a in acting), "an agent acts only on a prompt"
        acted.append(acting)
        requests = [Request(a, infos[a]["role"], observations[a]["messages"], infos[a]) for a in acting]
        actions = dict.fromkeys(env.agents, IGNORED) | expert_texts(experts, requests)
        observations, step_rewards, terminations, truncations, infos = env.step(actions)
        rewards.append(step_rewards)
        assert set(terminations) == set(truncations) == set(step_rewards) == set(env.possible_agents)
    assert acted == phases
    assert env.episode == expected and all(t.text != IGNORED for t in env.episode.turns)
    assert all(r == 0.0 for step in rewards[:-1] for r in step.values())
    assert rewards[-1] == expected.rewards and all(terminations.values())


def test_solvers_act_only_once_they_see_the_question():
    env = parallel_env("rzero", num_solvers=2)
    observations, infos = env.reset(seed=0)
    assert env.agents == env.possible_agents
    assert [a for a in env.agents if infos[a]["acting"]] == ["questioner_0"]
    assert observations["solver_0"] == {"messages": ()}
    question = "<question>12+30</question> \\boxed{42}"
    early = {"questioner_0": question, "solver_0": "\\boxed{1}"}  # solver_0's: ignored
    observations, *_, infos = env.step(early)
    assert [a for a in env.agents if infos[a]["acting"]] == ["solver_0", "solver_1"]
    assert observations["solver_1"]["messages"][-1] == {"role": "user", "content": "12+30"}
    env.step({"solver_0": "\\boxed{42}", "solver_1": "\\boxed{42}"})
    _, rewards, terminations, _, _ = env.step({"judge_0": "\\boxed{42}"})
    assert rewards == {"questioner_0": 0.0, "solver_0": 1.0, "solver_1": 1.0, "judge_0": 0.0}
    assert all(terminations.values()) and env.agents == []
    assert Episode.from_json(env.state()) == env.episode


def test_a_missing_action_or_a_step_outside_an_episode_names_the_fix():
    env = parallel_env("rzero", num_solvers=2)
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step({})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"no action for \['questioner_0'\].*'acting'"):
        env.step({"solver_0": "\\boxed{1}"})
    env.step({"questioner_0": "no question"})  # invalid: the episode ends cleanly
    assert env.agents == []
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step({})


def test_parallel_env_pickles_mid_episode_and_renders():
    env = parallel_env("rzero", num_solvers=2, render_mode="ansi")
    env.reset(seed=1)
    env.step({"questioner_0": "<question>2+3</question> \\boxed{5}"})
    clone = pickle.loads(pickle.dumps(env))
    assert clone.state() == env.state() and "2+3" in clone.render()


def test_the_module_docstring_example_runs():
    assert doctest.testmod(parallel).failed == 0

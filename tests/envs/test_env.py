"""The environment core: turn order, rewards, records, determinism, and errors that name the fix."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from selfplay_gym import Episode, Mode, Parsed, SelfPlayReasoningEnv, make, modes, register_mode
from selfplay_gym.envs import registry
from selfplay_gym.envs.tasks import ArithmeticTask

GOOD_QUESTION = "<question>12+30</question> \\boxed{42}"


def play(env: SelfPlayReasoningEnv, actions: dict[str, object], default: object = "") -> Episode:
    """Step every live agent with actions[agent] (default otherwise), then the dead steps."""
    for agent in env.agent_iter():
        _, _, term, trunc, _ = env.last()
        env.step(None if term or trunc else actions.get(agent, default))
    return env.episode


def solver_actions(answers: list[str]) -> dict[str, str]:
    return {f"solver_{i}": a for i, a in enumerate(answers)}


@pytest.fixture
def env():
    env = SelfPlayReasoningEnv("rzero", num_solvers=4)
    env.reset(seed=0)
    return env


def test_agents_follow_pettingzoo_naming(env):
    assert env.possible_agents == ["questioner_0", "solver_0", "solver_1", "solver_2", "solver_3", "judge_0"]
    assert env.agent_selection == "questioner_0"
    assert env.phase_agents() == ("questioner_0",)


def test_a_full_episode_walks_the_phases_and_ends_with_rewards(env):
    env.step(GOOD_QUESTION)
    assert env.phase_agents() == ("solver_0", "solver_1", "solver_2", "solver_3")
    assert env.observe("solver_2")["messages"][-1] == {"role": "user", "content": "12+30"}
    for answer in ["\\boxed{42}", "\\boxed{42}", "\\boxed{41}", "no idea"]:
        env.step(answer)
    assert env.phase_agents() == ("judge_0",)
    env.step("\\boxed{42}")
    assert env.done and all(env.terminations.values())
    # p̂ = 2/4 -> u = 0.5; solvers 1, 1, 0, format penalty 0; judge valid -> 0
    assert env.episode.rewards == {
        "questioner_0": 0.5, "solver_0": 1.0, "solver_1": 1.0, "solver_2": 0.0,
        "solver_3": 0.0, "judge_0": 0.0,
    }
    assert env._cumulative_rewards["solver_0"] == 1.0
    while env.agents:
        env.step(None)
    assert env.agents == []


def test_infos_carry_role_group_and_fields(env):
    env.step(GOOD_QUESTION)
    info = env.infos["solver_1"]
    assert info["role"] == "solver"
    assert info["group_id"] == env.infos["solver_3"]["group_id"] == f"solver:{env.episode.episode_id}"
    assert info["question"] == "12+30"
    assert "reference" not in info["task"], "ground truth must not leak into infos"


@pytest.mark.parametrize(
    "bad_action, error",
    [
        ("", "no <question>"),
        ("12+30 = 42", "no <question>"),
        ("<question>  </question> \\boxed{1}", "empty <question>"),
        (None, "must be a str"),
        (42, "must be a str"),
        (b"bytes", "must be a str"),
        ("x" * 100_000, "exceeds max_action_chars"),
    ],
)
def test_bad_questions_are_invalid_and_end_the_episode_cleanly(env, bad_action, error):
    env.step(bad_action)
    assert env.done
    turn = env.episode.turns[0]
    assert not turn.valid and error in turn.error
    assert env.episode.rewards["questioner_0"] == -1.0
    assert env.episode.rewards["solver_0"] == 0.0
    assert len(turn.text) <= env.max_action_chars


def test_same_seed_and_actions_give_the_same_episode():
    actions = {"questioner_0": GOOD_QUESTION, **solver_actions(["\\boxed{42}"] * 3 + ["x"]),
               "judge_0": "\\boxed{42}"}
    one, two = (SelfPlayReasoningEnv("rzero", num_solvers=4) for _ in range(2))
    one.reset(seed=7)
    two.reset(seed=7)
    assert play(one, actions).to_dict() == play(two, actions).to_dict()
    three = SelfPlayReasoningEnv("rzero", num_solvers=4)
    three.reset(seed=8)
    assert play(three, actions).task != one.episode.task


def test_episode_round_trips_through_json(env):
    actions = {"questioner_0": GOOD_QUESTION, **solver_actions(["\\boxed{42}"] * 4),
               "judge_0": "\\boxed{42}"}
    episode = play(env, actions)
    again = Episode.from_json(episode.to_json())
    assert again == episode
    assert "12+30" in episode.to_json()


def test_render_gives_a_readable_log():
    env = SelfPlayReasoningEnv("rzero", num_solvers=2, render_mode="ansi")
    env.reset(seed=0)
    env.step(GOOD_QUESTION)
    text = env.render()
    assert "questioner_0" in text and "12+30" in text


def test_human_render_prints_the_episode_as_it_ends(capsys):
    env = SelfPlayReasoningEnv("rzero", num_solvers=2, render_mode="human")
    env.reset(seed=0)
    env.step(GOOD_QUESTION)
    assert env.render() is None
    assert "[questioner_0] ok" in capsys.readouterr().out
    play(env, {"solver_0": "\\boxed{42}", "solver_1": "\\boxed{42}", "judge_0": "\\boxed{42}"})
    printed = capsys.readouterr().out  # nobody called render(): the ended episode is printed
    assert printed.count("=== episode") == 1 and "rewards: questioner_0=" in printed


def test_state_is_the_episode_record_as_json(env):
    assert env.state_space.contains(env.state())
    env.step(GOOD_QUESTION)
    assert Episode.from_json(env.state()) == env.episode
    assert "reference" in env.state()  # the global view holds what infos hide
    with pytest.raises(RuntimeError, match="call env.reset"):
        SelfPlayReasoningEnv("rzero").state()


def test_reward_override_replaces_one_role():
    env = SelfPlayReasoningEnv("rzero", num_solvers=2, rewards={"questioner": lambda ep, agent: 0.25})
    env.reset(seed=0)
    episode = play(env, {"questioner_0": GOOD_QUESTION, "solver_0": "\\boxed{42}",
                         "solver_1": "\\boxed{42}", "judge_0": "\\boxed{42}"})
    assert episode.rewards["questioner_0"] == 0.25
    assert episode.rewards["solver_0"] == 1.0


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"mode": "nope"}, ValueError, "registered modes are"),
        ({"mode": "rzero", "num_solver": 3}, TypeError, "valid options are"),
        ({"mode": "rzero", "num_solvers": 0}, ValueError, "at least 1"),
        ({"mode": "rzero", "rewards": {"critic": lambda e, a: 0.0}}, ValueError, "its roles are"),
        ({"mode": "rzero", "rewards": {"solver": 3}}, TypeError, "must be callable"),
        ({"mode": "rzero", "task": "arithmetic"}, TypeError, "sample"),
        ({"mode": "rzero", "render_mode": "rgb_array"}, ValueError, "'ansi' or 'human'"),
        ({"mode": "rzero", "uncertainty_scale": "log"}, ValueError, "'code' or 'paper'"),
    ],
)
def test_misconfiguration_raises_an_error_that_names_the_fix(kwargs, error, match):
    with pytest.raises(error, match=match):
        SelfPlayReasoningEnv(**kwargs)


def test_stepping_outside_an_episode_raises():
    env = SelfPlayReasoningEnv("rzero", num_solvers=1)
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step("x")
    env.reset(seed=0)
    play(env, {})
    with pytest.raises(RuntimeError, match="call env.reset"):
        env.step("x")


def test_non_finite_custom_reward_is_reported_with_its_role():
    env = SelfPlayReasoningEnv("rzero", num_solvers=1, rewards={"judge": lambda e, a: math.nan})
    env.reset(seed=0)
    with pytest.raises(ValueError, match="'judge' reward function returned nan"):
        play(env, {})


def test_task_source_is_pluggable():
    env = make("rzero", num_solvers=1, task=ArithmeticTask(levels=(5,)))
    env.reset(seed=0)
    assert env.episode.task["difficulty"] == 5


# --- a user-defined mode, registered at run time ---------------------------------------------------
@dataclass
class EchoConfig:
    target: str = "yes"


class EchoMode(Mode):
    """One speaker, one listener; the listener earns 1 for repeating the speaker's word."""

    name = "echo"
    roles = ("speaker", "listener")
    Config = EchoConfig

    def agents(self):
        return ("speaker_0", "listener_0")

    def next_phase(self, episode):
        acted = {t.agent for t in episode.turns}
        return next(((a,) for a in self.agents() if a not in acted), ())

    def observe(self, agent, episode):
        said = episode.fields.get("said", "")
        return ({"role": "user", "content": f"{agent}: {said}"},)

    def parse(self, role, text):
        word = text.strip()
        return Parsed(bool(word), {"word": word}, None if word else "empty")

    def record(self, turn, episode):
        episode.fields["said" if turn.role == "speaker" else "heard"] = turn.parsed.get("word")

    def reward_functions(self):
        return {
            "speaker": lambda ep, agent: float(ep.fields.get("said") == self.config.target),
            "listener": lambda ep, agent: float(ep.fields.get("heard") == ep.fields.get("said")),
        }


def test_register_mode_makes_a_user_mode_an_env(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_mode("echo", EchoMode)
    assert "echo" in modes()
    env = SelfPlayReasoningEnv("echo", target="hi")
    env.reset(seed=0)
    episode = play(env, {"speaker_0": "hi", "listener_0": "hi"})
    assert episode.rewards == {"speaker_0": 1.0, "listener_0": 1.0}
    with pytest.raises(ValueError, match="already registered"):
        register_mode("echo", EchoMode)
    with pytest.raises(TypeError, match="Mode subclass"):
        register_mode("other", object)


def test_register_mode_accepts_a_lazy_entry_point(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_mode("echo-lazy", f"{__name__}:EchoMode")
    env = SelfPlayReasoningEnv("echo-lazy")
    assert env.possible_agents == ["speaker_0", "listener_0"]

"""The conformance gate: PettingZoo's own tests over every registered mode.

A new mode is covered by registering it. Warnings are failures unless allow-listed: the only
ones allowed are those any text space raises in api_test (STYLE.md part 3), and for
state_test the two any text state raises (not a NumPy array, not a Box or Discrete space).
The AEC env and its parallel view (``parallel_env``) both pass.
"""

from __future__ import annotations

import pickle
import warnings

import pytest
from pettingzoo.test import (
    parallel_api_test,
    parallel_seed_test,
    render_test,
    seed_test,
    state_test,
)

from selfplay_gym import SelfPlayReasoningEnv, modes, parallel_env
from selfplay_gym.envs.conformance import api_warnings

TEXT_STATE_WARNINGS = (
    "State is not NumPy array",
    "State space for each environment probably should be gymnasium.spaces.box or gymnasium.spaces.discrete",
)


def small_env(mode: str, render_mode: str | None = None) -> SelfPlayReasoningEnv:
    return SelfPlayReasoningEnv(mode, render_mode=render_mode)


def warnings_of(check, *args, allowed=(), **kwargs) -> list[str]:
    """Run a PettingZoo check; return the warnings it raised outside ``allowed``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check(*args, **kwargs)
    return [str(w.message) for w in caught if not str(w.message).startswith(allowed)]


@pytest.mark.parametrize("mode", modes())
def test_api_test_passes_with_only_allowed_warnings(mode):
    assert api_warnings(lambda: small_env(mode), num_cycles=100) == []


@pytest.mark.parametrize("mode", modes())
def test_seed_test_passes(mode):
    seed_test(lambda: small_env(mode), num_cycles=50)


@pytest.mark.parametrize("mode", modes())
def test_render_test_passes_in_ansi_and_human_mode(mode, capsys):
    assert warnings_of(render_test, lambda render_mode=None: small_env(mode, render_mode)) == []
    assert "=== episode" in capsys.readouterr().out  # human mode printed the episode


@pytest.mark.parametrize("mode", modes())
def test_state_test_passes_with_only_text_state_warnings(mode):
    allowed = TEXT_STATE_WARNINGS
    assert warnings_of(state_test, small_env(mode), parallel_env(mode), allowed=allowed) == []


@pytest.mark.parametrize("mode", modes())
def test_parallel_api_test_passes_without_warnings(mode):
    assert warnings_of(parallel_api_test, parallel_env(mode), num_cycles=100) == []


@pytest.mark.parametrize("mode", modes())
def test_parallel_seed_test_passes(mode):
    parallel_seed_test(lambda: parallel_env(mode), num_cycles=50)


@pytest.mark.parametrize("mode", modes())
def test_env_pickles_mid_episode(mode):
    env = small_env(mode)
    env.reset(seed=3)
    env.step("<question>1+1</question> \\boxed{2}")
    clone = pickle.loads(pickle.dumps(env))
    assert clone.agent_selection == env.agent_selection
    assert clone.observe(clone.agent_selection) == env.observe(env.agent_selection)

"""The conformance gate: PettingZoo's own tests over every registered mode.

A new mode is covered by registering it. Warnings are failures unless allow-listed: the only
ones allowed are those any text space raises in api_test (STYLE.md part 3).
"""

from __future__ import annotations

import pickle

import pytest
from pettingzoo.test import seed_test

from selfplay_gym import SelfPlayReasoningEnv, modes
from selfplay_gym.envs.conformance import api_warnings


def small_env(mode: str) -> SelfPlayReasoningEnv:
    return SelfPlayReasoningEnv(mode)


@pytest.mark.parametrize("mode", modes())
def test_api_test_passes_with_only_allowed_warnings(mode):
    assert api_warnings(lambda: small_env(mode), num_cycles=100) == []


@pytest.mark.parametrize("mode", modes())
def test_seed_test_passes(mode):
    seed_test(lambda: small_env(mode), num_cycles=50)


@pytest.mark.parametrize("mode", modes())
def test_env_pickles_mid_episode(mode):
    env = small_env(mode)
    env.reset(seed=3)
    env.step("<question>1+1</question> \\boxed{2}")
    clone = pickle.loads(pickle.dumps(env))
    assert clone.agent_selection == env.agent_selection
    assert clone.observe(clone.agent_selection) == env.observe(env.agent_selection)

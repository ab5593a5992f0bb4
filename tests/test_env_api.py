"""The conformance gate: PettingZoo's own tests over every registered mode.

A new mode is covered by registering it. Warnings are failures unless allow-listed: the only
ones allowed are those any text space raises in api_test (STYLE.md part 3).
"""

from __future__ import annotations

import pickle
import warnings

import pytest
from pettingzoo.test import api_test, seed_test

from selfplay_gym import SelfPlayReasoningEnv, modes

ALLOWED_WARNINGS = (
    "Observation is not a NumPy array",
    "Observation space for each agent probably should be gymnasium.spaces.box or gymnasium.spaces.discrete",
    "Action space for each agent probably should be gymnasium.spaces.box or gymnasium.spaces.discrete",
    "render()",
)


def small_env(mode: str) -> SelfPlayReasoningEnv:
    return SelfPlayReasoningEnv(mode)


@pytest.mark.parametrize("mode", modes())
def test_api_test_passes_with_only_allowed_warnings(mode):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api_test(small_env(mode), num_cycles=100)
    unexpected = [str(w.message) for w in caught if not str(w.message).startswith(ALLOWED_WARNINGS)]
    assert unexpected == []


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

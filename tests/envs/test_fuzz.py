"""Hostile text never breaks an episode: hundreds of episodes of random and adversarial actions."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfplay_gym import SelfPlayReasoningEnv, modes

FRAGMENTS = [
    "\\boxed{", "}", "{", "\\boxed{}", "\\boxed{42}", "<question>", "</question>", "\\frac{1}{0}",
    "\\boxed{\\boxed{", "$", "\\", "\x00", "\ufffd", "9" * 400, "\\boxed{1/0}", "\\sqrt{-1}",
    "<question>1+1</question>", "\n", "中文", "\\boxed{x^{x^{x}}}",
]
hostile_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join),
    st.builds(lambda a, b: a + "\\boxed{" + b + "}", st.text(max_size=40), st.text(max_size=20)),
)
action = st.one_of(
    hostile_text,
    hostile_text,
    hostile_text,
    st.none(),
    st.integers(),
    st.binary(max_size=20),
    st.just("x" * 100_000),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(modes()),
    seed=st.integers(0, 2**16),
    opening=st.sampled_from([None, "<question>12+30</question> \\boxed{42}"]),
    actions=st.lists(action, min_size=40, max_size=40),
)
def test_hostile_actions_end_cleanly_with_finite_rewards(mode, seed, opening, actions):
    """Half the episodes open with a valid question, so solver and judge parsers get fuzzed too."""
    env = SelfPlayReasoningEnv(mode, num_solvers=3)
    env.reset(seed=seed)
    feed = iter(([opening] if opening else []) + actions)
    for _agent in env.agent_iter(max_iter=100):
        _, reward, term, trunc, _ = env.last()
        assert math.isfinite(reward)
        env.step(None if term or trunc else next(feed, ""))
    assert not env.agents, "episode did not end within 100 steps"
    episode = env.episode
    assert set(episode.rewards) == set(env.possible_agents)
    assert all(math.isfinite(r) for r in episode.rewards.values())
    assert not any((t.error or "").startswith("parser error") for t in episode.turns)
    episode.to_json()

"""Hostile text never breaks an episode: hundreds of episodes of random and adversarial actions."""

from __future__ import annotations

import json
import math
import tempfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selfplay_gym import SelfPlayReasoningEnv, modes
from selfplay_gym.algorithms.run_log import RunLog, read_rows
from selfplay_gym.envs.mode import prompt_hash

NESTED = ["\\boxed{" * 2_000 + "}" * 2_000, "{" * 8_000 + "}" * 8_000, "\\frac{" * 2_000 + "}{1}"]
"""Braces nested thousands deep, short enough (16,000 chars) for the parsers to read: a
recursive parser would overflow the stack. Kept out of the fragments: a boxed answer nested
15 or more deep costs math_verify its whole 5 s timeout per comparison."""
HUGE = ("\ud800\\boxed{\x00" + "9" * 93 + "}")[:100] * 1_000
"""100 kB of surrogates, NUL and boxed answers: past max_action_chars, so stored cut."""
FRAGMENTS = [
    "\\boxed{", "}", "{", "\\boxed{}", "\\boxed{42}", "<question>", "</question>", "\\frac{1}{0}",
    "\\boxed{\\boxed{", "$", "\\", "\x00", "\ufffd", "9" * 400, "\\boxed{1/0}", "\\sqrt{-1}",
    "<question>1+1</question>", "\n", "中文", "\\boxed{x^{x^{x}}}",
    "\ud800", "\udfff", "\ud83d", "\\boxed{\udc00}", "<question>\ud800</question>", "\x00" * 50,
    "}" * 200,
]
any_code_point = st.characters(exclude_categories=())
"""Every code point, lone surrogates too: hypothesis leaves them out of text() by default."""
hostile_text = st.one_of(
    st.text(max_size=300),
    st.text(any_code_point, max_size=300),
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
    st.just(HUGE),
    st.sampled_from(NESTED),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(modes()),
    seed=st.integers(0, 2**16),
    opening=st.sampled_from([None, "<question>12+30</question> \\boxed{42}",
                             "<question>12+30 \ud800</question> \\boxed{42}"]),
    actions=st.lists(action, min_size=40, max_size=40),
)
def test_hostile_actions_end_cleanly_with_finite_rewards(mode, seed, opening, actions):
    """Two thirds of the episodes open with a valid question (one with a lone surrogate, which
    the solvers' prompts quote), so solver and judge parsers and prompt hashing get fuzzed too."""
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
    assert_logs_hold(episode)


def assert_logs_hold(episode):
    """The run's episode logs take the episode whatever its text, and read it back exactly."""
    with tempfile.TemporaryDirectory() as directory:
        log = RunLog(directory, tensorboard=False)
        log.episodes(0, [episode], readable=1)
        (row,) = read_rows(log.episodes_path)
        # JSON reads an escaped high + low surrogate pair back as the one character it encodes
        assert row == json.loads(json.dumps({"iteration": 0, **episode.to_dict()}))
        assert "##### iteration 0" in log.log_path.read_text(encoding="utf-8")


def test_prompt_hash_takes_lone_surrogates_and_keeps_every_earlier_id():
    """Strict UTF-8 refuses '\ud800' (the R-Zero crash); text without one hashes as before."""
    def ask(text):
        return ({"role": "user", "content": text},)

    assert prompt_hash("solver", ask("12+30")) == "dc7cf5896b92"  # the id before the fix
    assert prompt_hash("solver", ask("中文")) == "0f9d7a5a213e"
    ids = {prompt_hash("solver", ask(t)) for t in ("\ud800", "\udfff", "a\ud800b", "\x00")}
    assert len(ids) == 4
    assert prompt_hash("solver", ask("\ud800")) == prompt_hash("solver", ask("\ud800"))

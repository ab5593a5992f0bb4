"""ALIVE (reconstruction): parsers, reward terms and whole episodes worked out by hand."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pytest
from pettingzoo.test import seed_test

from selfplay_gym import SelfPlayReasoningEnv, SelfPlayVectorEnv
from selfplay_gym.agents.scripted import FunctionPolicy, RandomTextAgent
from selfplay_gym.envs import registry
from selfplay_gym.envs.conformance import api_warnings
from selfplay_gym.envs.modes.alive import (
    AliveConfig,
    AliveMode,
    class_balance_weight,
    constructor_reward,
    parse_boxed,
    parse_mask,
    parse_review,
    redact,
    reviewer_reward,
    shares_token,
    span_match,
)
from selfplay_gym.envs.spaces import AnyText
from selfplay_gym.envs.tasks import TaskItem, make_document

PASSAGE = "Ana has 45 apples. Ben has 12 apples. Together they have 57 apples."
MASKED = "Ana has [MASK] apples. Ben has 12 apples. Together they have 57 apples."
GOOD_MASK = f"<masked>{MASKED}</masked><answer>45</answer>"
B = "\\boxed{{{}}}".format


@dataclass
class FixedPassage:
    """A task source that always hands out PASSAGE, so masks can be written by hand."""

    name: str = "fixed"

    def sample(self, rng) -> TaskItem:
        return TaskItem(task_id="fixed", domain="stories", document=PASSAGE)


def alive_env(**options) -> SelfPlayReasoningEnv:
    return SelfPlayReasoningEnv(AliveMode(AliveConfig(**{"mask_format": "copy", **options})),
                                task=FixedPassage())


def play(solutions, verdicts=None, revisions=None, mask=GOOD_MASK, **options):
    """One episode: solver i writes solutions[i], reviewer i verdicts[i], reviser i revisions[i]."""
    n = len(solutions)
    verdicts = verdicts or ["correct"] * n
    revise = revisions is not None
    venv = SelfPlayVectorEnv([lambda: alive_env(num_solvers=n, revise=revise, **options)])
    pick = lambda seq: FunctionPolicy(lambda r: seq[int(r.agent.rsplit("_", 1)[1])])  # noqa: E731
    policies = {
        "constructor": FunctionPolicy(lambda r: mask),
        "solver": pick(solutions),
        "reviewer": pick([f"Because so. <verdict>{v}</verdict>" for v in verdicts]),
    }
    if revisions is not None:
        policies["reviser"] = pick(revisions)
    return venv.rollout(policies, seed=0).episodes[0]


def rewards_of(episode, role, n):
    return [episode.rewards[f"{role}_{i}"] for i in range(n)]


# --- parsers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, valid, span, error",
    [
        (GOOD_MASK, True, "45", None),
        (f"draft <masked>x</masked> then\n<masked>\n{MASKED}\n</masked> <answer> 45 </answer>",
         True, "45", None),
        ("<masked>Ana has 45 apples. Ben has [MASK] apples. Together they have 57 apples.</masked>"
         "<answer>12</answer>", True, "12", None),
        ("<masked>Ana has 45 apples. Ben has 12 apples. Together [MASK] 57 apples.</masked>"
         "<answer>they have</answer>", True, "they have", None),
        ("<masked>Ana has [MASK] apples. Ben has [MASK] apples. Together they have 57 apples."
         "</masked><answer>45</answer>", False, "45", "exactly one [MASK], found 2"),
        (f"<masked>{PASSAGE}</masked><answer>45</answer>", False, "45", "one [MASK], found 0"),
        ("<masked>Ana has [MASK] pears. Ben has 12 apples. Together they have 57 apples.</masked>"
         "<answer>45</answer>", False, "45", "does not give the passage"),
        (f"<masked>{MASKED}</masked><answer>46</answer>", False, "46", "does not give the passage"),
        ("<masked>[MASK] Together they have 57 apples.</masked>"
         "<answer>Ana has 45 apples. Ben has 12 apples.</answer>", False,
         "Ana has 45 apples. Ben has 12 apples.", "max_span_chars=32"),
        (f"<masked>{MASKED}</masked><answer>  </answer>", False, "", "empty <answer>"),
        (f"<answer>45</answer> {MASKED}", False, None, "no <masked>"),
        (f"<masked>{MASKED}</masked>", False, None, "no <answer>"),
        ("", False, None, "no <masked>"),
        (None, False, None, "must be text"),
        (42, False, None, "must be text"),
        (b"<masked>[MASK]</masked>", False, None, "must be text"),
        (["<masked>"], False, None, "must be text"),
    ],
)
def test_parse_mask(text, valid, span, error):
    parsed = parse_mask(text, PASSAGE, max_span_chars=32)
    assert parsed.valid is valid
    assert parsed.fields.get("span") == span
    if error:
        assert error in parsed.error


def test_parse_mask_without_passage_checks_syntax_only():
    assert parse_mask("<masked>anything [MASK]</masked><answer>x</answer>").valid
    assert not parse_mask("<masked>x</masked><answer>x</answer>", PASSAGE).valid
    assert not parse_mask(GOOD_MASK, passage=123).valid


@pytest.mark.parametrize(
    "text, valid, verdict, critique",
    [
        ("45 + 12 = 57 checks out. <verdict>correct</verdict>", True, "correct",
         "45 + 12 = 57 checks out."),
        ("Off by one. <VERDICT> Wrong </VERDICT>", True, "wrong", "Off by one."),
        ("Close. <verdict>partial</verdict>", True, "partially", "Close."),
        ("No. <verdict>Incorrect</verdict>", True, "wrong", "No."),
        ("first <verdict>correct</verdict> on reflection <verdict>wrong</verdict>", True, "wrong",
         "first   on reflection"),
        ("<verdict>correct</verdict>", False, "correct", ""),
        ("Looks fine. <verdict>maybe</verdict>", False, None, "Looks fine."),
        ("Looks fine, correct.", False, None, "Looks fine, correct."),
        (None, False, None, None),
        (7, False, None, None),
    ],
)
def test_parse_review(text, valid, verdict, critique):
    parsed = parse_review(text)
    assert parsed.valid is valid
    assert parsed.fields.get("verdict") == verdict
    assert parsed.fields.get("critique") == critique


@pytest.mark.parametrize(
    "text, answer",
    [("so \\boxed{45}", "45"), ("\\boxed{1} no \\boxed{2}", "2"), ("45", None), (None, None)],
)
def test_parse_boxed(text, answer):
    assert parse_boxed(text).fields.get("answer") == answer


# --- reward terms ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "answer, span, match",
    [
        ("45", "45", True),
        ("45.0", "45", True),  # a span with a digit goes to math_verify
        ("\\frac{90}{2}", "45", True),
        ("44", "45", False),
        ("Ana", "ana", True),  # words: same text, case and spacing aside
        ("they  have", "they have", True),
        ("naA", "Ana", False),  # math_verify would call these equal (a product of symbols)
        ("ab", "ba", False),
        (None, "45", False),
        ("45", None, False),
    ],
)
def test_span_match(answer, span, match):
    assert span_match(answer, span) is match


@pytest.mark.parametrize(
    "answer, span, shares",
    [("54", "45", True), ("12", "45", False), ("57 pears", "57 apples", True), ("Ben", "ben", True),
     ("Cleo", "Ana", False), (None, "45", False)],
)
def test_shares_token(answer, span, shares):
    assert shares_token(answer, span) is shares


@pytest.mark.parametrize(
    "p, adversarial, variance",
    [
        (0.25, 0.75, 0.75),  # 1 - 0.25; 4 * 0.25 * 0.75
        (0.5, 0.5, 1.0),
        (0.125, 0.875, 0.4375),  # 4 * 1/8 * 7/8 = 28/64
        (0.0, 0.0, 0.0),  # unrecoverable: the 0-at-0% guard
        (1.0, 0.0, 0.0),  # trivial
    ],
)
def test_constructor_reward(p, adversarial, variance):
    assert constructor_reward(p) == pytest.approx(adversarial)
    assert constructor_reward(p, "variance") == pytest.approx(variance)


def test_constructor_reward_rejects_a_rate_outside_0_1():
    with pytest.raises(ValueError, match="pass_rate"):
        constructor_reward(1.5)


@pytest.mark.parametrize(
    "verdict, matched, overlap, reward",
    [
        ("correct", True, True, 1.0),
        ("wrong", False, False, 1.0),
        ("wrong", True, True, 0.0),
        ("correct", False, True, 0.0),
        ("partially", False, True, 0.5),
        ("partially", False, False, 0.0),
        ("partially", True, True, 0.0),
    ],
)
def test_reviewer_reward(verdict, matched, overlap, reward):
    assert reviewer_reward(verdict, matched, overlap) == reward


@pytest.mark.parametrize(
    "matched, num_matched, n, weight",
    [(True, 2, 8, 2.0), (False, 2, 8, 8 / 12), (True, 4, 8, 1.0), (False, 0, 8, 1.0), (True, 8, 8, 1.0)],
)
def test_class_balance_weight(matched, num_matched, n, weight):
    assert class_balance_weight(matched, num_matched, n) == pytest.approx(weight)


def test_class_balance_weight_refuses_impossible_counts():
    with pytest.raises(ValueError, match="num_matched"):
        class_balance_weight(True, 9, 8)


@pytest.mark.parametrize(
    "verdicts, mean",
    [(["correct"] * 8, 0.5), (["wrong"] * 8, 0.5), (["correct"] * 2 + ["wrong"] * 6, 1.0)],
)
def test_balanced_reviewers_earn_half_for_ignoring_the_answer(verdicts, mean):
    # 2 matches of 8: a match weighs 8 / (2 x 2) = 2, a miss 8 / (2 x 6) = 2/3.
    ep = play([B(45)] * 2 + [B(44)] * 6, verdicts, reviewer_reward="balanced")
    rewards = rewards_of(ep, "reviewer", 8)
    assert sum(rewards) / 8 == pytest.approx(mean)
    assert rewards[0] == pytest.approx(2.0 if verdicts[0] == "correct" else 0.0)


def test_redact_hides_whole_tokens_only():
    assert redact("It is 45, not 145: 45!", "45") == "It is [HIDDEN], not 145: [HIDDEN]!"
    assert redact("ana met Ana", "Ana") == "[HIDDEN] met [HIDDEN]"


# --- whole episodes -------------------------------------------------------------------------------
def test_eight_solvers_two_correct():
    # p = 2/8 = 0.25 -> constructor 1 - 0.25 = 0.75. Reviewers all say "correct": right for the
    # two matches (1), wrong for the rest (0); solvers in verdict mode then all earn 1.
    solutions = [B(45), B("45.0")] + [B(44)] * 5 + ["no box"]
    ep = play(solutions)
    assert ep.fields["correct"] == [True, True] + [False] * 6
    assert ep.fields["pass_rate"] == 0.25
    assert ep.rewards["constructor_0"] == pytest.approx(0.75)
    assert rewards_of(ep, "solver", 8) == [1.0] * 7 + [0.0]  # the unboxed one: format penalty 0
    assert rewards_of(ep, "reviewer", 8) == [1.0, 1.0] + [0.0] * 6
    assert ep.fields["reviewer_accuracy"] == 0.25


def test_variance_constructor_and_match_solver_options():
    solutions = [B(45), B(45)] + [B(44)] * 6
    ep = play(solutions, constructor_reward="variance", solver_reward="match")
    assert ep.rewards["constructor_0"] == pytest.approx(4 * 0.25 * 0.75)
    assert rewards_of(ep, "solver", 8) == [1.0, 1.0] + [0.0] * 6


def test_all_wrong_earns_the_constructor_nothing():
    ep = play([B(44)] * 8)
    assert ep.fields["pass_rate"] == 0.0
    assert ep.rewards["constructor_0"] == 0.0


def test_verdicts_set_solver_rewards_and_reviewers_are_paid_for_agreement():
    # answers 45 (match), 54 (no match, shares digits), 12 (no match, no shared token), 45.
    solutions = [B(45), B(54), B(12), B(45)]
    verdicts = ["correct", "partially", "partially", "wrong"]
    ep = play(solutions, verdicts)
    assert rewards_of(ep, "solver", 4) == [1.0, 0.5, 0.5, 0.0]
    assert rewards_of(ep, "reviewer", 4) == [1.0, 0.5, 0.0, 0.0]
    assert ep.fields["critiques"] == ["Because so."] * 4


def test_invalid_verdict_costs_the_reviewer_and_falls_back_to_the_match():
    venv = SelfPlayVectorEnv([lambda: alive_env(num_solvers=2)])
    ep = venv.rollout({
        "constructor": FunctionPolicy(lambda r: GOOD_MASK),
        "solver": FunctionPolicy(lambda r: B(45)),
        "reviewer": FunctionPolicy(lambda r: "looks right to me"),
    }).episodes[0]
    assert ep.fields["verdicts"] == [None, None]
    assert rewards_of(ep, "reviewer", 2) == [-1.0, -1.0]
    assert rewards_of(ep, "solver", 2) == [1.0, 1.0]


def test_invalid_mask_ends_the_episode_and_drops_the_other_samples():
    ep = play([B(45)] * 3, mask=f"<masked>{PASSAGE}</masked><answer>45</answer>")
    assert [t.agent for t in ep.turns] == ["constructor_0"]
    assert ep.turns[0].valid is False and "exactly one" in ep.turns[0].error
    assert ep.fields["mask_valid"] is False and ep.fields["masked"] is None
    assert ep.rewards["constructor_0"] == -1.0
    assert all(r == 0.0 for a, r in ep.rewards.items() if a != "constructor_0")
    mode = AliveMode(AliveConfig(num_solvers=3))
    assert mode.keep_for_training("constructor_0", ep)
    assert not mode.keep_for_training("solver_0", ep)
    assert not mode.keep_for_training("reviewer_2", ep)


def test_invented_text_is_caught_against_the_passage():
    ep = play([B(45)], mask=GOOD_MASK.replace("Ben", "Bob"))
    assert ep.turns[0].valid is False and "passage" in ep.turns[0].error
    assert ep.rewards["constructor_0"] == -1.0


def test_revisers_and_self_correction_rate():
    # first answers: 45 right, 44 wrong, 44 wrong, unboxed wrong; revised: 45, 45, 44, 45.
    # wrong first = 3, fixed = 2 (agents 1 and 3) -> self-correction rate 2/3.
    ep = play([B(45), B(44), B(44), "?"], ["correct", "wrong", "wrong", "wrong"],
              revisions=[B(45), B(45), B(44), B(45)])
    assert ep.fields["revised_correct"] == [True, True, False, True]
    assert ep.fields["wrong_first"] == 3 and ep.fields["fixed"] == 2
    assert ep.fields["self_correction_rate"] == pytest.approx(2 / 3)
    assert rewards_of(ep, "reviser", 4) == [1.0, 1.0, 0.0, 1.0]


def test_reviser_sees_its_solution_and_a_redacted_critique():
    env = alive_env(num_solvers=1, revise=True)
    env.reset(seed=0)
    review = "It should be 45, the total minus 12. <verdict>wrong</verdict>"
    for action in (GOOD_MASK, B(44), review):
        env.step(action)
    messages = env.observe("reviser_0")["messages"]
    assert messages[2] == {"role": "assistant", "content": B(44)}
    assert "be [HIDDEN], the total minus 12" in messages[3]["content"]
    assert "45" not in messages[3]["content"]
    assert env.episode.fields["critique_leaks"] == 1
    env.step("no box")
    assert env.episode.rewards["reviser_0"] == 0.0  # solver_format_penalty
    assert env.episode.fields["self_correction_rate"] == 0.0


def test_observations_groups_and_infos():
    env = alive_env(num_solvers=2)
    env.reset(seed=0)
    assert env.possible_agents == [
        "constructor_0", "solver_0", "solver_1", "reviewer_0", "reviewer_1"
    ]
    assert env.observe("constructor_0")["messages"][-1]["content"] == PASSAGE
    env.step(GOOD_MASK)
    assert env.phase_agents() == ("solver_0", "solver_1")
    assert env.observe("solver_1")["messages"][-1]["content"] == MASKED
    assert env.infos["solver_0"]["group_id"] == env.infos["solver_1"]["group_id"]
    info = env.infos["solver_0"]
    assert "span" not in info and "document" not in info["task"], "the span must not leak"
    env.step(B(45))
    env.step(B(3))
    assert env.phase_agents() == ("reviewer_0", "reviewer_1")
    review = env.observe("reviewer_1")["messages"][-1]["content"]
    assert MASKED in review and B(3) in review and review.endswith("Hidden span: 45")
    assert env.infos["reviewer_0"]["group_id"] == f"reviewer:{env.episode.episode_id}"
    assert env.infos["reviewer_0"]["span"] == "45"


@pytest.mark.parametrize("grouping", ["batch", "passage"])
def test_constructor_groups(grouping):
    # two envs, same passage: "batch" shares one id across the rollout, "passage" one per prompt
    venv = SelfPlayVectorEnv([lambda: alive_env(num_solvers=1, constructor_group=grouping)] * 2)
    rollout = venv.rollout({
        "constructor": FunctionPolicy(lambda r: GOOD_MASK),
        "solver": FunctionPolicy(lambda r: B(45)),
        "reviewer": FunctionPolicy(lambda r: "ok <verdict>correct</verdict>"),
    })
    ids = [ep.group_ids["constructor_0"] for ep in rollout.episodes]
    assert ids[0] == ids[1]
    assert (ids[0] == "constructor:batch") is (grouping == "batch")
    assert rollout.episodes[0].group_ids["solver_0"] != rollout.episodes[1].group_ids["solver_0"]


def test_every_number_of_the_default_corpus_makes_a_valid_mask():
    rng = np.random.default_rng(0)
    for _ in range(30):
        document = make_document(rng)
        for number in re.finditer(r"\d+", document):
            masked = document[: number.start()] + "[MASK]" + document[number.end() :]
            text = f"<masked>{masked}</masked><answer>{number.group()}</answer>"
            assert parse_mask(text, document).valid, (document, number.group())


def test_roles_and_single_policy():
    assert AliveMode.single_policy is True
    assert AliveMode().roles == ("constructor", "solver", "reviewer")
    revising = AliveMode(AliveConfig(revise=True))
    assert revising.roles == ("constructor", "solver", "reviewer", "reviser")
    assert len(SelfPlayReasoningEnv(AliveMode()).possible_agents) == 1 + 8 + 8


@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_solvers": 0}, "num_solvers"),
        ({"solver_reward": "vibes"}, "solver_reward"),
        ({"reviewer_reward": "kind"}, "reviewer_reward"),
        ({"constructor_reward": "x"}, "constructor_reward"),
        ({"max_span_chars": 0}, "max_span_chars"),
        ({"constructor_group": "doc"}, "constructor_group"),
    ],
)
def test_config_is_validated(options, message):
    with pytest.raises(ValueError, match=message):
        AliveConfig(**options)


def test_registered_by_name(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_mode("alive", "selfplay_gym.envs.modes.alive:AliveMode", overwrite=True)
    env = SelfPlayReasoningEnv("alive", num_solvers=2, revise=True)
    env.reset(seed=1)
    assert "[MASK]" not in env.observe("constructor_0")["messages"][-1]["content"]
    assert env.possible_agents[-1] == "reviser_1"


# --- PettingZoo conformance -----------------------------------------------------------------------
MASK_BEN = f"<masked>{PASSAGE.replace('Ben', '[MASK]')}</masked><answer>Ben</answer>"
CHOICES = {
    "constructor": [GOOD_MASK, MASK_BEN],
    "solver": [B(45), B(44), "Ana"],
    "reviewer": [f"ok <verdict>{v}</verdict>" for v in ("correct", "wrong", "partially")],
    "reviser": [B(45), B(12)],
}


class ChoiceText(AnyText):
    """A text space whose samples are mostly well-formed for its role, so random play reaches
    every phase; one draw in four is random text."""

    def __init__(self, choices, max_length):
        super().__init__(max_length)
        self.choices = choices

    def sample(self, mask=None, probability=None):
        if self.np_random.random() < 0.25:
            return super().sample()
        return self.choices[int(self.np_random.integers(len(self.choices)))]


class ScriptedSpaces(SelfPlayReasoningEnv):
    def __init__(self, **options):
        super().__init__(AliveMode(AliveConfig(mask_format="copy", **options)), task=FixedPassage())
        self._choice_spaces = {
            a: ChoiceText(CHOICES[a.rsplit("_", 1)[0]], self.max_action_chars)
            for a in self.possible_agents
        }

    def action_space(self, agent):
        return self._choice_spaces[agent]


def env_variants():
    return [
        pytest.param(lambda: SelfPlayReasoningEnv(AliveMode()), id="default-random"),
        pytest.param(lambda: ScriptedSpaces(num_solvers=3), id="scripted"),
        pytest.param(lambda: ScriptedSpaces(num_solvers=3, revise=True), id="scripted-revise"),
    ]


def test_choice_spaces_reach_the_last_phase():
    env = ScriptedSpaces(num_solvers=2, revise=True)
    for seed in range(20):
        env.reset(seed=seed)
        env.action_space("constructor_0").seed(seed)
        for agent in env.agent_iter():
            _, _, term, trunc, _ = env.last()
            env.step(None if term or trunc else env.action_space(agent).sample())
        if "self_correction_rate" in env.episode.fields:
            return
    pytest.fail("no episode reached the revisers")


@pytest.mark.parametrize("make_env", env_variants())
def test_api_test_passes_with_only_allowed_warnings(make_env):
    assert api_warnings(make_env, num_cycles=100) == []


@pytest.mark.parametrize("make_env", env_variants())
def test_seed_test_passes(make_env):
    seed_test(make_env, num_cycles=50)


# --- hostile text ---------------------------------------------------------------------------------
def test_hostile_text_never_breaks_an_episode():
    rng = np.random.default_rng(0)
    junk = RandomTextAgent(seed=0, max_length=80, boxed_prob=0.3)
    fragments = ["[MASK]", "<masked>", "</masked>", "<answer>", "</answer>", "<verdict>",
                 "</verdict>", "wrong", "\\boxed{", "}", "45", "\x00", "中文", None, 7]
    for episode in range(50):
        env = alive_env(num_solvers=3, revise=bool(episode % 2))
        env.reset(seed=episode)
        for agent in env.agent_iter(max_iter=100):
            _, reward, term, trunc, _ = env.last()
            assert math.isfinite(reward)
            if term or trunc:
                env.step(None)
                continue
            roll = rng.random()
            if agent == "constructor_0" and roll < 0.5:
                action = GOOD_MASK  # half the episodes reach the later parsers
            elif roll < 0.5:
                action = junk.generate([None])[0].text
            else:
                picks = rng.choice(len(fragments), size=int(rng.integers(0, 8)))
                parts = [fragments[i] for i in picks]
                action = parts[0] if len(parts) == 1 else "".join(str(p) for p in parts)
            env.step(action)
        assert not env.agents
        assert set(env.episode.rewards) == set(env.possible_agents)
        assert all(math.isfinite(r) for r in env.episode.rewards.values())
        assert not any((t.error or "").startswith("parser error") for t in env.episode.turns)
        env.episode.to_json()


STORY = "Jun has 37 coins. Hana has 13 coins. Together they have 50 coins."


@pytest.mark.parametrize(
    "text, masked, error",
    [
        ("<masked>ignored</masked><answer>13</answer>",
         "Jun has 37 coins. Hana has [MASK] coins. Together they have 50 coins.", None),
        ("<answer> Hana </answer>", "Jun has 37 coins. [MASK] has 13 coins. Together they have 50 coins.", None),
        ("<answer>3</answer>", None, "not a word or number of the passage"),  # inside 13, 37
        ("<answer></answer>", None, "no <answer>"),
        ("13", None, "no <answer>"),
    ],
)
def test_span_format_masks_the_first_whole_word_occurrence(text, masked, error):
    from selfplay_gym.envs.modes.alive import parse_span

    parsed = parse_span(text, STORY)
    assert parsed.valid == (error is None)
    assert (parsed.fields.get("masked") if parsed.valid else None) == masked
    assert error is None or error in parsed.error


def test_span_format_episode_gives_the_solver_the_env_made_mask():
    env = SelfPlayReasoningEnv("alive", num_solvers=1, mask_format="span")
    env.reset(seed=0)
    passage = env.observe("constructor_0")["messages"][-1]["content"]
    span = passage.split()[2]  # a number of the story
    env.step(f"<answer>{span}</answer>")
    masked = env.observe("solver_0")["messages"][-1]["content"]
    assert masked.count("[MASK]") == 1 and masked.replace("[MASK]", span, 1) == passage

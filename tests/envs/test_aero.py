"""AERO: parsers, entropy positioning, ICC and the label rewards on episodes worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pettingzoo.test import seed_test

from selfplay_gym import Episode, SelfPlayReasoningEnv, SelfPlayVectorEnv
from selfplay_gym.agents.scripted import FunctionPolicy, scripted_policy
from selfplay_gym.envs.conformance import api_warnings
from selfplay_gym.envs.modes.aero import (
    AeroConfig,
    AeroMode,
    entropy_zone,
    normalized_entropy,
    parse_merge,
    parse_question,
    zpd_bump_reward,
)
from selfplay_gym.envs.spaces import SAMPLE_CHARSET
from selfplay_gym.envs.tasks import ArithmeticTask

B = "\\boxed{{{}}}".format
B56 = B(56)
BAD_QUESTION_LABEL = {"agent": "generator_0", "role": "generator", "desirable": False}
QUESTION = json.dumps({"question": "7*8", "meta": {"knowledge_points": ["products"]}})
H_12_4 = 0.75 * math.log2(4 / 3) + 0.25 * 2  # 0.8113 bits
H_6_6_4 = 2 * 0.375 * math.log2(1 / 0.375) + 0.25 * 2  # 1.5613 bits


def idx(agent: str) -> int:
    return int(agent.rsplit("_", 1)[1])


def run(answers, refiners=(B56, B56), judge="", question=QUESTION, seen=None, refiner=None, **options):
    """(episode, mode) of one AERO episode with scripted texts (or a ``refiner`` policy);
    ``seen`` gets each Request."""
    mode = AeroMode(AeroConfig(num_solvers=len(answers), **options))
    venv = SelfPlayVectorEnv([lambda: SelfPlayReasoningEnv(mode)])
    seen = {} if seen is None else seen

    def play(texts):
        def act(request):
            seen[request.agent] = request
            return texts(request)

        return FunctionPolicy(act)

    policies = {
        "generator": play(lambda r: question),
        "solver": play(lambda r: answers[idx(r.agent)]),
        "judge": play(lambda r: judge),
        "refiner": refiner or play(lambda r: refiners[idx(r.agent)]),
    }
    return venv.rollout(policies, seed=0).episodes[0], mode


def solver_rewards(ep: Episode) -> list[float]:
    return [ep.rewards[f"solver_{i}"] for i in range(len(ep.fields["answers"]))]


# --- parsers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, question, meta",
    [
        ('{"question": "12+30", "meta": {}}', "12+30", {}),
        ('```json\n{"question": "12+30"}\n```', "12+30", {}),
        ('Sure! {"question": " 2*3 ", "meta": {"domain": "x"}} Hope it helps {', "2*3",
         {"domain": "x"}),
        ('{"question": "q", "meta": {"knowledge_points": ["a", {"b": [1]}], "background": "c"}}',
         "q", {"knowledge_points": ["a", {"b": [1]}], "background": "c"}),
        ('{"question": "old"} then {"question": "new", "meta": [1]}', "new", {}),
        ('{"meta": {"domain": "x"}}', None, None),
        ('{"question": "   "}', None, None),
        ('{"question": 42}', None, None),
        ("What is 2+2?", None, None),
        ('{"question": "2+', None, None),
        ("{" * 500, None, None),
        ("", None, None),
    ],
)
def test_parse_question(text, question, meta):
    parsed = parse_question(text)
    assert parsed.valid is (question is not None)
    assert parsed.fields.get("question") == question
    assert parsed.fields.get("meta") == meta


@pytest.mark.parametrize(
    "text, blocks",
    [
        ('{"same": [[1, 3], [2]]}', [[1, 3], [2]]),
        ('```json\n{"same": [[2, 1]]}\n``` done', [[2, 1]]),
        ('{"same": [1, [2, 3]]}', [[1], [2, 3]]),
        ('{"same": [["1", "2"]]}', [[1, 2]]),
        ('{"same": []}', []),
        ('{"same": "1,2"}', None),
        ('{"same": [[1, "x"]]}', None),
        ('{"same": [[true]]}', None),
        ("1 and 2 are the same", None),
    ],
)
def test_parse_merge(text, blocks):
    parsed = parse_merge(text)
    assert parsed.valid is (blocks is not None)
    assert parsed.fields.get("same") == blocks


# --- entropy positioning -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sizes, n, original, corrected",
    [
        ([8, 8], 16, 1 / 4, 1 / 2),  # 1 bit: 1/log2(16) vs 1/log2(4)
        ([16], 16, 0.0, 0.0),
        ([1] * 16, 16, 1.0, 1.0),  # 4 bits: 4/4, and 4/2 capped at 1
        ([12, 4], 16, H_12_4 / 4, H_12_4 / 2),  # 0.2028, 0.4056
        ([8, 4, 4], 16, 1.5 / 4, 1.5 / 2),
        ([4, 4, 4, 4], 16, 0.5, 1.0),
        ([4, 4], 16, 0.25, 0.5),  # 8 unparsable: the original still divides by log2(16)
        ([2, 1], 3, 0.918296 / math.log2(3), 0.918296 / math.log2(3)),  # m = n = 3 < 4
        ([1], 16, 0.0, 0.0),
        ([], 16, None, None),
    ],
)
def test_normalized_entropy(sizes, n, original, corrected):
    assert normalized_entropy(sizes, n, "original") == pytest.approx(original)
    assert normalized_entropy(sizes, n, "corrected") == pytest.approx(corrected)


@pytest.mark.parametrize(
    "entropy, zone",
    [(0.0, "mastery"), (0.2999, "mastery"), (0.3, "ZPD"), (0.7, "ZPD"), (0.7001, "chaos"),
     (None, "chaos")],
)
def test_entropy_zone(entropy, zone):
    assert entropy_zone(entropy) == zone


@pytest.mark.parametrize(
    "answers, normalization, entropy, zone",
    [
        ([B(56)] * 8 + [B(54)] * 8, "original", 0.25, "mastery"),
        ([B(56)] * 8 + [B(54)] * 8, "corrected", 0.5, "ZPD"),
        ([B(56)] * 16, "original", 0.0, "mastery"),
        ([B(i) for i in range(16)], "original", 1.0, "chaos"),
        ([B(i) for i in range(16)], "corrected", 1.0, "chaos"),
        (["no box"] * 16, "original", None, "chaos"),
    ],
)
def test_zone_of_an_episode(answers, normalization, entropy, zone):
    ep, mode = run(answers, entropy_normalization=normalization)
    assert ep.fields["entropy"] == pytest.approx(entropy)
    assert ep.fields["zone"] == zone
    assert ep.rewards["generator_0"] == (1.0 if zone == "ZPD" else -1.0)
    refined = any(t.role == "refiner" for t in ep.turns)
    assert refined is (zone == "ZPD")
    if zone != "ZPD":  # no ICC: no pseudo-label, no solver data
        assert solver_rewards(ep) == [0.0] * 16
        assert not mode.keep_for_training("solver_0", ep)
        assert ep.fields["kto_labels"] == [BAD_QUESTION_LABEL]
    assert mode.keep_for_training("generator_0", ep)


# --- ICC -----------------------------------------------------------------------------------------
# 8 x 56, 4 x 54, 4 x 57: H = 1.5 bits, original H̄ = 1.5/4 = 0.375 -> ZPD, 3 clusters.
SPLIT = [f"s{i}: 7*8 is \\boxed{{{a}}}" for i, a in enumerate([56] * 8 + [54] * 4 + [57] * 4)]


def test_icc_converged_on_the_majority():
    seen = {}
    ep, mode = run(SPLIT, refiners=(B(56), "so " + B(56)), seen=seen)
    f = ep.fields
    assert f["clusters"] == [list(range(8)), list(range(8, 12)), list(range(12, 16))]
    assert f["cluster_answers"] == ["56", "54", "57"] and f["refiner_candidates"] == [0, 8]
    # refiner_i sees the full text of its cluster's first member, with the "assume wrong" prompt
    assert SPLIT[0] in seen["refiner_0"].messages[-1]["content"]
    assert SPLIT[8] in seen["refiner_1"].messages[-1]["content"]
    assert "WRONG" in seen["refiner_1"].messages[0]["content"]
    assert f["converged"] and f["pseudo_label"] == "56" and f["candidate_correct"] == [True, False]
    assert ep.rewards["generator_0"] == 1.0
    assert solver_rewards(ep) == [1.0] * 8 + [-1.0] * 8
    assert ep.rewards["refiner_0"] == ep.rewards["refiner_1"] == 1.0
    assert ep.rewards["judge_0"] == 0.0
    assert f["kto_labels"] == [
        {"agent": "generator_0", "role": "generator", "desirable": True},
        {"agent": "refiner_0", "role": "solver", "desirable": True},
        {"agent": "solver_8", "role": "solver", "desirable": False},
        {"agent": "refiner_1", "role": "refiner", "desirable": True},
    ]
    assert mode.cross_role_examples(ep) == [("refiner_0", "solver_0", 1.0)]  # AERO's desirable solver example
    assert all(mode.keep_for_training(a, ep) for a in ("solver_3", "solver_9", "refiner_1"))
    assert ep.group_ids["solver_0"] == ep.group_ids["solver_15"] == f"solver:{ep.episode_id}"
    assert ep.group_ids["refiner_0"] == ep.group_ids["refiner_1"] == f"refiner:{ep.episode_id}"
    assert Episode.from_json(ep.to_json()) == ep


def test_aero_examples_keep_only_what_aero_labels():
    """8 x 56 (a*), 4 x 54, 4 x 57: AERO's undesirable solver example is the wrong top-2
    representative (solver_8), its refiner example the refiner of that candidate (refiner_1)."""
    ep, mode = run(SPLIT, examples="aero")
    kept = [a for a in [*(f"solver_{i}" for i in range(16)), "refiner_0", "refiner_1"]
            if mode.keep_for_training(a, ep)]
    assert kept == ["solver_8", "refiner_1"]
    assert (ep.rewards["solver_8"], ep.rewards["refiner_1"]) == (-1.0, 1.0)  # the labels' signs
    assert mode.keep_for_training("generator_0", ep)


def test_icc_converged_on_a_third_answer_marks_both_candidates_wrong():
    ep, _ = run(SPLIT, refiners=(B("55"), B("55.0")))  # math_verify: 55 == 55.0
    assert ep.fields["pseudo_label"] == "55" and ep.fields["candidate_correct"] == [False, False]
    assert solver_rewards(ep) == [-1.0] * 16
    assert [(lab["agent"], lab["role"]) for lab in ep.fields["kto_labels"][1:]] == [
        ("refiner_0", "solver"), ("solver_0", "solver"), ("solver_8", "solver"),
        ("refiner_0", "refiner"), ("refiner_1", "refiner"),
    ]


@pytest.mark.parametrize("refiners", [(B(56), B(54)), (B(56), "I am not sure"), ("", "")])
def test_icc_not_converged_gives_no_solver_or_refiner_data(refiners):
    ep, mode = run(SPLIT, refiners=refiners)
    assert ep.fields["converged"] is False and ep.fields["pseudo_label"] is None
    assert ep.rewards["generator_0"] == 1.0  # still a ZPD question
    assert solver_rewards(ep) == [0.0] * 16
    assert ep.rewards["refiner_0"] == ep.rewards["refiner_1"] == 0.0
    assert not any(mode.keep_for_training(a, ep) for a in ("solver_0", "refiner_0", "refiner_1"))
    assert len(ep.fields["kto_labels"]) == 1 and mode.cross_role_examples(ep) == []


def test_a_reference_refiner_makes_the_true_answer_the_label_against_a_wrong_majority():
    """``--scripted refiner=reference``, the diagnostic row of benchmarks/learning.py."""
    wrong_majority = [B(a) for a in [54] * 8 + [56] * 4 + [57] * 4]
    ep, _ = run(wrong_majority, refiner=scripted_policy("reference", ArithmeticTask()))
    assert ep.fields["zone"] == "ZPD" and ep.fields["cluster_answers"][:2] == ["54", "56"]
    assert ep.fields["converged"] and ep.fields["pseudo_label"] == "56"
    assert solver_rewards(ep) == [-1.0] * 8 + [1.0] * 4 + [-1.0] * 4
    assert ep.fields["candidate_correct"] == [False, True]


def test_unparsable_solver_answer_is_wrong_once_converged():
    answers = SPLIT[:15] + ["no final answer"]  # 8/4/3 of 16 -> H̄ still in the ZPD
    ep, _ = run(answers)
    assert ep.fields["zone"] == "ZPD" and ep.rewards["solver_15"] == -1.0


# --- equivalence and the LLM judge ---------------------------------------------------------------
# 6 x "0.5", 6 x "\frac{1}{2}", 4 x "3": one value or two, depending on who decides.
HALVES = [B("0.5")] * 6 + [B("\\frac{1}{2}")] * 6 + [B(3)] * 4


@pytest.mark.parametrize(
    "equivalence, judge, entropy, zone, judge_reward",
    [
        ("math_verify", "", H_12_4 / 4, "mastery", 0.0),  # merged: 12/4
        ("exact", "", H_6_6_4 / 4, "ZPD", 0.0),  # 6/6/4: 0.3903
        ("llm", '{"same": [[1, 2], [3]]}', H_12_4 / 4, "mastery", 0.0),
        ("llm", 'Answers 1 and 2 agree: {"same": [[2, 1]]}', H_12_4 / 4, "mastery", 0.0),
        ("llm", "they are all the same", H_6_6_4 / 4, "ZPD", -1.0),  # fallback: exact groups
        ("llm", '{"same": [[1, 4]]}', H_6_6_4 / 4, "ZPD", -1.0),  # no answer 4
        ("llm", '{"same": [[1, 2], [2, 3]]}', H_6_6_4 / 4, "ZPD", -1.0),  # 2 twice
    ],
)
def test_equivalence_decides_the_clusters(equivalence, judge, entropy, zone, judge_reward):
    seen = {}
    ep, _ = run(HALVES, judge=judge, equivalence=equivalence, seen=seen)
    assert ep.fields["entropy"] == pytest.approx(entropy) and ep.fields["zone"] == zone
    assert ep.rewards["judge_0"] == judge_reward
    assert ("judge_0" in seen) is (equivalence == "llm")
    if equivalence == "llm":
        assert "1. 0.5\n2. \\frac{1}{2}\n3. 3" in seen["judge_0"].messages[-1]["content"]


def test_exact_equivalence_ignores_spaces_only():
    ep, _ = run([B("1/2")] * 8 + [B("1 / 2")] * 8, equivalence="exact")
    assert ep.fields["clusters"] == [list(range(16))]


def test_llm_judge_is_skipped_when_there_is_nothing_to_merge():
    seen = {}
    ep, _ = run([B(56)] * 16, equivalence="llm", seen=seen)
    assert "judge_0" not in seen and ep.rewards["judge_0"] == 0.0


# --- generator ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["What is 7*8?", '{"meta": {}}', "", '{"question": ""}'])
def test_invalid_generator_json_ends_the_episode_with_the_format_penalty(text):
    seen = {}
    ep, _ = run(SPLIT, question=text, seen=seen, format_penalty=-0.5)
    assert list(seen) == ["generator_0"] and len(ep.turns) == 1
    assert ep.rewards["generator_0"] == -0.5
    assert all(r == 0.0 for a, r in ep.rewards.items() if a != "generator_0")
    assert ep.fields["kto_labels"] == [BAD_QUESTION_LABEL]


@pytest.mark.parametrize(
    "entropy, reward",
    [(0.5, 1.0), (0.3, 0.0), (0.7, 0.0), (0.4, math.cos(math.pi / 4)), (0.1, -1.0), (0.95, -1.0),
     (0.0, -1.0), (None, -1.0)],
)
def test_zpd_bump_reward(entropy, reward):
    # d = |H̄ - 0.5| / 0.2; cos(pi d / 2) for d < 2
    assert zpd_bump_reward(entropy) == pytest.approx(reward, abs=1e-12)


def test_bump_generator_reward_in_an_episode():
    ep, _ = run(SPLIT, generator_reward="bump")  # H̄ = 0.375: d = 0.625
    assert ep.rewards["generator_0"] == pytest.approx(math.cos(math.pi * 0.625 / 2))


def test_generator_prompt_is_adapted_to_the_task_domain():
    env = SelfPlayReasoningEnv(AeroMode(), task=ArithmeticTask())
    env.reset(seed=0)
    system = env.observe("generator_0")["messages"][0]["content"]
    assert ArithmeticTask.DOMAIN in system and '"question"' in system
    assert env.mode.single_policy and len(env.possible_agents) == 1 + 16 + 1 + 2


@pytest.mark.parametrize(
    "options, match",
    [
        ({"num_solvers": 1}, "at least 2"),
        ({"mastery_threshold": 0.8}, "mastery_threshold < chaos_threshold"),
        ({"entropy_normalization": "log"}, "entropy_normalization"),
        ({"equivalence": "fuzzy"}, "equivalence"),
        ({"generator_reward": "smooth"}, "generator_reward"),
        ({"examples": "some"}, "examples"),
    ],
)
def test_bad_config_names_the_fix(options, match):
    with pytest.raises(ValueError, match=match):
        AeroConfig(**options)


# --- conformance and hostile text ----------------------------------------------------------------
def small_env() -> SelfPlayReasoningEnv:
    return SelfPlayReasoningEnv(AeroMode(AeroConfig(num_solvers=3)))


def test_api_test_passes_with_only_allowed_warnings():
    assert api_warnings(small_env, num_cycles=100) == []


def test_seed_test_passes():
    seed_test(small_env, num_cycles=50)


def test_hostile_text_never_breaks_an_episode():
    rng = np.random.default_rng(0)
    fragments = ["{", "}", '"', "\\boxed{", '{"same": [', '{"question": ']
    chars = np.array(list(SAMPLE_CHARSET) + fragments)
    for episode in range(50):
        config = AeroConfig(num_solvers=4, entropy_normalization="corrected",
                            equivalence=("llm", "math_verify", "exact")[episode % 3])
        env = SelfPlayReasoningEnv(AeroMode(config))
        env.reset(seed=episode)
        for agent in env.agent_iter(max_iter=50):
            _, reward, term, trunc, _ = env.last()
            assert math.isfinite(reward)
            if term or trunc:
                env.step(None)
                continue
            text = "".join(rng.choice(chars, size=int(rng.integers(0, 60))).tolist())
            if agent == "generator_0" and rng.random() < 0.7:
                text = json.dumps({"question": text or "?", "meta": text}) + text
            elif agent == "judge_0" and rng.random() < 0.5:
                text = json.dumps({"same": rng.integers(-1, 5, size=(2, 2)).tolist()})
            elif rng.random() < 0.7:
                text += B(int(rng.integers(0, 3)))
            env.step(text)
        assert not env.agents
        ep = env.episode
        assert all(math.isfinite(r) for r in ep.rewards.values())
        assert not any((t.error or "").startswith("parser error") for t in ep.turns)
        ep.to_json()

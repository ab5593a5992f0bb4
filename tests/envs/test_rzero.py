"""R-Zero: parsers, and the paper's reward formulas on episodes worked out by hand."""

from __future__ import annotations

import pytest

from selfplay_gym import SelfPlayReasoningEnv, SelfPlayVectorEnv
from selfplay_gym.agents.scripted import FunctionPolicy, MajorityJudge, ReferenceJudge
from selfplay_gym.envs.modes.rzero import parse_answer, parse_question
from selfplay_gym.envs.tasks import solve


@pytest.mark.parametrize(
    "text, valid, question, answer",
    [
        ("<question>37+48</question>\n\\boxed{85}", True, "37+48", "85"),
        ("think... <question>old</question> <question> 2*3 </question> \\boxed{6}", True, "2*3", "6"),
        ("<question>a</question>", True, "a", None),  # the code never uses the box
        ("\\boxed{6}", False, None, None),
        ("<question>unclosed \\boxed{6}", False, None, None),
        ("", False, None, None),
    ],
)
def test_parse_question(text, valid, question, answer):
    parsed = parse_question(text)
    assert parsed.valid is valid
    assert parsed.fields.get("question") == question
    assert parsed.fields.get("answer") == answer


def test_parse_question_box_required_is_the_paper_option():
    assert not parse_question("<question>a</question>", require_answer=True).valid
    assert parse_question("<question>a</question> \\boxed{1}", require_answer=True).valid


@pytest.mark.parametrize(
    "text, fallback, answer",
    [
        ("so \\boxed{12}", "none", "12"),
        ("first \\boxed{1} then \\boxed{\\frac{1}{2}}", "none", "\\frac{1}{2}"),
        ("the answer is 12", "none", None),
        ("the answer is 12", "last_number", "12"),
    ],
)
def test_parse_answer(text, fallback, answer):
    assert parse_answer(text, fallback).fields.get("answer") == answer


def episode_with(answers, judge="majority", num_solvers=None, **options):
    """One R-Zero episode with fixed question and answers; returns the Episode."""
    num_solvers = num_solvers or len(answers)
    venv = SelfPlayVectorEnv.make("rzero", num_envs=1, num_solvers=num_solvers, **options)
    policies = {
        "questioner": FunctionPolicy(lambda r: "<question>7*8</question> \\boxed{56}"),
        "solver": FunctionPolicy(lambda r: answers[int(r.agent.split("_")[1])]),
        "judge": MajorityJudge() if judge == "majority" else ReferenceJudge(solve),
    }
    return venv.rollout(policies, seed=0).episodes[0]


B = "\\boxed{{{}}}".format


def test_worked_example_half_agreement():
    # 10 answers: 5 x "56", 3 x "54", 1 x "57", 1 unparsable.
    # p̂ = 5/10 = 0.5 -> u = min(0.5, 0.5) = 0.5; single-episode batch: penalty |C|/B = 1/1.
    # Questioner: 0.5 - 1 = -0.5. Label = majority "56": its 5 solvers get 1, others 0.
    # The unparsable one votes as "None" (code), so both shares are 5/10.
    answers = [B(56)] * 5 + [B(54)] * 3 + [B(57), "I give up"]
    ep = episode_with(answers)
    assert ep.fields["agreement"] == 0.5
    assert ep.fields["valid_agreement"] == 0.5
    assert episode_with(answers, missing_answer="skip").fields["valid_agreement"] == pytest.approx(5 / 9)
    assert ep.fields["label"] == "56"
    assert ep.reward_terms["questioner_0"] == {"env": 0.5, "repetition": -1.0}
    assert ep.rewards["questioner_0"] == pytest.approx(-0.5)
    assert [ep.rewards[f"solver_{i}"] for i in range(10)] == [1.0] * 5 + [0.0] * 5


@pytest.mark.parametrize(
    "counts, scale, expected",
    [
        # p̂ = 8/10: code u = min(0.8, 0.2) = 0.2; paper 1 - 2|0.8 - 0.5| = 0.4
        ((8, 2), "code", 0.2),
        ((8, 2), "paper", 0.4),
        # p̂ = 3/10: code 0.3; paper 1 - 2 * 0.2 = 0.6
        ((3, 7), "code", 0.3),
        ((3, 7), "paper", 0.6),
        # unanimous: p̂ = 1 -> 0 on both scales: a question the Solver has mastered is worthless
        ((10, 0), "code", 0.0),
        ((10, 0), "paper", 0.0),
    ],
)
def test_uncertainty_reward_on_both_scales(counts, scale, expected):
    # `first` answers "56"; the rest form one cluster "55" (8/2) or all differ (3/7), so the
    # largest cluster, and p̂ = first / 10, is the "56" one.
    first, second = counts
    rest = [B(55)] * second if first > 5 else [B(60 + i) for i in range(second)]
    answers = [B(56)] * first + rest
    ep = episode_with(answers, uncertainty_scale=scale)
    assert ep.reward_terms["questioner_0"]["env"] == pytest.approx(expected)


def test_equivalent_answers_cluster_together():
    # "0.5", "\frac{1}{2}" and "1/2" are one answer: p̂ = 3/4 -> u = 0.25
    ep = episode_with([B("0.5"), B("\\frac{1}{2}"), B("1/2"), B(2)])
    assert ep.fields["agreement"] == 0.75
    assert ep.reward_terms["questioner_0"]["env"] == pytest.approx(0.25)


def test_reference_judge_labels_with_the_truth_not_the_majority():
    # majority says 54, truth (7*8) is 56: the reference judge pays the minority.
    ep = episode_with([B(54), B(54), B(56)], judge="reference")
    assert ep.fields["majority"] == "54" and ep.fields["label"] == "56"
    assert [ep.rewards[f"solver_{i}"] for i in range(3)] == [0.0, 0.0, 1.0]


def test_solver_format_penalty_option():
    ep = episode_with([B(56), "no box"], solver_format_penalty=-0.5)
    assert ep.rewards["solver_1"] == -0.5


def test_invalid_judge_label_pays_no_solver():
    venv = SelfPlayVectorEnv.make("rzero", num_envs=1, num_solvers=2)
    ep = venv.rollout({
        "questioner": FunctionPolicy(lambda r: "<question>1+1</question> \\boxed{2}"),
        "solver": FunctionPolicy(lambda r: B(2)),
        "judge": FunctionPolicy(lambda r: "hmm"),
    }).episodes[0]
    assert ep.fields["label"] is None
    assert ep.rewards["judge_0"] == -1.0
    assert ep.rewards["solver_0"] == ep.rewards["solver_1"] == 0.0


def test_repetition_penalty_counts_clusters_across_the_batch():
    # B = 4 episodes: three ask the identical question, one a different one.
    # Identical questions: BLEU 1 -> distance 0 -> one cluster of 3 -> penalty 3/4.
    # The odd one shares no token -> its own cluster -> 1/4.
    questions = ["what is 7 * 8 ?", "what is 7 * 8 ?", "what is 7 * 8 ?", "compute 12+30 now"]
    venv = SelfPlayVectorEnv.make("rzero", num_envs=4, num_solvers=2)
    asked = iter(questions)
    rollout = venv.rollout({
        "questioner": FunctionPolicy(lambda r: f"<question>{next(asked)}</question> \\boxed{{1}}"),
        "solver": FunctionPolicy(lambda r: B(1)),
        "judge": MajorityJudge(),
    })
    penalties = [ep.reward_terms["questioner_0"]["repetition"] for ep in rollout.episodes]
    assert penalties == [-0.75, -0.75, -0.75, -0.25]


@pytest.mark.parametrize(
    "answers, missing, keep",
    [
        ([B(1)] * 3 + [B(2)] * 7, "vote", True),  # valid agreement 0.7: inside [0.3, 0.8]
        ([B(1)] * 9 + [B(2)], "vote", False),  # 0.9: too easy
        ([B(i) for i in range(10)], "vote", False),  # 0.1: chaos
        ([B(1)] * 8 + ["x", "y"], "vote", True),  # boxless samples vote "None": 8/10 = 0.8
        ([B(1)] * 8 + ["x", "y"], "skip", False),  # left out: 8/8 valid agree, 1.0
        ([B(1)] * 3 + [B(2)] * 2 + [B(3)] * 5, "vote", True),  # 0.5
    ],
)
def test_consistency_band_filter(answers, missing, keep):
    ep = episode_with(answers, missing_answer=missing)
    env = SelfPlayReasoningEnv("rzero", missing_answer=missing)
    assert env.mode.keep_for_training("solver_0", ep) is keep
    assert env.mode.keep_for_training("questioner_0", ep) is True

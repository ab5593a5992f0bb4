"""R-Zero against its own code (Chengsong-Huang/R-Zero at 5699329): the worked examples of the
places where the code and a plain reading differ. Each test names the file and function it
follows; docs/modes/rzero.md tables the same rows."""

from __future__ import annotations

import pytest

from selfplay_gym import SelfPlayVectorEnv
from selfplay_gym.agents.scripted import FunctionPolicy, MajorityJudge
from selfplay_gym.envs.graders import GRADERS, get_grader, mathruler_grader
from selfplay_gym.envs.modes.rzero import hard_to_grade, parse_question, tighten_operators
from selfplay_gym.envs.verify import equivalent

B = "\\boxed{{{}}}".format


def rollout(questions, answers, **options):
    """One batch: episode i asks questions[i]; every Solver answers from ``answers``."""
    venv = SelfPlayVectorEnv.make("rzero", num_envs=len(questions), num_solvers=len(answers),
                                  **options)
    asked = iter(questions)
    return venv.rollout({
        "questioner": FunctionPolicy(lambda r: next(asked)),
        "solver": FunctionPolicy(lambda r: answers[int(r.agent.split("_")[1])]),
        "judge": MajorityJudge(),
    }, seed=0).episodes


def test_unparsable_challenger_output_is_a_singleton_bleu_cluster():
    # caller_penalty.py compute_score: an unparsable output enters cluster_share_per_problem as
    # "", which no question is within distance 0.5 of: B = 4, so it scores -1 - 1/4.
    questions = ["no tags at all", *[f"<question>q{i} differs {i}</question>" for i in range(3)]]
    episodes = rollout(questions, [B(1), B(2)])
    assert episodes[0].rewards["questioner_0"] == pytest.approx(-1.25)
    episodes = rollout(questions, [B(1), B(2)], invalid_in_repetition=False)
    assert episodes[0].rewards["questioner_0"] == -1.0


def test_question_block_without_a_box_is_valid():
    # caller_penalty.py compute_score: mathruler's extract_boxed_content returns the string
    # "None" without a box, which is truthy, so the output counts as a question.
    (episode,) = rollout(["<question>7*8</question> and no box"], [B(56), B(54)])
    assert episode.fields["question"] == "7*8"
    assert episode.rewards["questioner_0"] == pytest.approx(0.5 - 1.0)  # u(1/2) - 1/1
    (episode,) = rollout(["<question>7*8</question>"], [B(56)], require_boxed_question=True)
    assert episode.fields["question"] is None


def test_boxless_samples_vote_as_none():
    # start_vllm_server.py process_single + upload.py: five boxless samples, three 5, one 6,
    # one 7. The code: "None" is the majority, p̂ = 5/10 = 0.5, the label is dropped.
    answers = ["no box"] * 5 + [B(5)] * 3 + [B(6), B(7)]
    (episode,) = rollout(["<question>q</question>"], answers)
    assert episode.fields["agreement"] == 0.5 and episode.fields["majority"] is None
    mode = SelfPlayVectorEnv.make("rzero", num_envs=1).envs[0].mode
    assert not mode.keep_for_training("solver_0", episode)
    # missing_answer="skip": p̂ = 3/10 = 0.3, label "5" (3 of 5 valid = 0.6, inside the band).
    (episode,) = rollout(["<question>q</question>"], answers, missing_answer="skip")
    assert episode.fields["agreement"] == pytest.approx(0.3)
    assert episode.fields["label"] == "5"
    mode = SelfPlayVectorEnv.make("rzero", num_envs=1, missing_answer="skip").envs[0].mode
    assert mode.keep_for_training("solver_0", episode)


@pytest.mark.parametrize("a, b", [("56", "5 6"), ("１２", "12"),
                                  ("no solution", "There is no real root")])
def test_mathruler_grader_is_the_codes(a, b):
    # start_vllm_server.py process_single: equal, both contain "no ", or grade_answer either way.
    assert mathruler_grader(a, b) and mathruler_grader(b, a)
    assert not equivalent(a, b)


def test_the_grader_option_reaches_clusters_label_and_reward():
    # One grader everywhere: with "mathruler", "5 6" and "56" are one cluster of the judge and
    # of p̂, and both Solvers that wrote them earn the label's reward.
    answers = [B("56"), B("5 6"), B("7"), B("8")]
    (episode,) = rollout(["<question>q</question>"], answers, grader="mathruler")
    assert episode.fields["agreement"] == 0.5
    assert episode.fields["label"] == "56"
    assert [episode.rewards[f"solver_{i}"] for i in range(4)] == [1.0, 1.0, 0.0, 0.0]
    (episode,) = rollout(["<question>q</question>"], answers)
    assert episode.fields["agreement"] == 0.25


def test_unknown_grader_names_the_choices():
    with pytest.raises(ValueError, match="math_verify, mathruler, exact"):
        get_grader("sympy")


def test_spaced_slash_is_read_tight_in_the_solver_reward(monkeypatch):
    # math.py compute_score: re.sub(r"\s*(<|>|/)\s*", r"\1", predict) before grading. A
    # registered string-equality grader shows it: only the tightening makes "1 / 2" match.
    assert tighten_operators("1 / 2") == "1/2" and tighten_operators("x <  3") == "x<3"
    monkeypatch.setitem(GRADERS, "strict", lambda a, b: a == b)
    answers = [B("1/2"), B("1/2"), B("1 / 2"), B("3")]
    (episode,) = rollout(["<question>q</question>"], answers, grader="strict")
    assert episode.rewards["solver_2"] == 1.0
    (episode,) = rollout(["<question>q</question>"], answers, grader="strict",
                         original_filters=False)
    assert episode.rewards["solver_2"] == 0.0


@pytest.mark.parametrize("question, label, dropped", [
    ("Prove that 2 is prime. 证明", "2", True),
    ("Put it in a box: 1+1", "2", True),
    ("1+1", "\\text{two}", True),
    ("1+1", "2", False),
])
def test_hard_to_grade_questions_are_dropped(question, label, dropped):
    # question_evaluate/evaluate.py: "证明" or "box" in the question, "text" in the answer.
    assert hard_to_grade(question, label) is dropped


def test_repeated_and_nested_question_blocks():
    # caller_penalty.py compute_score: re.findall(r"<question>(.*?)</question>")[-1].
    assert parse_question("<question>a</question> <question>b</question>").fields["question"] == "b"
    nested = parse_question("<question>a <question>b</question> c</question>")
    assert nested.fields["question"] == "a <question>b"


def test_questioner_prompt_is_the_codes_for_any_task_but_the_embedded_one():
    # question_generate/question_generate.py: the Challenger's system and user prompts.
    from selfplay_gym.envs.modes.rzero import ORIGINAL_QUESTIONER_SYSTEM, RZeroConfig, RZeroMode
    from selfplay_gym.envs.tasks.arithmetic import ArithmeticTask

    mode = RZeroMode(RZeroConfig())
    system, user = mode.questioner_messages("competition mathematics")
    assert system["content"] == ORIGINAL_QUESTIONER_SYSTEM
    assert system["content"].startswith("You are an expert competition-math problem setter.")
    assert user["content"].startswith("Generate one new, challenging reasoning question now.")
    arithmetic, _ = mode.questioner_messages(ArithmeticTask.DOMAIN)
    assert ArithmeticTask.DOMAIN in arithmetic["content"]
    original, _ = RZeroMode(RZeroConfig(questioner_prompt="original")).questioner_messages(
        ArithmeticTask.DOMAIN)
    assert original["content"] == ORIGINAL_QUESTIONER_SYSTEM

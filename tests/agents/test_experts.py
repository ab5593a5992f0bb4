"""Scripted experts: every turn they write in AERO, DARC (both stages) and ALIVE is valid, and
the rewards of their episodes are the ones the modes' docstrings give for correct play."""

from __future__ import annotations

import numpy as np
import pytest

from selfplay_gym import SelfPlayVectorEnv
from selfplay_gym.agents.experts import (
    Constructor,
    expression_in,
    mode_experts,
    story_expression,
)
from selfplay_gym.envs import registry
from selfplay_gym.envs.curriculum import CurriculumTask, DocumentPrompts, build_curriculum
from selfplay_gym.envs.modes.alive import parse_mask
from selfplay_gym.envs.modes.darc import difficulty_reward
from selfplay_gym.envs.tasks import ArithmeticTask, WordProblemCorpus, make_document, solve
from selfplay_gym.envs.verify import extract_answer

PROBLEMS = ArithmeticTask((1, 2)).problems(40, seed=0)
N = 16


def play(mode: str, stage: int = 1, seed: int = 0, **env_kwargs):
    experts = mode_experts(mode, problems=PROBLEMS, seed=seed, stage=stage)
    if mode == "darc":
        env_kwargs["stage"] = stage
    venv = SelfPlayVectorEnv.make(mode, N, **env_kwargs)
    assert set(venv.roles) <= set(experts)
    return venv.rollout(experts, seed=seed).episodes


def assert_all_valid(episodes) -> None:
    bad = [(t.agent, t.text, t.error) for ep in episodes for t in ep.turns if not t.valid]
    assert not bad, bad[:3]


def test_aero_episodes_are_valid_and_icc_converges_on_the_truth():
    episodes = play("aero", num_solvers=8, equivalence="llm")
    assert_all_valid(episodes)
    assert any(ep.turns_of("judge") for ep in episodes)
    converged = [ep for ep in episodes if ep.fields.get("converged")]
    assert converged
    for ep in converged:
        truth = solve(ep.fields["question"])
        assert ep.fields["pseudo_label"] == truth  # correct refiners make a* the true answer
        assert ep.rewards["refiner_0"] == ep.rewards["refiner_1"] == 1.0
        for i, answer in enumerate(ep.fields["answers"]):
            assert ep.rewards[f"solver_{i}"] == (1.0 if answer == truth else -1.0)
        assert ep.rewards["generator_0"] == 1.0  # ICC runs in the ZPD only


@pytest.mark.parametrize("answer_type", ["integer", "float", "categorical", "boolean"])
def test_darc_stage1_questions_are_valid_and_rewarded_by_solve_rate(answer_type):
    episodes = play("darc", num_solvers=4, answer_type=answer_type, relatedness_judge=True,
                    ranking_weight=0.0)
    assert_all_valid(episodes)
    for ep in episodes:
        assert ep.fields["status"] == "ok", ep.fields
        assert ep.fields["related"] is True
        assert all(ep.fields["doc_correct"])  # the solver with the document is right
        s, d = ep.fields["solve_rate"], ep.task["difficulty"]
        assert ep.rewards["questioner_0"] == pytest.approx(difficulty_reward(s, d))
        for i, ok in enumerate(ep.fields["correct"]):
            assert ep.rewards[f"student_{i}"] == float(ok)


def test_darc_stage1_question_uses_the_documents_numbers_one_step_per_level():
    task = DocumentPrompts(WordProblemCorpus(), samples_per_prompt=1)
    episodes = play("darc", num_solvers=2, task=task)
    assert_all_valid(episodes)
    for ep in episodes:
        expression = expression_in(ep.fields["question"])
        numbers = expression.replace("-", "+").split("+")
        assert len(numbers) == ep.task["difficulty"] + 1
        assert all(n in ep.task["document"] for n in numbers)
        assert ep.fields["gold"] == solve(expression)


def test_darc_stage2_teachers_label_truly_and_students_earn_the_distill_reward():
    stage1 = play("darc", num_solvers=4)
    curriculum = CurriculumTask(build_curriculum(stage1))
    episodes = play("darc", stage=2, num_samples=4, curriculum=curriculum)
    assert_all_valid(episodes)
    for ep in episodes:
        truth = solve(expression_in(ep.task["question"]))
        assert ep.fields["label"] == truth and ep.fields["vote_fraction"] == 1.0
        for i, answer in enumerate(ep.fields["answers"]):
            assert ep.rewards[f"student_{i}"] == pytest.approx(0.95 * (answer == truth) + 0.05)


def test_alive_episodes_are_valid_and_reviews_always_agree_with_the_span():
    episodes = play("alive", num_solvers=4, revise=True)
    assert_all_valid(episodes)
    for ep in episodes:
        n = len(ep.fields["answers"])
        assert ep.fields["reviewer_accuracy"] == 1.0 and ep.fields["critique_leaks"] == 0
        assert [ep.rewards[f"reviewer_{i}"] for i in range(n)] == [1.0] * n
        p = ep.fields["pass_rate"]
        assert ep.rewards["constructor_0"] == pytest.approx(1 - p if p > 0 else 0.0)
        for i, ok in enumerate(ep.fields["correct"]):  # the verdict is the solver's reward
            assert ep.rewards[f"solver_{i}"] == float(ok)
            if ok:  # an answer judged correct is kept
                assert ep.fields["revised_correct"][i]
    assert any(ep.fields["wrong_first"] for ep in episodes)


def test_constructor_masks_a_recoverable_number_of_a_story():
    rng = np.random.default_rng(3)
    constructor = Constructor(seed=0)
    for _ in range(20):
        passage = make_document(rng)
        masked, span = constructor.mask(passage)
        assert parse_mask(f"<masked>{masked}</masked><answer>{span}</answer>", passage).valid
        assert solve(story_expression(masked)) == span
    masked, span = constructor.mask("No numbers here at all")
    assert (masked, span) == ("No numbers here at [MASK]", "all")


def test_experts_are_seeded_and_reseedable():
    first = [t.text for ep in play("alive", num_solvers=2) for t in ep.turns]
    assert first == [t.text for ep in play("alive", num_solvers=2) for t in ep.turns]
    experts = mode_experts("aero", problems=PROBLEMS, seed=0)
    venv = SelfPlayVectorEnv.make("aero", 4, num_solvers=4)

    def reseeded_texts(seed: int) -> list[str]:
        for expert in experts.values():
            if hasattr(expert, "reseed"):
                expert.reseed(seed)
        return [t.text for ep in venv.rollout(experts, seed=0).episodes for t in ep.turns]

    assert reseeded_texts(7) == reseeded_texts(7) != reseeded_texts(8)


def test_every_role_of_every_mode_has_an_expert():
    for mode in ("rzero", "aero", "alive"):
        assert set(registry.mode_class(mode).roles) <= set(mode_experts(mode, problems=PROBLEMS))
    assert set(mode_experts("darc", problems=PROBLEMS)) == {"questioner", "solver", "student",
                                                              "judge"}
    assert set(mode_experts("darc", problems=PROBLEMS, stage=2)) == {"teacher", "student"}
    episodes = play("rzero", num_solvers=4)
    assert_all_valid(episodes)
    assert all(extract_answer(t.text) for ep in episodes for t in ep.turns_of("solver"))
    with pytest.raises(ValueError, match="no experts"):
        mode_experts("chess", problems=PROBLEMS)
    with pytest.raises(ValueError, match="stage"):
        mode_experts("darc", problems=PROBLEMS, stage=3)

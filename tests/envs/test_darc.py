"""DARC: parsers, answer checks, both stages' rewards worked out by hand, the curriculum, and
PettingZoo conformance for both stages."""

from __future__ import annotations

import json
import math
import pickle
import re
from dataclasses import dataclass

import numpy as np
import pytest
from pettingzoo.test import seed_test

from selfplay_gym import Episode, SelfPlayReasoningEnv, SelfPlayVectorEnv
from selfplay_gym.agents.scripted import FunctionPolicy
from selfplay_gym.envs.conformance import api_warnings
from selfplay_gym.envs.curriculum import (
    QUESTION_KEYS,
    CurriculumItem,
    CurriculumTask,
    DocumentPrompts,
    boxed_format,
    build_curriculum,
    canonical_gold,
    char_ngram_jaccard,
    copy_ratio,
    has_options,
    load_curriculum,
    normalize_choice,
    parse_boxed,
    parse_question_json,
    parse_verdict,
    save_curriculum,
)
from selfplay_gym.envs.modes.darc import (
    DarcConfig,
    DarcMode,
    difficulty_reward,
    distill_reward,
    ranking_penalties,
    solve_rate,
)
from selfplay_gym.envs.tasks import TaskItem, WordProblemCorpus

DOC = "Ana has 34 apples. Ben has 50 apples. Together they have 84 apples."
B = "\\boxed{{{}}}".format
HALF = "\\frac{1}{2}"
MCQ = "How many apples does Ben have?\nA. 34\nB. 50\nC. 84"


def question_json(question: str = "What is six times seven?", **extra) -> str:
    payload = dict.fromkeys(sorted(QUESTION_KEYS), "x") | {"question": question, "answer": 42}
    return json.dumps(payload | extra)


@dataclass
class FixedDoc:
    """A TaskSource that always hands out DOC at one difficulty."""

    difficulty: int = 1
    document: str = DOC
    name: str = "fixed"

    def sample(self, rng):
        return TaskItem("fixed", "stories", difficulty=self.difficulty, document=self.document)


def agent_index(request) -> int:
    return int(request.agent.rsplit("_", 1)[1])


def stage1(students, question=None, solver="\\boxed{42}", judge=None, difficulty=1, **cfg):
    """One stage-1 Episode: every with-document solver says ``solver``, student i students[i]."""
    config = DarcConfig(num_solvers=len(students), relatedness_judge=judge is not None, **cfg)
    venv = SelfPlayVectorEnv(
        [lambda: SelfPlayReasoningEnv(DarcMode(config), task=FixedDoc(difficulty))])
    policies = {
        "questioner": FunctionPolicy(lambda r: question or question_json()),
        "solver": FunctionPolicy(lambda r: solver),
        "student": FunctionPolicy(lambda r: students[agent_index(r)]),
        "judge": FunctionPolicy(lambda r: judge),
    }
    return venv.rollout(policies, seed=0).episodes[0]


def right(k: int, m: int = 10) -> list[str]:
    """k of m students answer 42 (with some text), the rest 41."""
    return [f"so {B(42)}" if i < k else f"so {B(41)}" for i in range(m)]


def curriculum(*questions: str, answer_type: str = "integer") -> CurriculumTask:
    return CurriculumTask([
        CurriculumItem(f"c{i}", "stories", difficulty=1, document=DOC, question=q,
                       answer_type=answer_type)
        for i, q in enumerate(questions)
    ])


def stage2(teachers, students, **cfg) -> tuple[Episode, DarcMode]:
    config = DarcConfig(stage=2, num_samples=len(teachers), **cfg)
    env = SelfPlayReasoningEnv(DarcMode(config), task=curriculum("What is six times seven?"))
    venv = SelfPlayVectorEnv([lambda: env])
    ep = venv.rollout({
        "teacher": FunctionPolicy(lambda r: teachers[agent_index(r)]),
        "student": FunctionPolicy(lambda r: students[agent_index(r)]),
    }, seed=0).episodes[0]
    return ep, env.mode


# --- parsers and answer checks -----------------------------------------------------------------
@pytest.mark.parametrize(
    "text, strict, answer_type, valid, error",
    [
        (question_json(), True, "", True, None),
        (f"```json\n{question_json()}\n```", True, "", True, None),
        (f"assistant: {question_json()}", True, "", True, None),
        (question_json(extra_key=1), True, "", False, "wrong JSON keys: ['extra_key']"),
        (question_json(extra_key=1), False, "", True, None),
        (json.dumps({"question": "q?", "answer": 1}), True, "", False, "wrong JSON keys"),
        (json.dumps({"question": "q?", "answer": 1}), False, "", True, None),
        (json.dumps({"answer": 1}), False, "", False, "wrong JSON keys"),
        (f"Here you go: {question_json()}", True, "", False, "not a single JSON object"),
        ("{'question': 'single quotes'}", True, "", False, "invalid JSON"),
        ("{" + "[" * 100_000 + "}", True, "", False, "invalid JSON"),
        (question_json(question="   "), True, "", False, "non-empty string"),
        (question_json(question=["a list"]), True, "", False, "non-empty string"),
        (question_json(question=MCQ), True, "categorical", True, None),
        (question_json(question="Which?\nA. 1\nB. 2"), True, "categorical", False, "fewer than 3"),
        (question_json(question="Which? A. 1 B. 2 C. 3"), True, "categorical", False, "fewer"),
    ],
)
def test_parse_question_json(text, strict, answer_type, valid, error):
    parsed = parse_question_json(text, strict, answer_type)
    assert parsed.valid is valid
    assert (parsed.error is None) if error is None else error in parsed.error
    if valid:
        assert parsed.fields["question"].strip() == parsed.fields["question"]


@pytest.mark.parametrize(
    "text, answer, fmt",
    [
        (f"6*7 = 42, so {B(42)}", "42", True),
        (B(42), "42", False),  # fmt needs some text outside the box
        (f"  {B(42)}\n ", "42", False),
        ("so " + B(HALF), HALF, True),  # nested braces are one box
        (B(HALF), HALF, False),
        ("the answer is 42", None, False),
        ("so \\boxed{42", None, False),
        (f"so {B('')}", None, True),  # an empty box still counts for fmt, as in DARC's regex
    ],
)
def test_parse_boxed_and_format(text, answer, fmt):
    parsed = parse_boxed(text)
    assert parsed.fields == {"answer": answer, "format": fmt}
    assert boxed_format(text) is fmt


@pytest.mark.parametrize(
    "text, valid, related",
    [("Yes.", True, True), ("no", True, False), ("NO, unrelated", True, False),
     ("yes and no", True, True), ("no, yes", True, False), ("I know", False, None),
     ("", False, None)],
)
def test_parse_verdict(text, valid, related):
    parsed = parse_verdict(text)
    assert (parsed.valid, parsed.fields["related"]) == (valid, related)


@pytest.mark.parametrize(
    "answer, answer_type, gold",
    [
        ("42", "integer", "42"), ("-7", "integer", "-7"), ("4.5", "integer", None),
        ("42 apples", "integer", None), ("4.5", "float", "4.5"), ("4", "float", None),
        ("(b)", "categorical", "B"), ("\\text{C}", "categorical", "C"), ("B.", "categorical", "B"),
        ("A or B", "categorical", None), ("True", "boolean", "true"), ("maybe", "boolean", None),
        ("x+1", "expression", "x+1"), ("x", "expression", None),
        ("red apple", "string", "red apple"),
        ("four big red apples", "string", None), ("", "integer", None), (None, "integer", None),
    ],
)
def test_answer_type_validators(answer, answer_type, gold):
    assert canonical_gold(answer, answer_type) == gold


def test_option_letters():
    assert has_options(MCQ) and has_options("Q?\\nA) 1\\nB) 2\\nC) 3")  # escaped newlines too
    assert not has_options("Q?\nA. 1\nA. 2\nB. 3")  # 2 distinct letters
    assert normalize_choice("Option D") == "D" and normalize_choice("none") is None


@pytest.mark.parametrize(
    "question, document, ratio",
    [
        ("Ana has 34 apples", DOC, 1.0),  # substring after normalisation
        ("ANA has 34 apples!", DOC, 1.0),  # case and punctuation are ignored
        # "abcdefgh" has 6-grams abcdef, bcdefg, cdefgh; the document holds the first two: 2/3
        ("abcdefgh", "xx abcdefg zz", 2 / 3),
        # shorter than 6 characters without spaces: word overlap, "ab" yes, "cd" no: 1/2
        ("ab cd", "ab xx", 0.5),
        ("What is six times seven?", DOC, 0.0),
        ("", DOC, 0.0),
    ],
)
def test_copy_ratio(question, document, ratio):
    assert copy_ratio(question, document) == pytest.approx(ratio)


# --- stage 1 rewards ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "s, d, reward",
    [(0.8, 1, 1.0), (0.5, 1, 0.7), (0.5, 2, 1.0), (0.2, 3, 1.0), (1.0, 3, 0.2), (0.3, 2, 0.8),
     (0.0, 2, -0.1), (None, 1, -1.0), (-1.0, 1, -1.0), (0.5, 4, -1.0)],
)
def test_difficulty_reward(s, d, reward):
    # r = 1 - |s - tau_d|, tau = (0.8, 0.5, 0.2); s = 0 -> -0.1; invalid -> -1
    assert difficulty_reward(s, d) == pytest.approx(reward)


def test_solve_rate_counts_unboxed_answers_in_m():
    # 3 of 4 usable answers are right, one has no box (None): s = 3/4, as DARC's server counts
    assert solve_rate(["42", "42", "42", None], [True, True, True, False]) == 0.75
    assert solve_rate([None, "None", ""], [False, False, False]) is None


@pytest.mark.parametrize(
    "students, difficulty, s, reward",
    [
        (right(8), 1, 0.8, 1.0),  # on target: 1 - |0.8 - 0.8|
        (right(5), 1, 0.5, 0.7),  # 1 - |0.5 - 0.8|
        (right(2), 3, 0.2, 1.0),
        (right(0), 2, 0.0, -0.1),  # nobody without the document solves it
        (right(5, 9) + ["I give up"], 1, 0.5, 0.7),  # unboxed answer counts in m: 5/10
        (["no idea"] * 10, 1, None, -1.0),  # no usable answer at all: invalid
    ],
)
def test_questioner_reward_on_whole_episodes(students, difficulty, s, reward):
    ep = stage1(students, difficulty=difficulty)
    assert ep.fields["gold"] == "42" and ep.fields["solve_rate"] == s
    assert ep.rewards["questioner_0"] == pytest.approx(reward)
    assert ep.reward_terms["questioner_0"]["env"] == pytest.approx(reward)


@pytest.mark.parametrize(
    "kwargs, status",
    [
        ({"question": "not json"}, None),  # invalid question: the episode ends at once
        ({"question": question_json(question=DOC[:40])}, "copied"),  # copied from the document
        ({"solver": "no box"}, "no_gold"),
        ({"solver": B(4.5)}, "no_gold"),  # gold fails the integer validator
        ({"judge": "No."}, "unrelated"),
        ({"question": question_json(question="Which?\nA. 1\nB. 2"), "answer_type": "categorical"},
         None),
    ],
)
def test_invalid_questions_earn_minus_one(kwargs, status):
    ep = stage1(right(5), **kwargs)
    assert ep.fields.get("status") == status
    assert ep.rewards["questioner_0"] == -1.0


def test_solvers_students_and_judge_rewards():
    ep = stage1(right(5, 4), judge="yes")
    assert [ep.rewards[f"student_{i}"] for i in range(4)] == [1.0] * 4
    assert [ep.rewards[f"solver_{i}"] for i in range(4)] == [1.0] * 4
    assert ep.rewards["judge_0"] == 0.0 and ep.fields["related"] is True
    assert stage1(right(2, 4), judge="maybe").rewards["judge_0"] == -1.0


def test_categorical_gold_is_normalised_to_a_letter():
    ep = stage1(["so (b)", "\\boxed{B}", "x \\boxed{\\text{B}}", "x \\boxed{A}"],
                question=question_json(question=MCQ), solver="\\boxed{(B)}",
                answer_type="categorical")
    # gold "(B)" -> "B"; "(b)" has no box (None), the others B, B, A: s = 2/4 -> 1 - |0.5 - 0.8|
    assert ep.fields["gold"] == "B" and ep.fields["solve_rate"] == 0.5
    assert ep.rewards["questioner_0"] == pytest.approx(0.7)
    prompt = SelfPlayReasoningEnv(DarcMode(DarcConfig(answer_type="categorical")), task=FixedDoc())
    prompt.reset(seed=0)
    prompt.step(question_json(question=MCQ))
    assert prompt.observe("student_0")["messages"][-1]["content"].endswith("one correct answer.")


# --- ranking penalty ---------------------------------------------------------------------------
def test_ranking_penalty_by_hand():
    # One document, three questions (d, s, r = 1 - |s - tau_d|):
    #   d=1 s=0.5 r=0.7 | d=2 s=0.6 r=0.9 | d=3 s=0.5 r=0.7
    # (1,2): pen = max(0, 0.6 + 0.2 - 0.5) = 0.3 -> both lose 0.15: 0.55, 0.75
    # (2,3): pen = max(0, 0.5 + 0.2 - 0.6) = 0.1 -> both lose 0.05: 0.70, 0.65
    items = [("doc", 2, 0.6, 0.9), ("doc", 1, 0.5, 0.7), ("doc", 3, 0.5, 0.7)]
    assert ranking_penalties(items) == pytest.approx([-0.20, -0.15, -0.05])


def test_ranking_penalty_floors_the_reward_and_skips_what_it_should():
    # d=1 s=0.1 r=0.3, d=2 s=0.9 r=0.6: pen = 0.9 + 0.2 - 0.1 = 1.0 -> minus 0.5 each,
    # floored at 0: 0.3 -> 0 (change -0.3), 0.6 -> 0.1 (change -0.5)
    pair = [("a", 1, 0.1, 0.3), ("a", 2, 0.9, 0.6)]
    assert ranking_penalties(pair) == pytest.approx([-0.3, -0.5])
    # equal difficulties are not ranked; other documents and ineligible items are untouched
    items = [("a", 1, 0.1, 0.3), ("a", 1, 0.9, 0.9), ("b", 2, 0.9, 0.6), None]
    assert ranking_penalties(items) == [0.0, 0.0, 0.0, 0.0]
    # well ordered: s_low - s_high >= margin -> no penalty
    assert ranking_penalties([("a", 1, 0.8, 1.0), ("a", 3, 0.2, 1.0)]) == [0.0, 0.0]


def test_ranking_penalty_in_a_vector_env_with_document_prompts():
    # One shared DocumentPrompts: env i gets the same document at difficulty i + 1. Students
    # solve k of 10, with k written into the question: s = 0.5, 0.6, 0.5 as in the hand case.
    task = DocumentPrompts(FixedDoc(), samples_per_prompt=1)
    venv = SelfPlayVectorEnv([lambda: SelfPlayReasoningEnv(DarcMode(), task=task)] * 3)
    k = {"e0": 5, "e1": 6, "e2": 5}

    def student(request):
        wanted = int(re.search(r"\[k=(\d+)\]", request.messages[-1]["content"]).group(1))
        return right(wanted)[agent_index(request)]

    def questioner(request):
        return question_json(question=f"Six times seven? [k={k[request.info['episode_id'][-2:]]}]")

    rollout = venv.rollout({
        "questioner": FunctionPolicy(questioner),
        "solver": FunctionPolicy(lambda r: B(42)),
        "student": FunctionPolicy(student),
    }, seed=0)
    assert [ep.task["difficulty"] for ep in rollout.episodes] == [1, 2, 3]
    terms = [ep.reward_terms["questioner_0"]["ranking"] for ep in rollout.episodes]
    assert terms == pytest.approx([-0.15, -0.20, -0.05])
    rewards = [ep.rewards["questioner_0"] for ep in rollout.episodes]
    assert rewards == pytest.approx([0.55, 0.7, 0.65])


# --- stage 2 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, label, reward",
    [
        (f"6*7 is {B(42)}", "42", 1.0),  # 0.95 * 1 + 0.05 * 1
        (f"so {B(41)}", "42", 0.05),  # formatted but wrong: 0.05 * 1
        (B(42), "42", 0.0),  # right but no text outside the box: fmt = 0 -> 0
        ("42", "42", 0.0),
        (f"so {B('None')}", "42", 0.05),
        (f"so {B(42)}", None, 0.05),  # no teacher label: acc = 0
        (f"so {B('42.0')}", "42", 1.0),  # equivalence, not string match
    ],
)
def test_distill_reward(text, label, reward):
    parsed = parse_boxed(text)
    answer, fmt = parsed.fields["answer"], parsed.fields["format"]
    assert distill_reward(answer, fmt, label) == pytest.approx(reward)


def test_stage2_episode_label_vote_and_student_rewards():
    # teachers: 5 x 42, 3 x 41 -> label 42, v = 5/8 = 0.625
    teachers = [B(42)] * 5 + [B(41)] * 3
    students = [f"so {B(42)}", B(42), f"so {B(41)}", "no box"] * 2
    ep, mode = stage2(teachers, students)
    assert (ep.fields["label"], ep.fields["vote_fraction"]) == ("42", 0.625)
    assert [ep.rewards[f"student_{i}"] for i in range(4)] == [1.0, 0.0, 0.05, 0.0]
    assert all(ep.rewards[f"teacher_{i}"] == 0.0 for i in range(8))
    assert mode.keep_for_training("student_0", ep) and not mode.keep_for_training("teacher_0", ep)
    assert ep.group_ids["student_0"] == ep.group_ids["student_7"] == f"student:{ep.episode_id}"


@pytest.mark.parametrize(
    "teachers, label, v, keep",
    [
        ([B(7)] * 3 + [B(i) for i in range(10, 15)], "7", 3 / 8, True),  # 3/8 >= 0.3
        ([B(7)] * 2 + [B(i) for i in range(10, 16)], "7", 2 / 8, False),  # 0.25 < 0.3: dropped
        ([B(8), B(7), B(7), B(8)] + ["x"] * 4, "8", 2 / 8, False),  # tie -> first seen
        ([B("None")] * 6 + [B(7)] * 2, "7", 2 / 8, False),  # "None" is never a label
        (["no box"] * 8, None, 0.0, False),
    ],
)
def test_teacher_vote_and_confidence_filter(teachers, label, v, keep):
    ep, mode = stage2(teachers, [f"so {B(7)}"] * 8)
    assert (ep.fields["label"], ep.fields["vote_fraction"]) == (label, v)
    assert mode.keep_for_training("student_3", ep) is keep


def test_stage2_observations_and_roles():
    env = SelfPlayReasoningEnv(DarcMode(DarcConfig(stage=2, num_samples=2)),
                               task=curriculum("Q1?", "Q2?"))
    assert env.possible_agents == ["teacher_0", "teacher_1", "student_0", "student_1"]
    assert env.mode.roles == ("teacher", "student")
    env.reset(seed=0)
    assert env.phase_agents() == tuple(env.possible_agents)
    teacher = env.observe("teacher_0")["messages"][-1]["content"]
    student = env.observe("student_0")["messages"][-1]["content"]
    assert DOC in teacher and teacher.endswith("Question: Q1?") and student == "Q1?"
    assert env.infos["student_0"]["question"] == "Q1?"


# --- stage 1 observations, grouping, configuration ---------------------------------------------
def test_stage1_observations_and_groups():
    env = SelfPlayReasoningEnv(DarcMode(DarcConfig(num_solvers=2)), task=FixedDoc(difficulty=3))
    assert env.possible_agents == ["questioner_0", "solver_0", "solver_1", "student_0", "student_1"]
    env.reset(seed=0)
    prompt = env.observe("questioner_0")["messages"][0]["content"]
    for needle in (DOC, "difficulty_id: 3", "Hard: uses 3+ distant spans", "answer_type: integer",
                   'Never mention "the document"', '"potential_errors"'):
        assert needle in prompt
    example = prompt[prompt.index("{\n"):]
    assert set(json.loads(example)) == QUESTION_KEYS
    group = env.infos["questioner_0"]["group_id"]
    env.step(question_json())
    assert env.phase_agents() == ("solver_0", "solver_1", "student_0", "student_1")
    assert DOC in env.observe("solver_0")["messages"][-1]["content"]
    assert env.observe("student_0")["messages"][-1]["content"] == "What is six times seven?"
    assert env.infos["solver_1"]["group_id"] == f"solver:{env.episode.episode_id}"
    other = SelfPlayReasoningEnv(DarcMode(DarcConfig(num_solvers=2)), task=FixedDoc(difficulty=3))
    other.reset(seed=5)
    assert other.infos["questioner_0"]["group_id"] == group  # same prompt, same GRPO group


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"stage": 3}, ValueError, "stage must be 1"),
        ({"answer_type": "date"}, ValueError, "answer_type must be one of"),
        ({"target_accuracy": (0.8, 0.5)}, ValueError, "3 values"),
        ({"curriculum": ["Q?"]}, TypeError, "CurriculumTask"),
        ({"stage": 2}, ValueError, "pass curriculum="),
        ({"num_solvers": 0}, ValueError, "at least 1"),
    ],
)
def test_misconfiguration_names_the_fix(kwargs, error, match):
    with pytest.raises(error, match=match):
        SelfPlayReasoningEnv(DarcMode(DarcConfig(**kwargs)))


def test_misused_tasks_name_the_fix():
    with pytest.raises(ValueError, match="must carry a question"):
        SelfPlayReasoningEnv(DarcMode(DarcConfig(stage=2)), task=FixedDoc()).reset(seed=0)
    with pytest.raises(ValueError, match="difficulty in"):
        SelfPlayReasoningEnv(DarcMode(), task=FixedDoc(difficulty=5)).reset(seed=0)


# --- curriculum --------------------------------------------------------------------------------
def finished(question, difficulty, s, status="ok", answer_type="integer", doc=DOC) -> Episode:
    return Episode("darc", f"e-{question[:12]}-{difficulty}", task={
        "task_id": "t", "domain": "stories", "difficulty": difficulty, "document": doc},
        fields={"question": question, "solve_rate": s, "status": status,
                "answer_type": answer_type})


def test_build_curriculum_orders_filters_and_dedups():
    episodes = [
        finished("How many apples do Ana and Ben have together?", 2, 0.5),
        finished("How many apples does Ana have?", 1, 0.6),
        finished("How many more apples than Ana does Ben have?", 1, 0.9),
        finished("How many apples do Ana and Ben have together??", 3, 0.2),  # near-duplicate
        finished("Who has the most apples?", 1, None, status="copied"),
        finished("Which is larger?\nA. 1\nB. 2", 2, 0.4, answer_type="categorical"),  # 2 options
    ]
    items = build_curriculum(episodes)
    # easy -> hard; within d=1, s descending; the d=3 near-copy of the d=2 question is dropped
    assert [(it.difficulty, it.solve_rate) for it in items] == [(1, 0.9), (1, 0.6), (2, 0.5)]
    assert items[0].question == "How many more apples than Ana does Ben have?"
    assert all(it.document == DOC and it.answer_type == "integer" for it in items)
    lenient = build_curriculum(episodes, strict=False, threshold=1.01)
    assert [it.difficulty for it in lenient] == [1, 1, 1, 2, 3]  # "copied" kept, 2-option MCQ not


def test_char_ngram_jaccard_by_hand():
    # 3-grams: "abcd" -> {abc, bcd}; "abce" -> {abc, bce}: 1 shared of 3
    assert char_ngram_jaccard("abcd", "abce") == pytest.approx(1 / 3)
    assert char_ngram_jaccard("Same text!", "same   TEXT") == 1.0


def test_curriculum_task_serves_in_order_and_shares_its_cursor(tmp_path):
    task = curriculum("Q0?", "Q1?", "Q2?")
    rng = np.random.default_rng(0)
    assert [task.sample(rng).question for _ in range(4)] == ["Q0?", "Q1?", "Q2?", "Q0?"]
    save_curriculum(task.items, tmp_path / "c.jsonl")
    assert load_curriculum(tmp_path / "c.jsonl") == list(task.items)
    shared = CurriculumTask(task.items)
    config = DarcConfig(stage=2, num_samples=1, curriculum=shared)  # one cursor for both envs
    venv = SelfPlayVectorEnv([lambda: SelfPlayReasoningEnv(DarcMode(config))] * 2)
    box = FunctionPolicy(lambda r: f"so {B(1)}")
    first = [ep.task["question"] for ep in venv.rollout({"teacher": box, "student": box}).episodes]
    second = [ep.task["question"] for ep in venv.rollout({"teacher": box, "student": box}).episodes]
    assert (first, second) == (["Q0?", "Q1?"], ["Q2?", "Q0?"])
    with pytest.raises(ValueError, match="needs items"):
        CurriculumTask([])


def test_document_prompts_expand_each_document():
    task = DocumentPrompts(WordProblemCorpus(), difficulties=(1, 2, 3), samples_per_prompt=2)
    rng = np.random.default_rng(0)
    items = [task.sample(rng) for _ in range(7)]
    assert [it.difficulty for it in items] == [1, 1, 2, 2, 3, 3, 1]
    assert len({it.document for it in items[:6]}) == 1 and items[6].document != items[0].document


# --- PettingZoo conformance and hostile text ---------------------------------------------------
STAGES = {
    "stage1": lambda: SelfPlayReasoningEnv(
        DarcMode(DarcConfig(num_solvers=3, relatedness_judge=True))),
    "stage2": lambda: SelfPlayReasoningEnv(
        DarcMode(DarcConfig(stage=2, num_samples=3, curriculum=curriculum("Q0?", "Q1?")))),
}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_api_test_passes_with_only_allowed_warnings(stage):
    assert api_warnings(STAGES[stage], num_cycles=50) == []


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_seed_test_and_pickling(stage):
    seed_test(STAGES[stage], num_cycles=30)
    env = STAGES[stage]()
    env.reset(seed=3)
    env.step(question_json() if stage == "stage1" else B(1))
    clone = pickle.loads(pickle.dumps(env))
    assert clone.observe(clone.agent_selection) == env.observe(env.agent_selection)


FRAGMENTS = ["{", "}", '"question": ', '"?"', ",", "```json", "```", "\\boxed{", "\\boxed{}",
             "42", "None", "yes", "no", "A. ", "\n", "中文", "\x00", "[" * 50, "9" * 400]


def test_hostile_text_never_breaks_an_episode():
    rng = np.random.default_rng(0)
    chars = np.array(list("abc {}[]\":,\\\n0123456789"))
    for episode in range(50):
        env = STAGES["stage1" if episode % 2 else "stage2"]()
        env.reset(seed=episode)
        opened = episode % 4 == 1  # some stage-1 episodes open with a valid question
        for agent in env.agent_iter(max_iter=100):
            _, reward, term, trunc, _ = env.last()
            assert math.isfinite(reward)
            if term or trunc:
                env.step(None)
                continue
            pieces = rng.choice(FRAGMENTS, size=int(rng.integers(0, 8))).tolist()
            text = "".join(pieces) + "".join(rng.choice(chars, size=int(rng.integers(0, 30))))
            env.step(question_json() if opened and agent == "questioner_0" else text)
        assert not env.agents
        assert all(math.isfinite(r) for r in env.episode.rewards.values())
        assert not any((t.error or "").startswith("parser error") for t in env.episode.turns)
        env.episode.to_json()


def test_next_stage_options_carry_stage_one_questions_into_a_curriculum():
    from selfplay_gym.agents.experts import mode_experts
    from selfplay_gym.envs.tasks import ArithmeticTask
    from selfplay_gym.envs.vector import SelfPlayVectorEnv

    experts = mode_experts("darc", problems=ArithmeticTask(levels=(1,)).problems(20, seed=0))
    venv = SelfPlayVectorEnv.make("darc", 6, num_solvers=2, num_samples=2)
    episodes = venv.rollout(experts, seed=0).episodes
    options = venv.mode.next_stage_options(episodes)
    assert options["stage"] == 2
    assert [item.question for item in options["curriculum"].items] == \
        [item.question for item in build_curriculum(episodes)]
    with pytest.raises(ValueError, match="no parsable question"):
        venv.mode.next_stage_options([])


def test_stage_one_asks_only_the_chosen_difficulties():
    mode = DarcMode(DarcConfig(difficulties=[1]))
    task, rng = mode.default_task(), np.random.default_rng(0)
    assert {task.sample(rng).difficulty for _ in range(3 * mode.config.num_samples)} == {1}
    with pytest.raises(ValueError, match="subset of"):
        DarcConfig(difficulties=(4,))

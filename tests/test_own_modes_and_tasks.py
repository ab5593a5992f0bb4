"""Own modes and data from the CLI: ``--mode module:Class`` and ``--task FORMAT:PATH``."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import numpy as np
import pytest

from selfplay_gym.agents.scripted import DatasetQuestioner, scripted_policy
from selfplay_gym.algorithms.trainer import TrainConfig
from selfplay_gym.build import build_trainer, plan_run
from selfplay_gym.cli import main
from selfplay_gym.config import ModelConfig, RolloutConfig, RunConfig
from selfplay_gym.envs.curriculum import DocumentPrompts
from selfplay_gym.envs.mode import Recipe
from selfplay_gym.envs.modes.darc import DarcMode
from selfplay_gym.envs.registry import mode_class, modes
from selfplay_gym.envs.tasks import CorpusSource, QuestionSet, task_from_spec
from selfplay_gym.plots import read_jsonl

ECHO_MODE = textwrap.dedent('''
    """A user's mode: solvers answer the task's question; no recipe, so the default one."""
    from dataclasses import dataclass

    from selfplay_gym.envs.mode import Mode, Parsed
    from selfplay_gym.envs.verify import extract_answer


    @dataclass
    class EchoConfig:
        num_solvers: int = 2


    class EchoMode(Mode):
        name = "echo"
        roles = ("solver",)
        Config = EchoConfig

        def agents(self):
            return tuple(f"solver_{i}" for i in range(self.config.num_solvers))

        def next_phase(self, episode):
            return () if episode.turns else self.agents()

        def observe(self, agent, episode):
            return ({"role": "user", "content": episode.task["question"]},)

        def parse(self, role, text):
            answer = extract_answer(text)
            return Parsed(answer is not None, {"answer": answer}, None if answer else "no answer")

        def record(self, turn, episode):
            episode.fields.setdefault("answers", []).append(turn.parsed.get("answer"))

        def reward_functions(self):
            return {"solver": lambda episode, agent: float(bool(episode.fields.get("answers")))}
''')


@pytest.fixture
def echo_mode(tmp_path, monkeypatch):
    """``selfplay_echo_mode:EchoMode`` importable from a folder the test writes."""
    (tmp_path / "selfplay_echo_mode.py").write_text(ECHO_MODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "selfplay_echo_mode:EchoMode"


def write_questions(path, n=30):
    rows = [{"question": f"{i}+{i}", "answer": 2 * i} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_a_mode_without_a_recipe_trains_every_llm_role_jointly_with_grpo(echo_mode):
    assert mode_class(echo_mode).recipe == Recipe(stages=(("solver",),))
    cfg = plan_run(RunConfig(mode=echo_mode)).cfg
    assert (cfg.train_roles, cfg.schedule, cfg.algorithm) == (("solver",), "joint", "grpo")


def test_a_mode_that_cannot_be_imported_says_what_is_missing(capsys):
    with pytest.raises(ValueError, match=r"cannot import module 'no_such_pkg\.mode'.*PYTHONPATH"):
        plan_run(RunConfig(mode="no_such_pkg.mode:Mode"))
    assert "no_such_pkg.mode:Mode" not in modes()  # not left registered
    with pytest.raises(ValueError, match=r"module 'json' has no attribute 'Nope'"):
        mode_class("json:Nope")
    with pytest.raises(ValueError, match=r"is not a Mode subclass"):
        mode_class("json:JSONDecoder")
    assert main(["train", "--mode", "no_such_pkg.mode:Mode"]) == 2
    assert "cannot import module 'no_such_pkg.mode'" in capsys.readouterr().err


def test_a_question_file_holds_a_tenth_out_and_serves_the_dataset_questioner(tmp_path):
    task = task_from_spec(f"jsonl:{write_questions(tmp_path / 'q.jsonl')}")
    assert isinstance(task, QuestionSet) and len(task) == 27
    held = {q.question for q in task.held_out()}
    assert len(held) == 3 and task.answer(task.held_out()[0].question) == task.held_out()[0].answer
    item = task.sample(np.random.default_rng(0))
    assert item.question not in held and item.reference == task.answer(item.question)
    asked = {p.question for p in task.problems(100, seed=7)}
    assert asked.isdisjoint(held) and len(asked) == 27  # every training question, none held out
    assert isinstance(scripted_policy("dataset", task), DatasetQuestioner)


def test_parquet_and_txt_files_are_corpora_of_documents(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["first document", "second one"]}), tmp_path / "d.parquet")
    corpus = task_from_spec(f"parquet:{tmp_path / 'd.parquet'}")
    assert isinstance(corpus, CorpusSource) and corpus.document(1) == "second one"
    (tmp_path / "d.txt").write_text("alpha\nbeta\n")
    assert task_from_spec(f"txt:{tmp_path / 'd.txt'}").document(0) == "alpha"
    prompts = DarcMode().task_from(corpus)  # DARC: every document at each difficulty, n times
    assert isinstance(prompts, DocumentPrompts) and prompts.source is corpus


def test_darc_from_the_config_plays_the_users_documents(random_model_dir, tmp_path):
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "Ana has 3 apples."}) + "\n")
    cfg = RunConfig(mode="darc", task=f"jsonl:{tmp_path / 'docs.jsonl'}",
                    model=ModelConfig(name=str(random_model_dir)),
                    rollout=RolloutConfig(num_envs=2, num_solvers=2),
                    train=TrainConfig(output_dir=str(tmp_path / "run"), report_to=("none",)))
    task = build_trainer(plan_run(dataclasses.replace(cfg, train_roles=("questioner",)))).venv.envs[0].task
    assert isinstance(task, DocumentPrompts) and isinstance(task.source, CorpusSource)
    assert task.sample(np.random.default_rng(0)).document == "Ana has 3 apples."


@pytest.mark.parametrize("spec, match", [
    ("questions.jsonl", r"write FORMAT:PATH"),
    ("xml:q.xml", r"write FORMAT:PATH with a format of \['csv', 'json'"),
    ("jsonl:/no/such/file.jsonl", r"no file /no/such/file.jsonl"),
])
def test_a_bad_task_spec_names_the_fix(spec, match):
    with pytest.raises(ValueError, match=match):
        task_from_spec(spec)


def test_rows_without_known_fields_or_with_a_null_answer_are_named(tmp_path):
    path = tmp_path / "odd.jsonl"
    path.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"fields \['body'\]; a question set needs 'question'"):
        task_from_spec(f"jsonl:{path}")
    path.write_text(json.dumps({"question": "1+1", "answer": None}) + "\n")
    with pytest.raises(ValueError, match=r"row 1 has no 'question' text or no 'answer'"):
        task_from_spec(f"jsonl:{path}")


def test_a_hub_dataset_offline_says_how_to_bring_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SELFPLAY_GYM_CACHE", str(tmp_path))
    with pytest.raises(ValueError, match=r"needs the network.*--task parquet:"):
        plan_run(RunConfig(task="hf:someone/questions@test"))


def test_own_mode_on_own_questions_trains_from_the_cli(echo_mode, random_model_dir, tmp_path):
    questions = write_questions(tmp_path / "questions.jsonl")
    out = tmp_path / "run"
    assert main(["train", "--mode", echo_mode, "--task", f"jsonl:{questions}",
                 "--model.name", str(random_model_dir), "--train.iterations", "1",
                 "--rollout.num-envs", "2", "--rollout.num-solvers", "2",
                 "--rollout.max-new-tokens", "8", "--train.output-dir", str(out),
                 "--train.no-progress", "--train.report-to", "none"]) == 0
    assert read_jsonl(out / "metrics.jsonl")[0]["train_roles"] == ["solver"]
    asked = {e["task"]["question"] for e in read_jsonl(out / "episodes.jsonl")}
    task = task_from_spec(f"jsonl:{questions}")
    assert asked and asked <= {q.question for q in task.train}

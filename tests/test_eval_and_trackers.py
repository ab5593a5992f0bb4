"""Held-out evaluation during training (``--train.eval-every``) and experiment trackers
(``--train.report-to``), from the CLI; TensorBoard events are read back with its own reader."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from selfplay_gym.algorithms.trackers import chosen, report_to_problems
from selfplay_gym.algorithms.trainer import TrainConfig
from selfplay_gym.build import plan_run
from selfplay_gym.cli import main
from selfplay_gym.config import RunConfig
from selfplay_gym.plots import read_jsonl

ROOT = Path(__file__).resolve().parents[1]


def small_run(model_dir, out, *flags: str) -> int:
    return main(["train", "--model.name", str(model_dir), "--train.iterations", "2",
                 "--rollout.num-envs", "2", "--rollout.num-solvers", "2",
                 "--rollout.max-new-tokens", "8", "--train.output-dir", str(out),
                 "--train.no-progress", *flags])


def test_eval_every_logs_held_out_accuracy_plots_it_and_writes_tensorboard(random_model_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert small_run(random_model_dir, tmp_path, "--train.eval-every", "1",
                     "--train.report-to", "tensorboard") == 0
    rows = [r for r in read_jsonl(tmp_path / "metrics.jsonl") if "eval/greedy_accuracy" in r]
    assert [r["iteration"] for r in rows] == [-1, 0, 1]  # before training, then every iteration
    assert all(0 <= r["eval/sampled_accuracy"] <= 1 for r in rows)
    assert (tmp_path / "learning_curves.png").stat().st_size > 0

    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    accuracy = events.Scalars("eval/greedy_accuracy")
    assert [e.step for e in accuracy] == [0, 1, 2]  # step = iteration + 1
    assert [e.value for e in accuracy] == pytest.approx([r["eval/greedy_accuracy"] for r in rows])
    assert [e.step for e in events.Scalars("reward/solver/mean")] == [1, 2]


def test_report_to_none_writes_metrics_jsonl_only(random_model_dir, tmp_path):
    assert small_run(random_model_dir, tmp_path, "--train.iterations", "1",
                     "--train.report-to", "none") == 0
    assert (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "tensorboard").exists()


def test_eval_every_on_a_task_without_held_out_questions_is_refused_before_loading():
    with pytest.raises(ValueError, match=r"needs held-out questions, and the task of mode 'alive' "
                                         r"\(WordProblemCorpus\) has none.*--task jsonl:PATH"):
        plan_run(RunConfig(mode="alive", train=TrainConfig(eval_every=1)))


def test_report_to_names_what_is_wrong_and_how_to_install(monkeypatch):
    assert report_to_problems(["tensorbored"])[0].startswith("--train.report-to 'tensorbored': choose")
    assert any("stand alone" in p for p in report_to_problems(["none", "tensorboard"]))
    assert chosen(["none"]) == []
    monkeypatch.setattr("selfplay_gym.algorithms.trackers.installed", lambda name: False)
    assert chosen([]) == []  # the default: TensorBoard only where installed
    assert "pip install 'selfplay-gym[tensorboard]'" in report_to_problems(["tensorboard"])[0]
    with pytest.raises(ValueError, match=r"--train.report-to wandb: wandb is not installed; pip install wandb"):
        plan_run(RunConfig(train=TrainConfig(report_to=("wandb",))))


def run_tracker(name: str, tmp_path: Path, env: dict[str, str], read_back: str) -> dict:
    """Open tracker ``name`` in a fresh process, log two rows through RunLog, read them back."""
    script = textwrap.dedent(f"""
        import json, sys
        from selfplay_gym.algorithms.run_log import RunLog
        from selfplay_gym.algorithms.trackers import open_trackers
        out = sys.argv[1]
        log = RunLog(out, trackers=open_trackers(["{name}"], out, {{"mode": "rzero"}}))
        log.metrics({{"iteration": -1, "eval/greedy_accuracy": 0.25}})
        log.metrics({{"iteration": 0, "eval/greedy_accuracy": 0.5, "reward/solver/mean": 1.0}})
        log.close()
    """) + textwrap.dedent(read_back)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULT:")[-1].splitlines()[0])


def test_trackio_logs_locally_and_reads_back(tmp_path):
    pytest.importorskip("trackio")
    import os

    env = os.environ | {"TRACKIO_DIR": str(tmp_path / "trackio"), "TRACKIO_PROJECT": "t"}
    logs = run_tracker("trackio", tmp_path, env, """
        from trackio.sqlite_storage import SQLiteStorage
        rows = SQLiteStorage.get_logs("t", "run")
        print("RESULT:" + json.dumps([[r["step"], r["eval/greedy_accuracy"]] for r in rows]))
    """)
    assert logs == [[0, 0.25], [1, 0.5]]


def test_wandb_offline_writes_the_run_under_the_output_dir(tmp_path):
    pytest.importorskip("wandb")
    import os

    env = os.environ | {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    run_tracker("wandb", tmp_path, env, 'print("RESULT:{}")')
    # read once the process (and wandb's own service with it) has ended: its log is complete
    files = list((tmp_path / "run" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    data = files[0].read_bytes()
    assert b"eval/greedy_accuracy" in data and b"reward/solver/mean" in data
    assert (tmp_path / "run" / "wandb" / "run_id").read_text() in files[0].name

"""``selfplay-gym eval`` end to end on a tiny random model saved to disk."""

from __future__ import annotations

import json

import pytest
from eval_helpers import fixture_path

from selfplay_gym.eval.cli import main


def test_cli_evaluates_a_local_model_on_a_local_file(random_model_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "--model",
            str(random_model_dir),
            "--benchmarks",
            "gsm8k",
            "--data",
            f"gsm8k={fixture_path('gsm8k')}",
            "--max-new-tokens",
            "6",
            "--limit",
            "3",
            "--output-dir",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["benchmarks"]["gsm8k"]["questions"] == 3
    assert results["settings"]["temperature"] == 0.0 and results["settings"]["model"] == str(
        random_model_dir
    )
    assert len((out / "records.jsonl").read_text().splitlines()) == 3
    printed = capsys.readouterr().out
    assert "| gsm8k | 3 |" in printed and str(out) in printed


def test_cli_lists_benchmarks(capsys):
    assert main(["--list"]) == 0
    printed = capsys.readouterr().out
    assert "gpqa_diamond" in printed and "Idavidrein/gpqa" in printed


@pytest.mark.parametrize(
    "argv",
    [
        ["--model", "m", "--benchmarks", "math5000"],
        ["--model", "m", "--benchmarks", "gsm8k", "--data", "nonsense"],
        ["--model", "m", "--benchmarks", "gsm8k", "--data", "math500=x.jsonl"],
        ["--model", "m", "--benchmarks", "gsm8k", "--k", "0"],
        ["--benchmarks", "gsm8k"],
    ],
)
def test_cli_rejects_bad_arguments(argv):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2

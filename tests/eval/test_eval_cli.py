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


def test_cli_model_tiny_is_the_embedded_model_as_in_train(tmp_path):
    from selfplay_gym.agents.tiny import tiny_model_dir
    from selfplay_gym.eval.cli import build_engine, build_parser

    engine = build_engine(build_parser().parse_args(["--model", "tiny"]))
    assert engine.tokenizer.name_or_path == str(tiny_model_dir())
    out = tmp_path / "eval"
    args = ["--model", "tiny", "--benchmarks", "gsm8k", "--data", f"gsm8k={fixture_path('gsm8k')}"]
    assert main([*args, "--max-new-tokens", "6", "--limit", "2", "--output-dir", str(out),
                 "--no-progress"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["settings"]["model"] == "tiny" and results["benchmarks"]["gsm8k"]["questions"] == 2
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 2 and records[0]["benchmark"] == "gsm8k"


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


def test_cli_evaluates_a_trained_adapter_and_its_answers_follow_it(random_model_dir, tmp_path):
    """An adapter directory as training saves it, loaded through the CLI (once a KeyError:
    the adapter was named "eval", which peft cannot add beside ``nn.Module.eval``)."""
    import torch

    from selfplay_gym.agents.hf import HFBackend

    learner = HFBackend(random_model_dir, adapters=["solver"])
    with torch.no_grad():
        for name, param in learner.adapter_parameters("solver").items():
            if "lora_B" in name:
                param.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    adapter_dir = learner.save_adapter("solver", tmp_path / "solver")
    args = ["--model", str(random_model_dir), "--benchmarks", "gsm8k", "--data",
            f"gsm8k={fixture_path('gsm8k')}", "--max-new-tokens", "6", "--limit", "3", "--no-progress"]
    assert main([*args, "--output-dir", str(tmp_path / "base")]) == 0
    assert main([*args, "--adapter", str(adapter_dir), "--output-dir", str(tmp_path / "tuned")]) == 0

    def completions(run):
        return [json.loads(line)["completions"] for line in (tmp_path / run / "records.jsonl").open()]

    assert completions("tuned") != completions("base")
    settings = json.loads((tmp_path / "tuned" / "results.json").read_text())["settings"]
    assert settings["model"].endswith(f"+ {adapter_dir}")

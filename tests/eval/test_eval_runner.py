"""``evaluate``: batching, records, scores, files, resuming; on a scripted and a real backend."""

from __future__ import annotations

import functools
import json

import pytest
from eval_helpers import ScriptedBackend, fixture_path

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.eval.benchmarks import load_benchmark
from selfplay_gym.eval.checking import AnswerChecker, math_verdict
from selfplay_gym.eval.items import math_item
from selfplay_gym.eval.records import read_records
from selfplay_gym.eval.runner import evaluate

GSM8K_ANSWERS = {"muffins": "9", "robe": "3", "apples": "1200", "Tom": "42"}


def gsm8k_and_mmlu():
    return {
        "gsm8k": load_benchmark("gsm8k", fixture_path("gsm8k")),
        "mmlu_pro": load_benchmark("mmlu_pro", fixture_path("mmlu_pro")),
    }


def half_right(prompt: str, index: int) -> str:
    """Right on the first two GSM8K questions, B on every multiple-choice question."""
    if "Options:" in prompt:
        return "Let me think. \\boxed{B}"
    for word, answer in GSM8K_ANSWERS.items():
        if word in prompt:
            return f"so \\boxed{{{answer}}}" if word in ("muffins", "robe") else "\\boxed{7}"
    raise AssertionError(prompt)


def test_scores_files_and_records(tmp_path):
    backend = ScriptedBackend(half_right)
    results = evaluate(
        backend,
        gsm8k_and_mmlu(),
        output_dir=tmp_path,
        batch_size=3,
        progress=False,
        model="scripted",
    )
    gsm8k, mmlu = results["benchmarks"]["gsm8k"], results["benchmarks"]["mmlu_pro"]
    assert gsm8k["accuracy"] == 0.5 and gsm8k["questions"] == 4
    assert mmlu["accuracy"] == pytest.approx(1 / 3)  # only question 71's answer is B
    assert results["averages"]["accuracy"] == {
        "math": 0.5,
        "general": pytest.approx(1 / 3),
        "all": pytest.approx(5 / 12),
        "overall": pytest.approx(5 / 12),
    }
    assert [len(call) for call in backend.calls] == [3, 1, 3]  # batches of 3 questions
    assert json.loads((tmp_path / "results.json").read_text()) == json.loads(json.dumps(results))
    table = (tmp_path / "results.md").read_text()
    assert "| gsm8k | 4 | 50.0 |" in table and "| *math avg* |  | 50.0 |" in table
    records = read_records(tmp_path / "records.jsonl")
    first = records[("gsm8k", "0")]
    assert (
        first["extracted"] == ["9"] and first["correct"] == [True] and first["methods"] == ["exact"]
    )
    assert first["completions"] == ["so \\boxed{9}"] and "muffins" in first["prompt"]
    assert (
        records[("mmlu_pro", "72")]["extracted"] == ["B"]
        and records[("mmlu_pro", "72")]["answer"] == "C"
    )


def test_math_verify_running_out_of_time_counts_as_a_check_timeout(tmp_path):
    """Once recorded as method "error", with 0 in the "check timeouts" column."""
    # Unbounded, math-verify compares these for about 40 s; its own 1 s timeout stops it.
    inner_1s = functools.partial(math_verdict, timeout_seconds=1)
    items = {"hostile": [math_item("h", "Expand.", "(x+2)^{2000}")]}
    backend = ScriptedBackend(lambda prompt, index: "\\boxed{(x+1)^{2000}}")
    with AnswerChecker(timeout=30.0, math_fn=inner_1s) as checker:
        results = evaluate(backend, items, checker=checker, output_dir=tmp_path, progress=False)
        assert checker.timeouts == 1
    record = read_records(tmp_path / "records.jsonl")[("hostile", "h")]
    assert record["methods"] == ["timeout"] and record["correct"] == [False]
    assert record["errors"][0].startswith("TimeoutException")  # math-verify's, not the deadline's
    assert results["benchmarks"]["hostile"]["check_timeouts"] == 1
    assert "| hostile | 1 | 0.0 | 0.0 | 0.0 | 1 |" in (tmp_path / "results.md").read_text()


def test_sampling_metrics(tmp_path):
    # Four samples per question; on the muffin question the samples say 9, 9, 5, 9.
    replies = {
        "muffins": ["\\boxed{9}", "\\boxed{9}", "\\boxed{5}", "\\boxed{9}"],
        "robe": ["\\boxed{4}", "\\boxed{3}", "\\boxed{4}", "\\boxed{1}"],
    }
    items = {"gsm8k": load_benchmark("gsm8k", fixture_path("gsm8k"))[:2]}
    backend = ScriptedBackend(lambda p, i: replies["muffins" if "muffins" in p else "robe"][i % 4])
    scores = evaluate(backend, items, samples=4, k=(1, 2, 4), temperature=1.0, progress=False)
    gsm8k = scores["benchmarks"]["gsm8k"]
    assert gsm8k["accuracy"] == pytest.approx((3 / 4 + 1 / 4) / 2)
    # pass@2: muffins 1 - C(1,2)/C(4,2) = 1; robe 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert gsm8k["pass@2"] == pytest.approx((1 + 0.5) / 2)
    assert gsm8k["pass@4"] == 1.0
    # maj@2 votes over the first two samples: (9, 9) right; (4, 3) tie -> 4, wrong
    assert gsm8k["maj@2"] == 0.5 and gsm8k["maj@4"] == 0.5  # robe: 4 wins twice over 3 and 1


def test_resume_skips_finished_questions(tmp_path):
    first = ScriptedBackend(half_right)
    evaluate(first, gsm8k_and_mmlu(), output_dir=tmp_path, limit=2, progress=False)
    assert len(first.prompts) == 4
    second = ScriptedBackend(half_right)
    results = evaluate(second, gsm8k_and_mmlu(), output_dir=tmp_path, progress=False)
    assert len(second.prompts) == 3  # two GSM8K and one MMLU-Pro question were left
    assert not set(first.prompts) & set(second.prompts)
    assert results["benchmarks"]["gsm8k"]["accuracy"] == 0.5


def test_an_interrupted_run_resumes_from_the_last_whole_batch(tmp_path):
    class Interrupted(Exception):
        pass

    class CrashOnSecondCall(ScriptedBackend):
        def generate(self, prompts, adapters, sampling):
            if self.calls:
                raise Interrupted
            return super().generate(prompts, adapters, sampling)

    with pytest.raises(Interrupted):
        evaluate(
            CrashOnSecondCall(half_right),
            gsm8k_and_mmlu(),
            output_dir=tmp_path,
            batch_size=2,
            progress=False,
        )
    with open(tmp_path / "records.jsonl", "a") as handle:
        handle.write('{"benchmark": "gsm8k", "id": "2", "prom')  # a line cut by the crash
    assert set(read_records(tmp_path / "records.jsonl")) == {("gsm8k", "0"), ("gsm8k", "1")}
    again = ScriptedBackend(half_right)
    evaluate(again, gsm8k_and_mmlu(), output_dir=tmp_path, batch_size=2, progress=False)
    assert len(again.prompts) == 5


def test_resuming_with_other_settings_is_refused(tmp_path):
    evaluate(
        ScriptedBackend(half_right), gsm8k_and_mmlu(), output_dir=tmp_path, limit=1, progress=False
    )
    with pytest.raises(ValueError, match="max_new_tokens: 1024 -> 64"):
        evaluate(
            ScriptedBackend(half_right),
            gsm8k_and_mmlu(),
            output_dir=tmp_path,
            max_new_tokens=64,
            progress=False,
        )


def test_settings_are_checked_before_generating():
    backend = ScriptedBackend(half_right)
    with pytest.raises(ValueError, match="needs samples >= k"):
        evaluate(backend, gsm8k_and_mmlu(), k=(1, 4), samples=2, temperature=1.0)
    with pytest.raises(ValueError, match="temperature 0"):
        evaluate(backend, gsm8k_and_mmlu(), samples=2, k=(1,))
    with pytest.raises(TypeError, match="list of benchmark names"):
        evaluate(backend, "gsm8k")
    assert backend.calls == []


class CountingBackend:
    """Wraps a real backend and counts the prompts it is asked for."""

    def __init__(self, backend):
        self.backend, self.prompts = backend, []

    def generate(self, prompts, adapters, sampling):
        self.prompts += [m[-1]["content"] for m in prompts]
        return self.backend.generate(prompts, adapters, sampling)


def test_random_model_end_to_end_with_resume(random_model_dir, tmp_path):
    backend = HFBackend(random_model_dir)
    items = {
        "gsm8k": load_benchmark("gsm8k", fixture_path("gsm8k")),
        "supergpqa": load_benchmark("supergpqa", fixture_path("supergpqa")),
    }
    first = CountingBackend(backend)
    evaluate(first, items, output_dir=tmp_path, limit=1, max_new_tokens=6, progress=False)
    assert len(first.prompts) == 2
    second = CountingBackend(backend)
    results = evaluate(
        second, items, output_dir=tmp_path, max_new_tokens=6, batch_size=2, progress=False
    )
    assert len(second.prompts) == 4 and not set(first.prompts) & set(second.prompts)
    assert {p.name for p in tmp_path.iterdir()} >= {"results.json", "results.md", "records.jsonl"}
    assert results["benchmarks"]["gsm8k"]["questions"] == 4
    assert 0 <= results["averages"]["accuracy"]["all"] <= 1
    lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert len(lines) == 6 and all(len(json.loads(line)["completions"]) == 1 for line in lines)

"""``evaluate``: generate for every benchmark question through any backend, check, score, save.

Any object with ``generate(prompts, adapters, sampling) -> list[Completion]`` serves
(``HFBackend`` here; a vLLM or OpenAI-compatible backend later). Questions go out in batches of
``batch_size`` questions x ``samples`` prompts; each batch's records are appended to
``records.jsonl`` before the next starts, and a rerun with the same ``output_dir`` skips the
questions found there, so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from selfplay_gym.agents.policy import Backend, SamplingConfig
from selfplay_gym.eval.benchmarks import load_benchmark
from selfplay_gym.eval.checking import AnswerChecker, Check
from selfplay_gym.eval.code_checking import CodeChecker, check_completions, same_answer
from selfplay_gym.eval.items import EvalItem
from selfplay_gym.eval.metrics import accuracy, domain_averages, majority_correct, mean_pass_at_k
from selfplay_gym.eval.records import (
    RECORDS,
    RESUME_FIELDS,
    append_records,
    pin_settings,
    read_records,
)
from selfplay_gym.eval.report import markdown_report, metric_names
from selfplay_gym.types import Completion, Messages

Benchmarks = Mapping[str, Sequence[EvalItem]] | Sequence[str]
"""Items by benchmark name, or registered names to load from the hub."""


def _as_items(benchmarks: Benchmarks, limit: int | None) -> dict[str, list[EvalItem]]:
    if isinstance(benchmarks, str):
        raise TypeError("pass a list of benchmark names, e.g. ['gsm8k'], not a string")
    loaded = (
        dict(benchmarks)
        if isinstance(benchmarks, Mapping)
        else {n: load_benchmark(n) for n in benchmarks}
    )
    out = {}
    for name, items in loaded.items():
        items = list(items)[:limit] if limit is not None else list(items)
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"benchmark {name!r} repeats question ids; ids must be unique")
        out[name] = items
    return out


def _check_settings(samples: int, ks: Sequence[int], temperature: float, batch_size: int) -> None:
    if samples < 1 or batch_size < 1:
        raise ValueError(f"samples and batch_size must be >= 1, got {samples}, {batch_size}")
    bad = [k for k in ks if not 1 <= k <= samples]
    if bad:
        raise ValueError(f"k={bad} needs samples >= k (samples={samples}): raise samples")
    if temperature == 0 and samples > 1:
        raise ValueError(
            "samples > 1 at temperature 0 repeats one greedy answer; set a temperature"
        )


def _record(name: str, item: EvalItem, completions: Sequence[Completion], checks: Sequence[Check]):
    return {
        "benchmark": name,
        "id": item.id,
        "prompt": item.prompt,
        "answer": item.answer,
        "answer_type": item.answer_type,
        "choices": list(item.choices),
        "completions": [c.text for c in completions],
        "extracted": [c.extracted for c in checks],
        "correct": [c.correct for c in checks],
        "methods": [c.method for c in checks],
        "errors": [c.error for c in checks],
        "finish_reasons": [c.finish_reason for c in completions],
    }


def score_records(
    records: Sequence[Mapping[str, Any]], ks: Sequence[int], checker: AnswerChecker
) -> dict:
    """One benchmark's scores from its records (all metrics are fractions in [0, 1])."""
    correct = [r["correct"] for r in records]
    extracted = [a for r in records for a in r["extracted"]]
    scores: dict[str, Any] = {"questions": len(records), "accuracy": accuracy(correct)}
    for k in ks:
        if k > 1:
            scores[f"pass@{k}"] = mean_pass_at_k(correct, k)
            wins = [
                majority_correct(
                    r["extracted"][:k],
                    r["correct"][:k],
                    lambda a, b, t=r["answer_type"]: same_answer(checker, a, b, t),
                )
                for r in records
            ]
            scores[f"maj@{k}"] = sum(wins) / len(wins)
    scores["no_answer"] = sum(a is None for a in extracted) / len(extracted)
    scores["truncated"] = sum(f == "length" for r in records for f in r["finish_reasons"]) / len(
        extracted
    )
    scores["check_timeouts"] = sum(m == "timeout" for r in records for m in r["methods"])
    return scores


def evaluate(
    backend: Backend,
    benchmarks: Benchmarks,
    *,
    adapter: str | None = None,
    samples: int = 1,
    k: Sequence[int] = (1,),
    max_new_tokens: int = 1024,
    temperature: float = 0.0,
    top_p: float = 1.0,
    top_k: int = 0,
    batch_size: int = 32,
    output_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    checker: AnswerChecker | None = None,
    messages_fn: Callable[[EvalItem], Messages] = EvalItem.messages,
    model: str | None = None,
    code_checker: CodeChecker | None = None,
) -> dict[str, Any]:
    """Scores per benchmark and the papers' averages; files too when ``output_dir`` is given.

    ``samples`` completions per question at ``temperature`` (0 = greedy, one sample); ``k``
    lists the pass@k/maj@k to report (accuracy always). ``limit`` keeps the first questions of
    each benchmark. ``model`` is only recorded. Code items' programs run in the sandbox
    through ``code_checker`` (default ``CodeChecker()``). Writes ``results.json``,
    ``results.md``, ``records.jsonl`` and ``settings.json`` under ``output_dir``.
    """
    ks = sorted(set(k))
    _check_settings(samples, ks, temperature, batch_size)
    items = _as_items(benchmarks, limit)
    sampling = SamplingConfig(
        temperature=temperature, top_p=top_p, top_k=top_k, max_new_tokens=max_new_tokens
    )
    settings = {
        "model": model,
        "adapter": adapter,
        "samples": samples,
        "k": ks,
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "max_new_tokens": max_new_tokens,
        "limit": limit,
    }
    records_path = None
    done: dict[tuple[str, str], dict] = {}
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        pin_settings(output_dir, settings)
        records_path = Path(output_dir) / RECORDS
        done = read_records(records_path, RESUME_FIELDS)
    own_checker = checker is None
    checker = checker or AnswerChecker()
    code = code_checker or CodeChecker()
    try:
        _generate(
            backend,
            items,
            done,
            records_path,
            functools.partial(check_completions, checker=checker, code=code),
            adapter,
            sampling,
            samples,
            batch_size,
            messages_fn,
            progress,
        )
        scores = {
            name: score_records([done[(name, i.id)] for i in its], ks, checker)
            for name, its in items.items()
            if its
        }
    finally:
        if own_checker:
            checker.close()
    results = {"settings": settings, "benchmarks": scores}
    results["averages"] = {
        metric: domain_averages({n: s[metric] for n, s in scores.items()})
        for metric in metric_names(results)
    }
    if output_dir is not None:
        Path(output_dir, "results.json").write_text(json.dumps(results, indent=1) + "\n")
        Path(output_dir, "results.md").write_text(markdown_report(results))
    return results


def _is_done(record: Mapping[str, Any] | None, item: EvalItem, samples: int) -> bool:
    """A record counts only if it was made for this very prompt and sample count."""
    return (
        record is not None and record["prompt"] == item.prompt and len(record["correct"]) == samples
    )


def _generate(
    backend,
    items,
    done,
    records_path,
    check,
    adapter,
    sampling,
    samples,
    batch_size,
    messages_fn,
    progress,
) -> None:
    """Generate and check every question without a usable record, batch by batch."""
    pending = {
        name: [i for i in its if not _is_done(done.get((name, i.id)), i, samples)]
        for name, its in items.items()
    }
    total = sum(len(its) for its in items.values())
    todo = sum(len(p) for p in pending.values())
    with tqdm(
        total=total, initial=total - todo, desc="eval", unit="q", disable=not progress
    ) as bar:
        for name, queue in pending.items():
            bar.set_postfix_str(name)
            for start in range(0, len(queue), batch_size):
                chunk = queue[start : start + batch_size]
                prompts = [messages_fn(item) for item in chunk for _ in range(samples)]
                completions = backend.generate(prompts, [adapter] * len(prompts), sampling)
                if len(completions) != len(prompts):
                    raise RuntimeError(
                        f"backend returned {len(completions)} completions for "
                        f"{len(prompts)} prompts"
                    )
                asked = [item for item in chunk for _ in range(samples)]
                checks = check(asked, [c.text for c in completions])  # code: one sandbox batch
                records = []
                for i, item in enumerate(chunk):
                    mine = slice(i * samples, (i + 1) * samples)
                    records.append(_record(name, item, completions[mine], checks[mine]))
                if records_path is not None:
                    append_records(records_path, records)
                for record in records:
                    done[(name, record["id"])] = record
                bar.update(len(chunk))

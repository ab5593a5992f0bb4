"""``results.md``: the per-benchmark table with the papers' averages, in percent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AVERAGE_ROWS = (
    ("math", "math avg"),
    ("general", "general avg"),
    ("all", "all avg"),
    ("overall", "overall (R-Zero)"),
)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def metric_names(results: Mapping[str, Any]) -> list[str]:
    """accuracy, then pass@k and maj@k in the order of k."""
    names: list[str] = ["accuracy"]
    for k in results["settings"]["k"]:
        if k > 1:
            names += [f"pass@{k}", f"maj@{k}"]
    return names


def markdown_table(results: Mapping[str, Any]) -> str:
    """Rows per benchmark then averages; "no box" and "cut" are shares of samples."""
    metrics = metric_names(results)
    head = ["benchmark", "questions", *metrics, "no answer", "cut at limit", "check timeouts"]
    lines = [
        "| " + " | ".join(head) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|",
    ]
    for name, scores in results["benchmarks"].items():
        cells = [
            name,
            str(scores["questions"]),
            *(_pct(scores.get(m)) for m in metrics),
            _pct(scores["no_answer"]),
            _pct(scores["truncated"]),
            str(scores["check_timeouts"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    averages = results["averages"]
    for key, label in AVERAGE_ROWS:
        if any(key in averages.get(m, {}) for m in metrics):
            cells = [
                f"*{label}*",
                "",
                *(_pct(averages.get(m, {}).get(key)) for m in metrics),
                "",
                "",
                "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(results: Mapping[str, Any]) -> str:
    s = results["settings"]
    about = (
        f"model: {s.get('model') or '-'} · adapter: {s.get('adapter') or '-'} · "
        f"samples: {s['samples']} · temperature: {s['temperature']} · top_p: {s['top_p']} · "
        f"max_new_tokens: {s['max_new_tokens']}"
    )
    return (
        f"# Evaluation results\n\n{about}\n\nScores in percent; accuracy is the mean over "
        f"samples (greedy accuracy with one greedy sample).\n\n{markdown_table(results)}\n"
    )

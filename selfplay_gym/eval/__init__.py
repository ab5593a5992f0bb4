"""Evaluation on the papers' benchmarks: loaders, bounded answer checking, pass@k and maj@k.

>>> from selfplay_gym.eval import evaluate, load_benchmark
>>> results = evaluate(backend, {"gsm8k": load_benchmark("gsm8k", "gsm8k.jsonl")},
...                    output_dir="runs/eval/base")
"""

from selfplay_gym.eval.benchmarks import (
    BENCHMARKS,
    GENERAL_BENCHMARKS,
    MATH_BENCHMARKS,
    BenchmarkSpec,
    benchmark_spec,
    load_benchmark,
    register_benchmark,
)
from selfplay_gym.eval.checking import AnswerChecker, Check
from selfplay_gym.eval.held_out import held_out_evaluator
from selfplay_gym.eval.items import EvalItem, choice_item, math_item, text_item
from selfplay_gym.eval.metrics import (
    accuracy,
    domain_averages,
    macro_average,
    majority_correct,
    mean_maj_at_k,
    mean_pass_at_k,
    pass_at_k,
)
from selfplay_gym.eval.runner import evaluate

__all__ = [
    "BENCHMARKS",
    "GENERAL_BENCHMARKS",
    "MATH_BENCHMARKS",
    "AnswerChecker",
    "BenchmarkSpec",
    "Check",
    "EvalItem",
    "accuracy",
    "benchmark_spec",
    "choice_item",
    "domain_averages",
    "evaluate",
    "held_out_evaluator",
    "load_benchmark",
    "macro_average",
    "majority_correct",
    "math_item",
    "mean_maj_at_k",
    "mean_pass_at_k",
    "pass_at_k",
    "register_benchmark",
    "text_item",
]

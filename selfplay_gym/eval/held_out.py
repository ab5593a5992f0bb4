"""In-training evaluation: accuracy on held-out items, as the trainer's ``evaluate`` hook.

``HeldOutAccuracy`` (what ``--train.eval-every`` and the demo log): the solver's greedy and
sampled (T=1) accuracy on a task's held-out questions, under R-Zero's solver prompt.
``held_out_evaluator``: greedy accuracy on benchmark items, under their own prompts.

>>> items = [math_item(f"arith-{i}", p.question, p.answer) for i, p in enumerate(problems)]
>>> hook = held_out_evaluator(backend, items, "solver", messages_fn=solver_messages)
>>> SelfPlayTrainer(..., evaluate=hook)        # logs {"eval/accuracy": ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from selfplay_gym.agents.policy import Backend, SamplingConfig
from selfplay_gym.agents.tiny import solver_prompts
from selfplay_gym.envs.verify import extract_answer
from selfplay_gym.eval.checking import AnswerChecker
from selfplay_gym.eval.items import EvalItem
from selfplay_gym.eval.runner import evaluate
from selfplay_gym.types import Messages


class HeldOutAccuracy:
    """Solver accuracy on fixed questions: greedy and sampled (T=1), one batch each.

    ``problems`` have ``question`` and ``answer`` (``ArithmeticTask.held_out()``,
    ``QuestionSet.held_out()``); an answer is right when it equals the reference or, with a
    ``grader``, when the grader says so (exact match alone for arithmetic's integers)."""

    def __init__(self, backend: Backend, problems: Sequence[Any], adapter: str | None,
                 max_new_tokens: int = 24, seed: int = 1234,
                 grader: Callable[[str, str], bool] | None = None):
        self.backend, self.problems, self.adapter = backend, list(problems), adapter
        self.prompts = solver_prompts(p.question for p in self.problems)
        self.max_new_tokens, self.seed, self.grader = max_new_tokens, seed, grader

    def accuracy(self, temperature: float) -> float:
        sampling = SamplingConfig(temperature=temperature, max_new_tokens=self.max_new_tokens)
        with torch.random.fork_rng(devices=[]):  # evaluation never shifts training's randomness
            torch.manual_seed(self.seed)
            completions = self.backend.generate(self.prompts, [self.adapter] * len(self.prompts), sampling)
        answers = [extract_answer(c.text) for c in completions]
        right = sum(a == p.answer or (a is not None and self.grader is not None and self.grader(a, p.answer))
                    for a, p in zip(answers, self.problems, strict=True))
        return right / len(self.problems)

    def __call__(self) -> dict[str, float]:
        return {"eval/greedy_accuracy": self.accuracy(0.0), "eval/sampled_accuracy": self.accuracy(1.0)}


def held_out_evaluator(
    backend: Backend,
    items: Sequence[EvalItem] | Mapping[str, Sequence[EvalItem]],
    adapter: str | None = None,
    *,
    max_new_tokens: int = 256,
    batch_size: int = 64,
    checker: AnswerChecker | None = None,
    messages_fn: Callable[[EvalItem], Messages] = EvalItem.messages,
    prefix: str = "eval",
) -> Callable[[], dict[str, float]]:
    """A no-argument callable: greedy decoding of ``adapter`` on ``items``, nothing written.

    Returns ``{prefix/accuracy}`` (the macro average when ``items`` maps names to item lists)
    plus ``{prefix/<name>/accuracy}`` per named set and ``{prefix/no_answer}``. One answer
    checking worker is kept for all calls.
    """
    sets = dict(items) if isinstance(items, Mapping) else {"held_out": list(items)}
    if not any(sets.values()):
        raise ValueError("held_out_evaluator needs at least one item")
    checker = checker or AnswerChecker()

    def run() -> dict[str, float]:
        results = evaluate(
            backend,
            sets,
            adapter=adapter,
            max_new_tokens=max_new_tokens,
            batch_size=batch_size,
            progress=False,
            checker=checker,
            messages_fn=messages_fn,
        )
        scores = results["benchmarks"]
        out = {
            f"{prefix}/accuracy": sum(s["accuracy"] for s in scores.values()) / len(scores),
            f"{prefix}/no_answer": sum(s["no_answer"] for s in scores.values()) / len(scores),
        }
        if isinstance(items, Mapping):
            out |= {f"{prefix}/{name}/accuracy": s["accuracy"] for name, s in scores.items()}
        return out

    run.checker = checker  # type: ignore[attr-defined]  # close it when training ends
    return run

"""In-training evaluation: greedy accuracy on held-out items, as the trainer's ``evaluate`` hook.

>>> items = [math_item(f"arith-{i}", p.question, p.answer) for i, p in enumerate(problems)]
>>> hook = held_out_evaluator(backend, items, "solver", messages_fn=solver_messages)
>>> SelfPlayTrainer(..., evaluate=hook)        # logs {"eval/accuracy": ...}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from selfplay_gym.agents.policy import Backend
from selfplay_gym.eval.checking import AnswerChecker
from selfplay_gym.eval.items import EvalItem
from selfplay_gym.eval.runner import evaluate
from selfplay_gym.types import Messages


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

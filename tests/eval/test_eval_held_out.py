"""The trainer's evaluate hook: greedy accuracy on held-out items, as metrics."""

from __future__ import annotations

import pytest
from eval_helpers import ScriptedBackend

from selfplay_gym.eval.held_out import held_out_evaluator
from selfplay_gym.eval.items import choice_item, math_item


def test_hook_reports_accuracy_greedily_through_the_given_adapter():
    items = [math_item("a", "2+3", "5"), math_item("b", "4*4", "16")]
    seen = {}

    class Backend(ScriptedBackend):
        def generate(self, prompts, adapters, sampling):
            seen.update(adapters=set(adapters), temperature=sampling.temperature)
            return super().generate(prompts, adapters, sampling)

    hook = held_out_evaluator(Backend(lambda p, i: "\\boxed{5}"), items, "solver")
    assert hook() == {"eval/accuracy": 0.5, "eval/no_answer": 0.0}
    assert seen == {"adapters": {"solver"}, "temperature": 0.0}
    hook.checker.close()


def test_named_sets_and_custom_messages():
    sets = {
        "arith": [math_item("a", "2+3", "5")],
        "mcq": [choice_item("c", "Red planet?", ["Venus", "Mars"], "B")],
    }
    system = {"role": "system", "content": "Reason step by step."}
    backend = ScriptedBackend(lambda p, i: "\\boxed{B}" if "Options" in p else "none")
    hook = held_out_evaluator(
        backend, sets, messages_fn=lambda item: (system, *item.messages()), prefix="heldout"
    )
    metrics = hook()
    assert metrics["heldout/arith/accuracy"] == 0.0 and metrics["heldout/mcq/accuracy"] == 1.0
    assert metrics["heldout/accuracy"] == 0.5 and metrics["heldout/no_answer"] == 0.5
    with pytest.raises(ValueError, match="at least one item"):
        held_out_evaluator(backend, [])

"""The code model and the azr experts it learns from: valid proposals, right-or-near answers,
held-out tasks kept out of the demonstrations, and "tiny" meaning the mode's own model."""

from __future__ import annotations

import json
import warnings

import pytest

from selfplay_gym.agents.experts import mode_experts
from selfplay_gym.agents.tiny import SHIPPED, embedded_model_dir
from selfplay_gym.agents.tiny_code import (
    TinyCodeConfig,
    code_demonstrations,
    deduction_prompts,
    deduction_tasks,
)
from selfplay_gym.build import plan_run
from selfplay_gym.config import RunConfig
from selfplay_gym.envs.modes.azr_programs import last_block
from selfplay_gym.envs.sandbox import SandboxWarning
from selfplay_gym.envs.tasks.programs import ProgramBuffer
from selfplay_gym.envs.vector import SelfPlayVectorEnv


def test_expert_proposals_are_valid_and_solvers_are_right_about_as_often_as_set(isolated):
    experts = mode_experts("azr", problems=[], accuracy=0.7, seed=0, num_inputs=4)
    venv = SelfPlayVectorEnv.make("azr", 12, num_solvers=4, num_inputs=4, task=ProgramBuffer())
    episodes = [e for seed in (0, 12) for e in venv.rollout(experts, seed=seed).episodes]
    assert all(e.fields["proposal_valid"] for e in episodes)
    correct = [c for e in episodes for c in e.fields["correct"]]
    assert 0.5 < sum(correct) / len(correct) < 0.9
    assert {e.task["task_type"] for e in episodes} == {"deduction", "abduction", "induction"}
    assert len(venv.envs[0].task.triplets) > 10  # deduction and abduction proposals joined


def _pairs(demos) -> set[tuple[str | None, str | None]]:
    """(program, input) each demonstration shows: a proposal's own, or a solver's task."""
    return {(last_block(source, "python"), last_block(source, "input"))
            for role, messages, text in demos
            for source in [text if role == "proposer" else messages[-1]["content"]]}


def test_demonstrations_keep_valid_proposals_and_right_answers_and_skip_held_out_tasks():
    config = TinyCodeConfig(num_episodes=64, num_inputs=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SandboxWarning)
        everything = code_demonstrations(config, set())
        shown = sorted(p for p in _pairs(everything) if p[0] and p[1])[:5]
        kept = code_demonstrations(config, set(shown))
    assert {role for role, _, _ in everything} == {"proposer", "solver"}
    assert len(shown) == 5 and not set(shown) & _pairs(kept) and len(kept) < len(everything)
    assert all("```" in text for _, _, text in kept)


def test_held_out_deduction_prompts_come_from_the_env():
    tasks = deduction_tasks(3, 1, ("slice_string",))
    prompts = deduction_prompts(tasks)
    program, given, _ = tasks[0]
    assert program.rstrip() in prompts[0][-1]["content"] and given in prompts[0][-1]["content"]
    assert deduction_tasks(3, 1, ("slice_string",)) == tasks  # deterministic


def test_the_code_model_is_shipped_and_tiny_means_the_modes_embedded_model():
    path = embedded_model_dir("tiny-code")
    assert path.parent == SHIPPED
    info = json.loads((path / "build.json").read_text())
    assert info["fingerprint"] == TinyCodeConfig().fingerprint()
    assert 0.0 < info["held_out_deduction_accuracy"] < 1.0
    assert plan_run(RunConfig(mode="azr")).cfg.model.name == "tiny-code"
    assert plan_run(RunConfig(mode="rzero")).cfg.model.name == "tiny"
    with pytest.raises(ValueError, match="choose one of"):
        embedded_model_dir("tiny-vision")

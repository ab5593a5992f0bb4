"""Held-out accuracy for the code domain: the azr solver's deduction accuracy on template
programs it never trained on, greedy and sampled, as ``HeldOutAccuracy`` is for arithmetic."""

from __future__ import annotations

import torch

from selfplay_gym.agents.policy import Backend, SamplingConfig
from selfplay_gym.agents.tiny_code import (
    HELD_OUT_SEED,
    HELD_OUT_SIZE,
    deduction_prompts,
    deduction_tasks,
)
from selfplay_gym.envs.modes.azr_programs import last_block, same_value


class DeductionAccuracy:
    """Share of held-out deduction tasks whose last ```output block is the program's output."""

    def __init__(self, backend: Backend, adapter: str | None, *, n: int = HELD_OUT_SIZE,
                 families: tuple[str, ...] = ("slice_case",), max_new_tokens: int = 32,
                 seed: int = 1234):
        self.backend, self.adapter, self.max_new_tokens, self.seed = backend, adapter, max_new_tokens, seed
        self.tasks = deduction_tasks(n, HELD_OUT_SEED, families)
        self.prompts = deduction_prompts(self.tasks)

    def accuracy(self, temperature: float) -> float:
        sampling = SamplingConfig(temperature=temperature, max_new_tokens=self.max_new_tokens)
        with torch.random.fork_rng(devices=[]):  # evaluation never shifts training's randomness
            torch.manual_seed(self.seed)
            completions = self.backend.generate(self.prompts, [self.adapter] * len(self.prompts), sampling)
        right = sum(same_value(last_block(c.text, "output"), out)
                    for c, (_, _, out) in zip(completions, self.tasks, strict=True))
        return right / len(self.tasks)

    def __call__(self) -> dict[str, float]:
        return {"eval/greedy_accuracy": self.accuracy(0.0), "eval/sampled_accuracy": self.accuracy(1.0)}

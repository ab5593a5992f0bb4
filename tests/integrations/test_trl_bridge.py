"""TRL's GRPOTrainer trains the R-Zero Solver through our env, on the real tiny model."""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer

from selfplay_gym.agents.scripted import DatasetQuestioner, MajorityJudge
from selfplay_gym.envs.tasks import ArithmeticTask
from selfplay_gym.integrations.trl import env_reward, make_rollout_func

trl = pytest.importorskip("trl")


def test_grpo_trainer_runs_steps_on_env_rollouts(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TRL_EXPERIMENTAL_SILENCE", "1")
    task = ArithmeticTask(levels=(1,))
    rollout = make_rollout_func(
        "rzero", "solver",
        {"questioner": DatasetQuestioner(task.problems(64, seed=0)), "judge": MajorityJudge()},
        band_low=0.0, task=task,
    )
    calls = []

    def counted(prompts, trainer):
        out = rollout(prompts, trainer)
        calls.append((len(prompts), len(out["completion_ids"]), list(out["env_reward"])))
        return out

    args = trl.GRPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=4,
        max_completion_length=16, max_steps=2, report_to=[], use_cpu=True, bf16=False,
        learning_rate=1e-3, save_strategy="no", logging_steps=1,
    )
    trainer = trl.GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_dir), reward_funcs=env_reward, args=args,
        train_dataset=Dataset.from_dict({"prompt": [[{"role": "user", "content": "play"}]] * 16}),
        processing_class=AutoTokenizer.from_pretrained(tiny_dir), rollout_func=counted,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    trainer.train()
    assert calls and all(n_prompts == n_rows == 8 for n_prompts, n_rows, _ in calls)
    assert all(r in (0.0, 1.0) for *_, rewards in calls for r in rewards)
    lora_b = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert any(torch.count_nonzero(p) > 0 for p in lora_b), "the Solver's adapter was updated"

"""R-Zero on models of other architectures: a random-init Llama and GPT-2, saved locally the
way a hub download is, each trained for one iteration through the same entry point as the CLI.

    python examples/other_architectures.py [--out runs/architectures]

Nothing here is special-cased per architecture: the model directory goes to
``--model.name``, LoRA targets every linear layer (GPT-2's fused ``Conv1D`` included) and the
embedded tiny model's tokenizer, with its chat template, comes along.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from selfplay_gym.agents.tiny import tiny_model_dir
from selfplay_gym.algorithms.trainer import TrainConfig
from selfplay_gym.algorithms.update import UpdateConfig
from selfplay_gym.build import train_from_config
from selfplay_gym.config import ModelConfig, RolloutConfig, RunConfig


def save_random(kind: str, path: Path) -> Path:
    """A small random-init model of ``kind`` with the tiny model's tokenizer, saved to ``path``."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir(progress=False))
    ids = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
               eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                             num_attention_heads=2, num_key_value_heads=1,
                                             max_position_embeddings=1024, **ids))
    else:
        model = GPT2LMHeadModel(GPT2Config(n_embd=64, n_layer=2, n_head=2, n_positions=1024, **ids))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def train_one_iteration(model_dir: Path, output_dir: Path) -> dict:
    cfg = RunConfig(
        mode="rzero",
        model=ModelConfig(name=str(model_dir)),
        rollout=RolloutConfig(num_envs=2, num_solvers=4, max_new_tokens=16),
        train=TrainConfig(iterations=1, output_dir=str(output_dir), progress=False,
                          update=UpdateConfig(minibatch_size=8, micro_batch_size=4)),
    )
    return train_from_config(cfg, overwrite=True)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/architectures"))
    args = parser.parse_args()
    for kind in ("llama", "gpt2"):
        model_dir = save_random(kind, args.out / f"{kind}-model")
        row = train_one_iteration(model_dir, args.out / f"{kind}-run")
        trained = sorted(k.split("/")[1] for k, v in row.items()
                         if k.startswith("update/") and k.endswith("/optimizer_steps") and v > 0)
        print(f"{kind}: one R-Zero iteration, trained {trained}, "
              f"{row['tokens/generated']} tokens generated")


if __name__ == "__main__":
    main()

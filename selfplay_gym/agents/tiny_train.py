"""The tiny model's weights and its supervised warm start: a Qwen3 from a config, seeded
batches, greedy evaluation, and the training loop that stops at partial competence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from selfplay_gym.agents.tiny_config import TinyModelConfig
from selfplay_gym.agents.tiny_demos import solver_prompts
from selfplay_gym.agents.tiny_tokenizer import IM_END, Example, render_prompt
from selfplay_gym.envs.tasks import Problem
from selfplay_gym.envs.verify import extract_answer
from selfplay_gym.types import Messages


def make_model(config: TinyModelConfig, tokenizer: PreTrainedTokenizerFast) -> Qwen3ForCausalLM:
    torch.manual_seed(config.seed)
    model = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, num_key_value_heads=config.num_kv_heads,
        head_dim=config.head_dim, max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    ))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def _encode(tokenizer: PreTrainedTokenizerFast, examples: Sequence[Example]) -> list:
    """(input ids, labels) per example: the loss sees the target and its ``<|im_end|>`` only."""
    encoded = []
    for messages, target in examples:
        prompt = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False).input_ids
        answer = tokenizer(target + IM_END, add_special_tokens=False).input_ids
        encoded.append((prompt + answer, [-100] * len(prompt) + answer))
    return encoded


def _batches(encoded: list, batch_size: int, pad_id: int, seed: int) -> Iterator[list[dict]]:
    """Endless seeded batches, each split into one or two right-padded micro-batches.

    Roles are mixed at random in every batch: role-pure batches (length bucketing) made the
    accuracy swing and come about twice as late. Cutting a batch where padding costs least
    keeps short solver prompts from being padded to a judge prompt's length.
    """
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(encoded), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            rows = sorted((encoded[i] for i in order[start : start + batch_size]),
                          key=lambda row: len(row[0]))
            yield [_pad(part, pad_id) for part in _cut(rows) if part]


def _cut(rows: list) -> tuple[list, list]:
    """Length-sorted rows in two runs, cut where padding costs least, if that saves a fifth."""
    n, lengths = len(rows), [len(ids) for ids, _ in rows]
    costs = [k * lengths[k - 1] + (n - k) * lengths[-1] for k in range(1, n)]
    best = int(np.argmin(costs)) if costs else 0
    cut = best + 1 if costs and costs[best] < 0.8 * n * lengths[-1] else n
    return rows[:cut], rows[cut:]


def _pad(rows: list, pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    return {  # each [B, T]
        "input_ids": torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in rows]),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows]),
        "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in rows]),
    }


@torch.no_grad()
def generate_texts(
    model: Any, tokenizer: PreTrainedTokenizerFast, prompts: Sequence[Messages], *,
    batch_size: int = 64, max_new_tokens: int = 16, **sampling: Any,
) -> list[str]:
    """Completions for chat prompts, batched with left padding; greedy unless given sampling
    arguments (``temperature=1.0``, ``top_p``, ...)."""
    texts = []
    for start in range(0, len(prompts), batch_size):
        chunk = [render_prompt(tokenizer, m) for m in prompts[start : start + batch_size]]
        inputs = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="left",
                           add_special_tokens=False).to(model.device)
        output = model.generate(**inputs, max_new_tokens=max_new_tokens,
                                do_sample=bool(sampling), **sampling)
        texts += tokenizer.batch_decode(output[:, inputs.input_ids.shape[1]:],
                                        skip_special_tokens=True)
    return texts


def greedy_solver_accuracy(
    model: Any, tokenizer: PreTrainedTokenizerFast, problems: Sequence[Problem], *,
    batch_size: int = 64,
) -> float:
    """Share of problems whose greedy R-Zero solver answer (its last ``\\boxed{}``) is exact."""
    was_training = model.training
    model.eval()
    prompts = solver_prompts(p.question for p in problems)
    texts = generate_texts(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=48)
    model.train(was_training)
    hits = [extract_answer(t) == p.answer for t, p in zip(texts, problems, strict=True)]
    return sum(hits) / len(problems)



def train_warm_start(
    model: Any, tokenizer: PreTrainedTokenizerFast, examples: Sequence[Example],
    validation: Sequence[Problem], config: TinyModelConfig, progress: bool = True,
    evaluate: Callable[[Any, PreTrainedTokenizerFast], float] | None = None,
) -> list[dict[str, float]]:
    """Supervised steps until validation accuracy reaches the target; returns the checks.

    ``evaluate(model, tokenizer)`` measures the accuracy; by default the greedy R-Zero solver
    accuracy on ``validation``."""
    if evaluate is None:
        def evaluate(model, tokenizer):
            return greedy_solver_accuracy(model, tokenizer, validation)

    device, history = model.device, []
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  betas=(0.9, 0.98), weight_decay=0.0)
    batches = _batches(_encode(tokenizer, examples), config.batch_size,
                       tokenizer.pad_token_id, config.seed)
    model.train()
    bar = tqdm(range(1, config.max_steps + 1), desc="warm start", disable=not progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * min(1.0, step / config.warmup_steps)
        parts = [{k: v.to(device) for k, v in part.items()} for part in next(batches)]
        targets = sum(int((part["labels"][:, 1:] != -100).sum()) for part in parts)
        optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        for part in parts:  # a token mean over the whole batch: each part's sum / all targets
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                part_loss = model(**part, num_items_in_batch=targets).loss
            part_loss.backward()
            loss += part_loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % config.eval_every == 0 or step == config.max_steps:
            accuracy = evaluate(model, tokenizer)
            history.append({"step": step, "loss": round(loss, 4), "validation_accuracy": accuracy})
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{accuracy:.2f}")
            if accuracy >= config.target_accuracy:
                break
    bar.close()
    model.eval()
    return history

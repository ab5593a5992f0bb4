"""Gradient checkpointing on a ~25M model: fewer activations kept for backward, same loss and
adapter gradients, base weights still frozen."""

from __future__ import annotations

import pytest
import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from selfplay_gym.agents.hf import CHECKPOINTING_ABOVE, HFBackend
from selfplay_gym.agents.tiny_tokenizer import build_tokenizer


def backend(checkpointing: bool, tokenizer) -> HFBackend:
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(tokenizer), hidden_size=512, intermediate_size=2048,
                         num_hidden_layers=6, num_attention_heads=8, num_key_value_heads=4,
                         head_dim=64, max_position_embeddings=512, tie_word_embeddings=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model = Qwen3ForCausalLM(config)
    learner = HFBackend(model, tokenizer, adapters=["solver"], gradient_checkpointing=checkpointing)
    with torch.no_grad():  # a non-zero adapter, so its gradients depend on the whole graph
        for name, param in learner.adapter_parameters("solver").items():
            if "lora_B" in name:
                param.normal_(0, 0.02, generator=torch.Generator().manual_seed(len(name)))
    return learner


def update_step(learner: HFBackend) -> tuple[float, dict[str, torch.Tensor], int]:
    """One loss and backward; returns the loss, the adapter's grads, bytes saved for backward."""
    generator = torch.Generator().manual_seed(1)
    vocab = len(learner.tokenizer)
    prompts = torch.randint(5, vocab, (4, 48), generator=generator).tolist()
    completions = torch.randint(5, vocab, (4, 80), generator=generator).tolist()
    saved = []

    def pack(tensor):
        saved.append(tensor.numel() * tensor.element_size())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logp, mask, _ = learner.train_logprobs("solver", prompts, completions)
        loss = -(logp * mask).sum() / mask.sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in learner.adapter_parameters("solver").items()}
    return loss.item(), grads, sum(saved)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(["What is 12+30? The answer is \\boxed{42}."] * 50, vocab_size=300)


def test_checkpointing_keeps_fewer_activations_and_the_same_gradients(tokenizer):
    plain, checkpointed = backend(False, tokenizer), backend(True, tokenizer)
    assert checkpointed.gradient_checkpointing and not plain.gradient_checkpointing
    loss, grads, kept = update_step(plain)
    loss_ckpt, grads_ckpt, kept_ckpt = update_step(checkpointed)
    assert kept_ckpt < 0.5 * kept, (kept_ckpt, kept)  # measured: 289 MiB -> 11 MiB (4 x 128 tokens)
    assert loss_ckpt == pytest.approx(loss, rel=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-4, atol=1e-7)
    base = [p for n, p in checkpointed.model.named_parameters() if "lora_" not in n]
    assert all(p.grad is None for p in base), "only the adapter trains"


def test_default_is_on_only_above_a_billion_parameters(tokenizer):
    assert CHECKPOINTING_ABOVE == 1_000_000_000
    small = backend(None, tokenizer)
    assert small.gradient_checkpointing is False

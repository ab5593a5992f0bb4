"""Per-token log-probs of completions under a model, laid out exactly as at sampling.

Prompts are left-padded and completions right-padded, so every completion starts at the same
column and position ids come from the attention mask, as ``generate`` computes them. Using
other positions would make the update silently off-policy. Only the completion columns are
turned into logits (``logits_to_keep``), which matters for 150k-token vocabularies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class PackedBatch:
    """A batch of (prompt, completion) pairs packed for one forward pass."""

    input_ids: torch.Tensor  # [B, P + T]
    attention_mask: torch.Tensor  # [B, P + T]
    position_ids: torch.Tensor  # [B, P + T]
    completion_ids: torch.Tensor  # [B, T]
    completion_mask: torch.Tensor  # [B, T] 1 on real completion tokens

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(*(t.to(device) for t in vars(self).values()))


def pack(prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]], pad_id: int) -> PackedBatch:
    """Left-pad prompts to a common width P, right-pad completions to T."""
    if len(prompt_ids) != len(completion_ids):
        raise ValueError(f"{len(prompt_ids)} prompts but {len(completion_ids)} completions")
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("every prompt needs at least one token")
    batch = len(prompt_ids)
    width = max(len(p) for p in prompt_ids)
    steps = max(1, max(len(c) for c in completion_ids))
    input_ids = torch.full((batch, width + steps), pad_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    completion_mask = torch.zeros((batch, steps), dtype=torch.long)
    for row, (prompt, completion) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
        input_ids[row, width - len(prompt) : width] = torch.as_tensor(prompt)
        input_ids[row, width : width + len(completion)] = torch.as_tensor(completion, dtype=torch.long)
        attention[row, width - len(prompt) : width + len(completion)] = 1
        completion_mask[row, : len(completion)] = 1
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    return PackedBatch(input_ids, attention, position_ids, input_ids[:, width:], completion_mask)


def completion_logprobs(
    model: torch.nn.Module,
    batch: PackedBatch,
    temperature: float = 1.0,
    with_entropy: bool = False,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``log softmax(logits / T)`` of each completion token: ([B, T], entropy [B, T] or None).

    Differentiable: the trainer calls it with grad enabled on the active adapter. The entropy
    carries gradients only with ``entropy_grad`` (an entropy bonus); as a metric it is computed
    without a graph, one row at a time, so it adds no vocabulary-sized tensors to the peak.
    """
    steps = batch.completion_ids.shape[1]
    logits = model(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
        logits_to_keep=steps + 1,
    ).logits[:, :-1]  # [B, T, V]: the logit at column t predicts token t + 1
    logp = torch.log_softmax(logits.float() / (temperature or 1.0), dim=-1)  # [B, T, V]
    token_logp = logp.gather(-1, batch.completion_ids[..., None]).squeeze(-1)  # [B, T]
    entropy = None  # [B, T]
    if with_entropy and entropy_grad:
        entropy = -(logp.exp() * logp).sum(-1)
    elif with_entropy:
        with torch.no_grad():
            entropy = torch.stack([-(row.exp() * row).sum(-1) for row in logp])
    return token_logp * batch.completion_mask, entropy


def score_completions(
    model: torch.nn.Module,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    *,
    temperature: float,
    batch_size: int,
    pad_id: int,
    device: torch.device,
) -> list[torch.Tensor]:
    """Chunked, so memory stays bounded: one 1-D tensor of log-probs per completion."""
    out: list[torch.Tensor] = []
    for start in range(0, len(prompt_ids), batch_size):
        stop = start + batch_size
        batch = pack(prompt_ids[start:stop], completion_ids[start:stop], pad_id).to(device)
        logp, _ = completion_logprobs(model, batch, temperature)
        lengths = batch.completion_mask.sum(-1).tolist()
        out.extend(logp[row, :n].float().cpu() for row, n in enumerate(lengths))
    return out

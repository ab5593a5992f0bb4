"""Chat messages -> prompt token ids, the one rule every backend uses.

The HF backend, the vLLM backend and the server all render with the tokenizer's chat template
(plain "role: content" lines when it has none) and cut from the left to fit the context, so a
prompt becomes the same token ids whichever engine samples it and the trainer scores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfplay_gym.types import Messages


@dataclass
class EncodedPrompt:
    """Prompt token ids, and how many tokens were cut from the left to fit the context."""

    ids: list[int]
    truncated: int = 0


def encode_chat(tokenizer: Any, messages: Messages) -> list[int]:
    """Chat template -> token ids, ending where the assistant's answer starts."""
    if not messages:
        raise ValueError("a generation request has no messages; every prompt needs at least one")
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
        )
    else:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def end_token_ids(tokenizer: Any, generation_config: Any = None) -> list[int]:
    """Every id that ends a turn: the tokenizer's eos and each one the model's generation config
    declares (chat models list several: Qwen's ``<|im_end|>`` and ``<|endoftext|>``)."""
    declared = getattr(generation_config, "eos_token_id", None)
    if isinstance(generation_config, dict):
        declared = generation_config.get("eos_token_id")
    ids = [tokenizer.eos_token_id] + (declared if isinstance(declared, list) else [declared])
    return list(dict.fromkeys(int(i) for i in ids if i is not None))


def fit_context(ids: list[int], max_context: int, max_new_tokens: int) -> tuple[list[int], int]:
    """Cut a prompt from the left so prompt + completion fit: (kept ids, tokens dropped)."""
    budget = max_context - max_new_tokens
    if budget < 1:
        raise ValueError(
            f"max_new_tokens={max_new_tokens} leaves no room for a prompt in a context of "
            f"{max_context} tokens; lower max_new_tokens or raise max_context"
        )
    dropped = max(0, len(ids) - budget)
    return ids[dropped:], dropped

"""Chat messages -> prompt token ids, the one rule every backend uses.

The HF backend, the vLLM backend and the server all render with the tokenizer's chat template
(plain "role: content" lines when it has none) and cut from the left to fit the context, so a
prompt becomes the same token ids whichever engine samples it and the trainer scores it.
A template that refuses a system role (Gemma's) gets the system prompt folded into the first
user turn. Both fallbacks are warned about once per model; ``--model.chat-template`` (or
``HFBackend(chat_template=...)``) gives a model the template it lacks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from selfplay_gym.types import Messages

TEMPLATE_OPTION = ("--model.chat-template (a jinja string or a file; selfplay-gym serve "
                   "--chat-template, HFBackend(chat_template=...))")
_warned: set[tuple[str, str]] = set()
"""(fallback, model) pairs already warned about: each is said once per process."""


@dataclass
class EncodedPrompt:
    """Prompt token ids, and how many tokens were cut from the left to fit the context."""

    ids: list[int]
    truncated: int = 0


def encode_chat(tokenizer: Any, messages: Messages) -> list[int]:
    """Chat template -> token ids, ending where the assistant's answer starts."""
    if not messages:
        raise ValueError("a generation request has no messages; every prompt needs at least one")
    return tokenizer(render_chat(tokenizer, messages), add_special_tokens=False)["input_ids"]


def render_chat(tokenizer: Any, messages: Messages) -> str:
    """The prompt text: the chat template's, with the system prompt folded into the first user
    turn where the template refuses a system role; "role: content" lines where there is none."""
    chat, model = [dict(m) for m in messages], tokenizer.name_or_path or "this model"
    if not tokenizer.chat_template:
        _warn_once("plain", model, f"{model} has no chat template, so prompts are plain "
                   f"'role: content' lines; set one with {TEMPLATE_OPTION}")
        return "".join(f"{m['role']}: {m['content']}\n" for m in chat) + "assistant: "
    try:
        return _apply(tokenizer, chat)
    except jinja2.exceptions.TemplateError as exc:
        if not any(m["role"] == "system" for m in chat):
            raise ValueError(f"the chat template of {model} refuses the prompt ({exc}); "
                             f"set a template that takes it with {TEMPLATE_OPTION}") from exc
        refusal = exc
    try:
        text = _apply(tokenizer, fold_system(chat))
    except jinja2.exceptions.TemplateError as exc:
        raise ValueError(f"the chat template of {model} refuses the prompt ({exc}), even with the "
                         f"system prompt folded into the first user turn; set a template that "
                         f"takes it with {TEMPLATE_OPTION}") from exc
    _warn_once("fold", model, f"the chat template of {model} refuses a system role ({refusal}), "
               "so the system prompt is folded into the first user turn")
    return text


def _apply(tokenizer: Any, chat: list[dict[str, str]]) -> str:
    # passed explicitly: vLLM's tokenizer renders on copies made before a template was set
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    return tokenizer.apply_chat_template(
        chat, chat_template=template, tokenize=False, add_generation_prompt=True
    )


def _warn_once(fallback: str, model: str, message: str) -> None:
    if (fallback, model) not in _warned:
        _warned.add((fallback, model))
        warnings.warn(message, stacklevel=4)


def fold_system(chat: list[dict[str, str]]) -> list[dict[str, str]]:
    """The system messages joined onto the front of the first user turn.

    >>> fold_system([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "1"}])
    [{'role': 'user', 'content': 'Be brief.\\n\\n1'}]
    """
    system = "\n\n".join(m["content"] for m in chat if m["role"] == "system")
    rest = [dict(m) for m in chat if m["role"] != "system"]
    first = next((i for i, m in enumerate(rest) if m["role"] == "user"), None)
    if first is None:
        return [{"role": "user", "content": system}, *rest]
    rest[first]["content"] = f"{system}\n\n{rest[first]['content']}"
    return rest


def read_chat_template(value: str) -> str:
    """A jinja chat template given inline, or read from the file ``value`` names."""
    if "{{" in value or "{%" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"chat template {value!r} is neither a jinja template (it has no "
                                "{{ or {%) nor a file that exists")
    return path.read_text()


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

"""Finished rows -> OpenAI's JSON: choices, log-probs in chat's and in completions' layout, usage.

Chat log-probs are ``{"content": [{token, logprob, bytes, top_logprobs: [...]}]}``; plain
completions' are the legacy parallel lists ``tokens``, ``token_logprobs``, ``top_logprobs``
(one ``{token: logprob}`` dict per position, the sampled token included, as vLLM gives it) and
``text_offset``. With ``echo`` the prompt's tokens come first, the very first without a
log-prob (None), as in OpenAI's legacy API. Streaming (streaming.py) builds its chunks from
the same pieces.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Sequence
from typing import Any

from selfplay_gym.serve.decoder import Row
from selfplay_gym.serve.protocol import ChatCompletionRequest, CompletionRequest

Top = list[tuple[int, float]]


class Responses:
    """Builds response bodies with one tokenizer; token texts are cached."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._texts: dict[int, str] = {}

    def token_text(self, token: int, as_id: bool) -> str:
        if as_id:
            return f"token_id:{token}"
        if token not in self._texts:
            self._texts[token] = self.tokenizer.decode([token])
        return self._texts[token]

    # --- chat ------------------------------------------------------------------------------
    def chat_entries(
        self, tokens: Sequence[int], logprobs: Sequence[float], tops: Sequence[Top], as_id: bool
    ) -> list[dict]:
        """``logprobs.content`` of a chat choice: one entry per token, with its alternatives."""

        def entry(token: int, logprob: float) -> dict:
            text = self.token_text(token, as_id)
            return {"token": text, "logprob": logprob, "bytes": list(text.encode())}

        return [
            entry(token, logprob) | {"top_logprobs": [entry(t, lp) for t, lp in top]}
            for token, logprob, top in zip(tokens, logprobs, tops, strict=True)
        ]

    def chat_choice(self, index: int, row: Row, request: ChatCompletionRequest) -> dict:
        choice: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": row.text},
            "logprobs": None,
            "finish_reason": row.finish_reason,
            "stop_reason": row.stop_reason,
        }
        if request.logprobs:
            entries = self.chat_entries(
                row.tokens, row.logprobs, row.top, request.return_tokens_as_token_ids
            )
            choice["logprobs"] = {"content": entries}
        if request.return_token_ids:
            choice["token_ids"] = row.tokens
        return choice

    # --- completions -----------------------------------------------------------------------
    def legacy_logprobs(
        self,
        tokens: Sequence[int],
        logprobs: Sequence[float | None],
        tops: Sequence[Top | None],
        request: CompletionRequest,
        offset: int = 0,
    ) -> dict:
        """Completions' ``logprobs`` over ``tokens``, text offsets counted from ``offset``."""
        as_id = request.return_tokens_as_token_ids
        texts = [self.token_text(t, as_id) for t in tokens]
        offsets = [offset + o for o in itertools.accumulate((len(t) for t in texts), initial=0)]
        top_logprobs = None
        if request.alternatives:
            top_logprobs = []
            for token, logprob, top in zip(tokens, logprobs, tops, strict=True):
                if logprob is None:  # the echoed prompt's first token
                    top_logprobs.append(None)
                    continue
                alternatives = {self.token_text(t, as_id): lp for t, lp in top}
                top_logprobs.append(alternatives | {self.token_text(token, as_id): logprob})
        return {
            "tokens": texts,
            "token_logprobs": list(logprobs),
            "top_logprobs": top_logprobs,
            "text_offset": offsets[:-1],
        }

    def prompt_text(self, prompt: str | list[int]) -> str:
        """What echo repeats: the prompt as sent, token ids decoded."""
        return prompt if isinstance(prompt, str) else self.tokenizer.decode(prompt)

    def echo_logprobs(self, row: Row, request: CompletionRequest) -> dict:
        """The echoed prompt's part of a completion's ``logprobs``."""
        logprobs = [lp for lp, _ in row.echo]
        return self.legacy_logprobs(row.prompt_ids, logprobs, [t for _, t in row.echo], request)

    def completion_choice(
        self, index: int, row: Row, request: CompletionRequest, prompt: str | list[int]
    ) -> dict:
        echoed = self.prompt_text(prompt) if request.echo else ""
        choice: dict[str, Any] = {
            "index": index,
            "text": echoed + row.text,
            "logprobs": None,
            "finish_reason": row.finish_reason,
            "stop_reason": row.stop_reason,
        }
        if request.logprobs is not None:
            mine = self.legacy_logprobs(row.tokens, row.logprobs, row.top, request, len(echoed))
            if request.echo:
                head = self.echo_logprobs(row, request)
                mine = {k: None if v is None else head[k] + v for k, v in mine.items()}
            choice["logprobs"] = mine
        if request.return_token_ids:
            choice["prompt_token_ids"] = row.prompt_ids
            choice["token_ids"] = row.tokens
        return choice


def usage(rows: Sequence[Row], n: int) -> dict:
    """Prompt tokens count once per prompt, not once per choice."""
    prompt = sum(len(r.prompt_ids) for r in rows[::n])
    completion = sum(len(r.tokens) for r in rows)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def envelope(kind: str, model: str, choices: list[dict], used: dict | None, id_: str = "") -> dict:
    prefix = "chatcmpl" if kind.startswith("chat.completion") else "cmpl"
    return {
        "id": id_ or f"{prefix}-{uuid.uuid4().hex}",
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": used,
    }

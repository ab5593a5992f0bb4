"""The OpenAI wire format, as ``OpenAIBackend`` reads it: server URLs, chat-completion answers
checked into Completions, error bodies, Retry-After, and the one error a failed batch raises.

Pure functions of a URL, a response or its JSON, so the parsing is tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import httpx

from selfplay_gym.types import Completion

_TOKEN_ID = re.compile(r"token_id:(\d+)")


class ServerError(RuntimeError):
    """A request failed, and with it its whole batch: server down, request refused, or garbage."""

    def __init__(
        self, message: str, *, status: int | None = None, request_index: int | None = None
    ):
        super().__init__(message)
        self.status = status
        self.request_index = request_index


def parse_chat(
    data: Mapping[str, Any], n: int, *, need_logprobs: bool, need_ids: bool
) -> list[Completion]:
    """An OpenAI chat-completion answer with ``n`` choices -> Completions, checked."""
    choices = data["choices"]
    if not isinstance(choices, list) or len(choices) != n:
        raise ValueError(
            f"expected {n} choices, got {len(choices) if isinstance(choices, list) else choices!r}"
        )
    out = []
    for choice in sorted(choices, key=lambda c: c.get("index", 0)):
        content = (choice.get("logprobs") or {}).get("content") or []
        logprobs = [float(item["logprob"]) for item in content]
        ids = choice.get("token_ids") or _ids_from_tokens(content)
        prompt_ids = choice.get("prompt_token_ids") or data.get("prompt_token_ids") or []
        if need_logprobs and not logprobs:
            raise ValueError("no per-token log-probs: the server must support logprobs=true")
        if need_ids and not (ids and prompt_ids):
            raise ValueError(
                "no token ids: the server must answer prompt_token_ids and choices[i].token_ids "
                "(vLLM >= 0.10.2 or selfplay-gym serve); pass token_ids=False for text-only use"
            )
        if ids and logprobs and len(ids) != len(logprobs):
            raise ValueError(f"{len(ids)} token ids but {len(logprobs)} log-probs")
        reason = choice.get("finish_reason")
        if reason not in ("stop", "length"):
            raise ValueError(f"finish_reason {reason!r}, expected 'stop' or 'length'")
        out.append(
            Completion(
                text=choice["message"].get("content") or "",
                prompt_ids=[int(i) for i in prompt_ids],
                completion_ids=[int(i) for i in ids],
                logprobs=logprobs,
                finish_reason=reason,
            )
        )
    return out


def api_root(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is kept as given."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(path="/v1")) if parsed.path in ("", "/") else url.rstrip("/")


def _ids_from_tokens(content: list[dict]) -> list[int]:
    """vLLM's ``return_tokens_as_token_ids`` spells each token ``token_id:<id>``."""
    matches = [_TOKEN_ID.fullmatch(str(item.get("token", ""))) for item in content]
    return [int(m.group(1)) for m in matches] if matches and all(matches) else []


def response_json(response: httpx.Response, where: str, index: int | None) -> dict:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ServerError(
            f"{where}: HTTP {response.status_code} with a body that is not a JSON object: "
            f"{response.text[:300]!r}",
            status=response.status_code,
            request_index=index,
        )
    return data


def error_message(response: httpx.Response) -> str:
    """The server's reason: OpenAI's ``{"error": {"message"}}``, vLLM's older flat form, or text."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:300] or "(empty body)"
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])
    return str(data)[:300]


def retry_after(response: httpx.Response, cap: float) -> float:
    try:
        return min(cap, float(response.headers.get("retry-after", 0)))
    except ValueError:
        return 0.0


def attempts_failed(
    where: str, causes: list[str], servers: str, index: int | None, gave_up: str = ""
) -> ServerError:
    """The error of a request whose every attempt failed: each attempt's cause, in order."""
    earlier = f" (earlier: {'; '.join(causes[:-1])})" if len(causes) > 1 else ""
    last = causes[-1].split(": ", 1)[-1] if causes else "none: no attempt could start"
    return ServerError(
        f"{where} failed after {len(causes)} attempts{gave_up}; last error {last}{earlier}. Is "
        f"the server at {servers} running and reachable (e.g. `selfplay-gym serve --model M "
        "--port N` or `vllm serve M --enable-lora`)?",
        request_index=index,
    )


def deadline_passed(
    deadline: float, total: int, answered: int, unfinished: dict[int, list[str]]
) -> ServerError:
    """The error of a batch still unfinished at its deadline, naming what each request tried."""
    shown = [
        f"request {i}: {'; '.join(causes) if causes else 'no failed attempt yet'}"
        for i, causes in list(unfinished.items())[:3]
    ]
    more = f"; and {len(unfinished) - 3} more" if len(unfinished) > 3 else ""
    return ServerError(
        f"a batch of {total} requests did not finish within its deadline of {deadline:g} s "
        f"({answered} answered; {' | '.join(shown)}{more}). The unfinished requests were "
        "cancelled (the server drops them); raise deadline= if the server is just slow",
        request_index=next(iter(unfinished), None),
    )

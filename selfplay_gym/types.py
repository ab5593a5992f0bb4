"""The shared records every layer speaks: messages, turns, episodes, completions, the Policy protocol.

Nothing here imports a model or an environment, so envs/, agents/ and algorithms/ can all
depend on it without depending on each other.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

Message = Mapping[str, str]
"""One chat message: ``{"role": "system" | "user" | "assistant", "content": str}``."""

Messages = tuple[Message, ...]
"""A chat prompt. A tuple, not a list: PettingZoo's ``Sequence`` space accepts only tuples."""


@dataclass
class Turn:
    """One action of one agent inside an episode, as the mode parsed it."""

    agent: str
    role: str
    text: str
    parsed: dict[str, Any]
    valid: bool
    error: str | None = None


@dataclass
class Episode:
    """Everything one episode produced. Reward functions read it; logs write it.

    ``task`` is what the task source handed out (difficulty, document, ...); its ``reference``
    entry, when present, is ground truth for evaluation only and no mode reward reads it.
    ``fields`` holds the mode's structured results (question, answers, majority, ...).
    ``reward_terms`` keeps each agent's reward broken down, so a log can say why.
    """

    mode: str
    episode_id: str
    seed: int | None = None
    task: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    fields: dict[str, Any] = field(default_factory=dict)
    rewards: dict[str, float] = field(default_factory=dict)
    reward_terms: dict[str, dict[str, float]] = field(default_factory=dict)
    group_ids: dict[str, str] = field(default_factory=dict)

    def turns_of(self, role: str) -> list[Turn]:
        return [t for t in self.turns if t.role == role]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kwargs)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Episode:
        data = dict(data)
        data["turns"] = [Turn(**t) for t in data.get("turns", [])]
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Episode:
        return cls.from_dict(json.loads(text))


def json_line(row: Any) -> str:
    """``row`` as one JSONL line (newline included) that a UTF-8 file always accepts.

    Readable UTF-8 where possible; a row holding a lone surrogate ('\\ud800': agents may write
    any code point) is ``\\u``-escaped throughout instead, which ``json.loads`` reads back to
    the same text (a high and a low surrogate side by side, as in any JSON, come back as the
    one character they encode)."""
    text = json.dumps(row, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(row)
    return text + "\n"


@dataclass(frozen=True)
class Request:
    """What a policy is asked to act on: one agent's observation plus its info dict.

    LLM policies read ``messages`` only; scripted agents (a majority judge, a reference judge)
    may read the structured ``info`` the environment publishes for that agent.
    """

    agent: str
    role: str
    messages: Messages
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class Completion:
    """A policy's answer to one Request.

    ``text`` is what the environment sees. The token-level fields are what a trainer needs and
    stay empty for scripted policies: ``logprobs[i]`` is the sampling policy's log-probability
    of ``completion_ids[i]``. ``finish_reason`` is "stop" (end of turn), "length" (cut at
    max_new_tokens) or "scripted"; ``prompt_truncated`` counts prompt tokens cut to fit the
    context (0 normally).
    """

    text: str
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "stop"
    prompt_truncated: int = 0


@runtime_checkable
class Policy(Protocol):
    """Anything that acts: an LLM backend view, a scripted agent, a remote server.

    ``generate`` is batched: one call serves every pending request of every environment, and
    returns exactly one Completion per Request, in order.
    """

    def generate(self, requests: Sequence[Request]) -> list[Completion]: ...


@dataclass
class Sample:
    """One trainable completion: who wrote it, in which group, what it earned.

    ``old_logprobs`` are the sampling policy's per-token log-probs (the PPO ratio's
    denominator); ``group_id`` says which samples share a baseline.
    """

    role: str
    agent: str
    episode_id: str
    group_id: str
    prompt_ids: list[int]
    completion_ids: list[int]
    old_logprobs: list[float]
    reward: float
    finish_reason: str = "stop"

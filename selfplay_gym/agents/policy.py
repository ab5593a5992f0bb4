"""LLM policies: which adapter and which sampling options each role uses on a shared backend.

One ``LLMPolicy`` serves every role it is given from one backend, so the vector env hands it
all of a tick's requests (questioner and solver prompts of many episodes) in one call, and
the backend batches them into one mixed-adapter ``generate``. ``policy.roles_map()`` gives
the role -> policy mapping the vector env takes; scripted agents join it by plain dict union.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from selfplay_gym.types import Completion, Messages, Request


@dataclass(frozen=True)
class SamplingConfig:
    """How a role samples. ``temperature=0`` is greedy decoding."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0 disables top-k."""
    max_new_tokens: int = 256

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


@dataclass(frozen=True)
class RoleConfig:
    """A role's view onto a backend: its LoRA adapter (None = the bare base) and sampling."""

    adapter: str | None = None
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


class Backend(Protocol):
    """A generation engine: transformers (hf.py), vLLM, or an OpenAI-compatible server."""

    def generate(
        self, prompts: Sequence[Messages], adapters: Sequence[str | None], sampling: SamplingConfig
    ) -> list[Completion]: ...


class LLMPolicy:
    """Plays the given roles with one backend; requests of one call may mix roles.

    >>> policy = LLMPolicy(backend, {"questioner": RoleConfig("questioner"),
    ...                              "solver": RoleConfig("solver")})
    >>> policies = policy.roles_map() | {"judge": MajorityJudge()}
    """

    def __init__(self, backend: Backend, roles: Mapping[str, RoleConfig | str | None]):
        if not roles:
            raise ValueError("LLMPolicy needs at least one role, e.g. {'solver': RoleConfig('solver')}")
        self.backend = backend
        self.roles = {
            role: spec if isinstance(spec, RoleConfig) else RoleConfig(adapter=spec)
            for role, spec in roles.items()
        }

    def roles_map(self) -> dict[str, LLMPolicy]:
        return dict.fromkeys(self.roles, self)

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        unknown = sorted({r.role for r in requests} - set(self.roles))
        if unknown:
            raise ValueError(f"this LLMPolicy plays {sorted(self.roles)}, not {unknown}")
        # One backend call per distinct sampling config; adapters may mix within a call.
        by_sampling: dict[SamplingConfig, list[int]] = {}
        for index, request in enumerate(requests):
            by_sampling.setdefault(self.roles[request.role].sampling, []).append(index)
        out: list[Completion | None] = [None] * len(requests)
        for sampling, indices in by_sampling.items():
            completions = self.backend.generate(
                [requests[i].messages for i in indices],
                [self.roles[requests[i].role].adapter for i in indices],
                sampling,
            )
            for i, completion in zip(indices, completions, strict=True):
                out[i] = completion
        return out  # type: ignore[return-value]

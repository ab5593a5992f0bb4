"""The OpenAI request bodies this server accepts, as pydantic models.

FastAPI validates every body against these, so a malformed request is answered 400 with the
field and the reason before it reaches the model. Unknown fields are ignored, as OpenAI
clients send many; fields we cannot honour (streaming, stop strings, echo, alternatives'
log-probs) are refused with a reason instead of being ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_MAX_TOKENS = 256


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: str = Field(min_length=1)
    content: str | list[TextPart]

    def text(self) -> str:
        return (
            self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        )


class GenerationRequest(BaseModel):
    """What chat and plain completions share: the model, sampling, and our token-id extras."""

    model_config = ConfigDict(extra="ignore")

    model: str
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=-1, description="0 or -1: off (vLLM's extension)")
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=256)
    stream: bool = False
    stop: str | list[str] | None = None
    return_token_ids: bool = Field(
        False, description="answer prompt_token_ids and choices[i].token_ids"
    )
    return_tokens_as_token_ids: bool = Field(
        False, description="spell log-prob tokens 'token_id:<id>'"
    )

    @model_validator(mode="after")
    def _supported(self):
        if self.stream:
            raise ValueError("stream=true is not supported by this server; send stream=false")
        if self.stop:
            raise ValueError(
                "stop strings are not supported by this server; generation stops at EOS"
            )
        return self

    @property
    def new_tokens(self) -> int:
        return self.max_completion_tokens or self.max_tokens or DEFAULT_MAX_TOKENS


class ChatCompletionRequest(GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(
        None, ge=0, le=0, description="only the sampled token's log-prob"
    )


class CompletionRequest(GenerationRequest):
    prompt: str | list[int] | list[str] | list[list[int]]
    logprobs: int | None = Field(None, ge=0, le=0, description="0: the sampled token's log-prob")
    echo: bool = False

    @model_validator(mode="after")
    def _prompts(self):
        if self.echo:
            raise ValueError("echo=true is not supported by this server")
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt is an empty list")
        return self

    def prompts(self) -> list[str | list[int]]:
        """One entry per prompt: text, or token ids."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(p, int) for p in self.prompt):
            return [list(self.prompt)]  # type: ignore[arg-type]
        return list(self.prompt)  # type: ignore[arg-type]


class LoadAdapterRequest(BaseModel):
    """vLLM's ``/v1/load_lora_adapter`` body."""

    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)


class UnloadAdapterRequest(BaseModel):
    """vLLM's ``/v1/unload_lora_adapter`` body."""

    lora_name: str = Field(min_length=1)

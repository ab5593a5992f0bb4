"""The OpenAI request bodies this server accepts, as pydantic models.

FastAPI validates every body against these, so a malformed request is answered 400 with the
field and the reason before it reaches the model. Every field that changes the answer is either
honoured or, when it asks for something this server does not do (``REFUSED``: tools,
structured output, beam search, ...), refused with a 400 naming it, all such fields of a
request at once (``refusals``). Unknown fields that change nothing (``user``, ``metadata``) are
ignored, as OpenAI clients send many.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_MAX_TOKENS = 256
"""Chat's max_tokens when a request sets none."""
COMPLETIONS_MAX_TOKENS = 16
"""Plain completions' default, as OpenAI's legacy endpoint and vLLM have it."""
MAX_LOGPROBS = 20
"""Most alternatives per token (OpenAI's chat limit and vLLM's default ``max_logprobs``)."""

GUIDED = "guided decoding is not implemented here"
REFUSED: dict[str, tuple[tuple[Any, ...], str]] = {
    # field: (values that ask for nothing, why any other value cannot be honoured)
    "response_format": (
        ({"type": "text"},),
        "structured output (JSON mode or schema) is not implemented here",
    ),
    "tools": (([],), "tool calling is not implemented here"),
    "tool_choice": (("none", "auto"), "tool calling is not implemented here"),
    "functions": (([],), "function calling is not implemented here"),
    "function_call": (("none", "auto"), "function calling is not implemented here"),
    "prompt_logprobs": (
        (),
        "prompt log-probs come from /v1/completions with echo=true and logprobs",
    ),
    "best_of": ((1,), "best_of is not implemented; ask for n choices"),
    "use_beam_search": ((False,), "beam search is not implemented"),
    "length_penalty": ((1.0,), "beam search is not implemented"),
    "repetition_penalty": ((1.0,), "use presence_penalty or frequency_penalty"),
    "min_p": ((0.0,), "min_p is not implemented; use top_p or top_k"),
    "suffix": ((), "insertion (suffix) is not implemented"),
    "guided_json": ((), GUIDED),
    "guided_regex": ((), GUIDED),
    "guided_choice": ((), GUIDED),
    "guided_grammar": ((), GUIDED),
    "structured_outputs": ((), GUIDED),
    "logits_processors": ((), "custom logits processors are not implemented"),
    "bad_words": (([],), "bad_words is not implemented; use logit_bias"),
    "allowed_token_ids": ((), "allowed_token_ids is not implemented; use logit_bias"),
    "truncate_prompt_tokens": ((), "prompts are never cut here; one that does not fit is refused"),
    "include_stop_str_in_output": ((False,), "the stop string is always left out of the text"),
    "skip_special_tokens": ((True,), "special tokens are always left out of the text"),
    "audio": ((), "only text is served"),
    "modalities": ((["text"],), "only text is served"),
    "prediction": ((), "predicted outputs are not implemented"),
}


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    role: str = Field(min_length=1)
    content: str | list[TextPart] | None
    """None only for an assistant turn (OpenAI's shape of one that called a tool): read as ""."""

    @model_validator(mode="after")
    def _content(self):
        if self.content is None and self.role != "assistant":
            raise ValueError(f"content is null in a {self.role!r} message; only assistant's may be")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        return (
            self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        )


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = Field(False, description="a last chunk with usage and no choices")


class GenerationRequest(BaseModel):
    """What chat and plain completions share: the model, sampling, and our token-id extras."""

    model_config = ConfigDict(extra="allow")  # kept in model_extra, for ``refusals``
    default_max_tokens: ClassVar[int] = DEFAULT_MAX_TOKENS

    model: str
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=-1, description="0 or -1: off (vLLM's extension)")
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=256)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    stop_token_ids: list[int] | None = Field(None, description="vLLM's: ids that end the answer")
    seed: int | None = Field(None, ge=-(2**63), lt=2**63, description="choice k draws from seed+k")
    presence_penalty: float = Field(0.0, ge=-2, le=2)
    frequency_penalty: float = Field(0.0, ge=-2, le=2)
    logit_bias: dict[int, float] | None = Field(None, description="token id -> bias in [-100, 100]")
    min_tokens: int = Field(0, ge=0, description="vLLM's: end tokens are masked until then")
    ignore_eos: bool = Field(False, description="vLLM's: generate on past EOS")
    return_token_ids: bool = Field(
        False, description="answer prompt_token_ids and choices[i].token_ids"
    )
    return_tokens_as_token_ids: bool = Field(
        False, description="spell log-prob tokens 'token_id:<id>'"
    )

    @model_validator(mode="after")
    def _checked(self):
        if any(not stop for stop in self.stops):
            raise ValueError("stop: an empty string would end every answer at once")
        if any(not -100 <= bias <= 100 for bias in (self.logit_bias or {}).values()):
            raise ValueError("logit_bias: every bias must lie in [-100, 100]")
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options: only allowed with stream=true")
        if self.min_tokens > self.new_tokens:
            raise ValueError(f"min_tokens={self.min_tokens} exceeds max_tokens={self.new_tokens}")
        return self

    @property
    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def refusals(self) -> list[tuple[str, str]]:
        """Every field of this request that asks for what the server does not do, with why."""
        refused = []
        for name, value in (self.model_extra or {}).items():
            if name in REFUSED and value is not None and value not in REFUSED[name][0]:
                refused.append((name, REFUSED[name][1]))
        return refused

    @property
    def new_tokens(self) -> int:
        return self.max_completion_tokens or self.max_tokens or self.default_max_tokens


class ChatCompletionRequest(GenerationRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)

    @model_validator(mode="after")
    def _alternatives(self):
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs=true")
        return self

    @property
    def alternatives(self) -> int:
        return self.top_logprobs or 0


class CompletionRequest(GenerationRequest):
    default_max_tokens: ClassVar[int] = COMPLETIONS_MAX_TOKENS
    prompt: str | list[int] | list[str] | list[list[int]]
    logprobs: int | None = Field(
        None, ge=0, le=MAX_LOGPROBS, description="alternatives per token besides the sampled one"
    )
    echo: bool = Field(False, description="answer the prompt first, scored with logprobs")
    max_tokens: int | None = Field(None, ge=0, description="0 (with echo): only score the prompt")

    @model_validator(mode="after")
    def _prompts(self):
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt is an empty list")
        if self.max_tokens == 0 and not self.echo:
            raise ValueError("max_tokens=0 asks for nothing; it goes with echo=true (scoring)")
        return self

    @property
    def alternatives(self) -> int:
        return self.logprobs or 0

    @property
    def new_tokens(self) -> int:
        if self.max_tokens == 0 and self.max_completion_tokens is None:
            return 0
        return super().new_tokens

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

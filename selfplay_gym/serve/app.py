"""The OpenAI-compatible HTTP API over the transformers backend (FastAPI).

Routes: ``GET /v1/models``, ``POST /v1/chat/completions``, ``POST /v1/completions``,
``POST /v1/load_lora_adapter``, ``GET /health``. The base model is served under one name and
each LoRA adapter under its own, as ``vllm serve --enable-lora`` does, so ``OpenAIBackend``
talks to either. Extras beyond OpenAI's schema, as vLLM spells them: ``return_token_ids``
(answers ``prompt_token_ids`` and ``choices[i].token_ids``), ``return_tokens_as_token_ids``
and ``top_k``. Log-probs are those of the temperature-scaled distribution, before top-k/top-p,
exactly as ``HFBackend`` records them. Errors are OpenAI's ``{"error": {"message", ...}}``.
"""

from __future__ import annotations

import contextlib
import itertools
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.serve.batcher import Job, MicroBatcher
from selfplay_gym.serve.engine import run_jobs
from selfplay_gym.serve.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    GenerationRequest,
    LoadAdapterRequest,
    UnloadAdapterRequest,
)
from selfplay_gym.types import Completion


class APIError(Exception):
    def __init__(self, status: int, message: str, kind: str = "BadRequestError"):
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


def _error(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(
    backend: HFBackend, served_model_name: str, *, window_s: float = 0.005, max_batch: int = 64
) -> FastAPI:
    """An app serving ``backend``'s base model as ``served_model_name`` and each adapter by name."""
    batcher = MicroBatcher(
        lambda jobs: run_jobs(backend, jobs), window_s=window_s, max_batch=max_batch
    )
    tokens: dict[int, str] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="selfplay-gym", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.backend = backend

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc), "BadRequestError")

    @app.exception_handler(APIError)
    async def refused(_: Request, exc: APIError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.kind)

    @app.exception_handler(Exception)
    async def crashed(_: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"{type(exc).__name__}: {exc}", "InternalServerError")

    def names() -> list[str]:
        return [served_model_name, *backend.store.names]

    def adapter_of(model: str) -> str | None:
        if model == served_model_name:
            return None
        if model in backend.store.names:
            return model
        raise APIError(
            404, f"The model `{model}` does not exist; this server has {names()}", "NotFoundError"
        )

    def token_text(token: int, as_id: bool) -> str:
        if as_id:
            return f"token_id:{token}"
        if token not in tokens:
            tokens[token] = backend.tokenizer.decode([token])
        return tokens[token]

    async def generate(request: GenerationRequest, prompts: list[Any]) -> list[Completion]:
        adapter = adapter_of(request.model)
        try:
            sampling = SamplingConfig(
                request.temperature, request.top_p, max(request.top_k, 0), request.new_tokens
            )
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc
        try:
            return await batcher.submit(
                Job([p for p in prompts for _ in range(request.n)], adapter, sampling)
            )
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc

    def envelope(
        kind: str, request: GenerationRequest, choices: list[dict], done: list[Completion]
    ) -> dict:
        prompt = sum(len(c.prompt_ids) for c in done[:: request.n])
        completion = sum(len(c.completion_ids) for c in done)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        prefix = "chatcmpl" if kind == "chat.completion" else "cmpl"
        return {
            "id": f"{prefix}-{uuid.uuid4().hex}",
            "object": kind,
            "created": int(time.time()),
            "model": request.model,
            "choices": choices,
            "usage": usage,
        }

    @app.get("/health")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/v1/models")
    async def models() -> dict:
        created = int(time.time())
        data = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "selfplay-gym",
                "parent": None if name == served_model_name else served_model_name,
            }
            for name in names()
        ]
        return {"object": "list", "data": data}

    @app.post("/v1/chat/completions")
    async def chat(request: ChatCompletionRequest) -> dict:
        messages = tuple({"role": m.role, "content": m.text()} for m in request.messages)
        done = await generate(request, [messages])
        choices = []
        for index, c in enumerate(done):
            choice: dict[str, Any] = {
                "index": index,
                "message": {"role": "assistant", "content": c.text},
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            if request.logprobs:
                entries = []
                for token, logprob in zip(c.completion_ids, c.logprobs, strict=True):
                    text = token_text(token, request.return_tokens_as_token_ids)
                    entries.append(
                        {
                            "token": text,
                            "logprob": logprob,
                            "bytes": list(text.encode()),
                            "top_logprobs": [],
                        }
                    )
                choice["logprobs"] = {"content": entries}
            if request.return_token_ids:
                choice["token_ids"] = c.completion_ids
            choices.append(choice)
        body = envelope("chat.completion", request, choices, done)
        if request.return_token_ids:
            body["prompt_token_ids"] = done[0].prompt_ids
        return body

    @app.post("/v1/completions")
    async def complete(request: CompletionRequest) -> dict:
        done = await generate(request, request.prompts())
        choices = []
        for index, c in enumerate(done):
            choice: dict[str, Any] = {
                "index": index,
                "text": c.text,
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            if request.logprobs is not None:
                texts = [
                    token_text(t, request.return_tokens_as_token_ids) for t in c.completion_ids
                ]
                offsets = [0, *itertools.accumulate(len(t) for t in texts)][: len(texts)]
                choice["logprobs"] = {
                    "tokens": texts,
                    "token_logprobs": c.logprobs,
                    "top_logprobs": None,
                    "text_offset": offsets,
                }
            if request.return_token_ids:
                choice["prompt_token_ids"] = c.prompt_ids
                choice["token_ids"] = c.completion_ids
            choices.append(choice)
        return envelope("text_completion", request, choices, done)

    @app.post("/v1/load_lora_adapter")
    async def load_adapter(request: LoadAdapterRequest) -> PlainTextResponse:
        if request.lora_name == served_model_name or request.lora_name.startswith("__"):
            raise APIError(400, f"{request.lora_name!r} cannot name an adapter here")
        try:
            await batcher.exclusive(backend.load_adapter, request.lora_name, request.lora_path)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            raise APIError(
                400, f"could not load adapter {request.lora_name!r} from {request.lora_path}: {exc}"
            ) from exc
        return PlainTextResponse(f"Success: LoRA adapter '{request.lora_name}' added successfully.")

    @app.post("/v1/unload_lora_adapter")
    async def unload_adapter(request: UnloadAdapterRequest) -> PlainTextResponse:
        if request.lora_name not in backend.store.names:
            raise APIError(404, f"no adapter named {request.lora_name!r} is loaded")
        try:
            await batcher.exclusive(backend.remove_adapter, request.lora_name)
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc
        return PlainTextResponse(f"Success: LoRA adapter '{request.lora_name}' removed successfully.")

    return app

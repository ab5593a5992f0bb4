"""The OpenAI-compatible HTTP API over the transformers backend (FastAPI).

Routes: ``GET /v1/models`` (and ``/v1/models/{id}``), ``POST /v1/chat/completions``,
``POST /v1/completions`` (both streaming on ``stream=true``: streaming.py),
``POST /v1/load_lora_adapter``, ``POST /v1/unload_lora_adapter``, ``GET /health``. A request
whose client disconnects stops generating (``Job.cancelled``). The base model is served under
one name and each LoRA adapter under its own, as ``vllm serve --enable-lora`` does, so
``OpenAIBackend`` talks to either. Extras beyond OpenAI's schema, as vLLM spells them: ``return_token_ids``
(answers ``prompt_token_ids`` and ``choices[i].token_ids``), ``return_tokens_as_token_ids``,
``top_k``, ``min_tokens``, ``ignore_eos`` and ``stop_token_ids``. Log-probs are those of the
temperature-scaled distribution, before top-k/top-p, exactly as ``HFBackend`` records them
(after logit_bias and penalties where a request sets them: decoder.py). ``seed`` makes a
request reproducible whatever shares its batch. Errors are OpenAI's ``{"error": {"message",
...}}``, for unknown routes and wrong methods too.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.exceptions import HTTPException

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.serve.batcher import Job, MicroBatcher
from selfplay_gym.serve.decoder import Row, RowSampling
from selfplay_gym.serve.engine import run_jobs
from selfplay_gym.serve.protocol import (
    ChatCompletionRequest,
    CompletionRequest,
    GenerationRequest,
    LoadAdapterRequest,
    UnloadAdapterRequest,
)
from selfplay_gym.serve.responses import Responses, envelope, usage
from selfplay_gym.serve.streaming import attach, chat_events, completion_events, opened


class APIError(Exception):
    def __init__(
        self, status: int, message: str, kind: str = "BadRequestError", param: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param


DISCONNECT_POLL_S = 0.1
"""How often a waiting request checks that its client is still there."""
ROUTES = (
    "GET /v1/models, GET /v1/models/{id}, POST /v1/chat/completions, POST /v1/completions, "
    "POST /v1/load_lora_adapter, POST /v1/unload_lora_adapter, GET /health"
)


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
        lambda jobs: run_jobs(backend, jobs, batcher.stats), window_s=window_s, max_batch=max_batch
    )
    responses = Responses(backend.tokenizer)

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
        return _error(exc.status, exc.message, exc.kind, exc.param)

    @app.exception_handler(HTTPException)  # an unknown route or a wrong method
    async def not_routed(request: Request, exc: HTTPException) -> JSONResponse:
        kind = {404: "NotFoundError", 405: "MethodNotAllowedError"}.get(exc.status_code, "APIError")
        message = {
            404: f"no route {request.url.path}; this server has {ROUTES}",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        return _error(exc.status_code, message, kind)

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

    def job_of(request: GenerationRequest, prompts: list[Any], echo: bool = False) -> Job:
        """The request checked (every refused field at once) and turned into a job."""
        refused = request.refusals()
        if refused:
            fields = ", ".join(name for name, _ in refused)
            reasons = "; ".join(f"{name}: {why}" for name, why in refused)
            raise APIError(400, f"unsupported parameters {fields} ({reasons})", param=fields)
        sampling = RowSampling(
            temperature=request.temperature,
            top_p=request.top_p,
            top_k=max(request.top_k, 0),
            max_tokens=request.new_tokens,
            seed=request.seed,
            presence_penalty=request.presence_penalty,
            frequency_penalty=request.frequency_penalty,
            logit_bias=tuple(sorted((request.logit_bias or {}).items())),
            min_tokens=request.min_tokens,
            ignore_eos=request.ignore_eos,
            stop=request.stops,
            stop_token_ids=tuple(request.stop_token_ids or ()),
            top_logprobs=request.alternatives,
        )
        return Job(prompts, adapter_of(request.model), sampling, n=request.n, echo=echo)

    async def generate(job: Job, client: Request) -> list[Row] | JSONResponse:
        """The job's rows; if the client goes away first, the job is dropped or aborted."""
        await batcher.enqueue(job)
        try:
            while not job.future.done():
                await asyncio.wait({job.future}, timeout=DISCONNECT_POLL_S)
                if not job.future.done() and await client.is_disconnected():
                    return _error(499, "the client closed the request", "ClientClosedRequest")
            return job.future.result()
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc
        finally:
            if not job.future.done():  # the client left, or the server is stopping
                job.cancelled = True
                job.future.cancel()

    async def stream(job: Job, events: Any, request: GenerationRequest) -> StreamingResponse:
        queue = attach(job)
        await batcher.enqueue(job)
        try:
            await opened(job)
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc
        return StreamingResponse(
            events(job, queue, request, responses), media_type="text/event-stream"
        )

    @app.get("/health")
    async def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    def model_card(name: str, created: int) -> dict:
        return {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "selfplay-gym",
            "parent": None if name == served_model_name else served_model_name,
        }

    @app.get("/v1/models")
    async def models() -> dict:
        created = int(time.time())
        return {"object": "list", "data": [model_card(name, created) for name in names()]}

    @app.get("/v1/models/{model:path}")  # a hub id or directory name holds slashes
    async def model(model: str) -> dict:
        adapter_of(model)  # 404 for a name not served
        return model_card(model, int(time.time()))

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(request: ChatCompletionRequest, client: Request) -> dict | Any:
        messages = tuple({"role": m.role, "content": m.text()} for m in request.messages)
        job = job_of(request, [messages])
        if request.stream:
            return await stream(job, chat_events, request)
        rows = await generate(job, client)
        if not isinstance(rows, list):
            return rows
        choices = [responses.chat_choice(i, row, request) for i, row in enumerate(rows)]
        body = envelope("chat.completion", request.model, choices, usage(rows, request.n))
        if request.return_token_ids:
            body["prompt_token_ids"] = rows[0].prompt_ids
        return body

    @app.post("/v1/completions", response_model=None)
    async def complete(request: CompletionRequest, client: Request) -> dict | Any:
        prompts = request.prompts()
        job = job_of(request, prompts, echo=request.echo)
        if request.stream:
            return await stream(job, completion_events, request)
        rows = await generate(job, client)
        if not isinstance(rows, list):
            return rows
        choices = [
            responses.completion_choice(i, row, request, prompts[i // request.n])
            for i, row in enumerate(rows)
        ]
        return envelope("text_completion", request.model, choices, usage(rows, request.n))

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
            raise APIError(
                404, f"no adapter named {request.lora_name!r} is loaded", "NotFoundError"
            )
        try:
            await batcher.exclusive(backend.remove_adapter, request.lora_name)
        except ValueError as exc:
            raise APIError(400, str(exc)) from exc
        return PlainTextResponse(f"Success: LoRA adapter '{request.lora_name}' removed successfully.")

    return app

"""A backend for any OpenAI-compatible server: ``vllm serve --enable-lora``, SGLang, our own.

Generation can then run on other GPUs or machines while training runs here. A batch is sent
as concurrent chat-completion requests (bounded by ``max_concurrency``); identical prompts
for the same adapter (a GRPO group) become one request with ``n`` choices. Given several
servers (a pool), requests go round-robin and a retry goes to the next server; adapter loads go
to every server. Adapters are addressed as model names: role adapter ``"solver"`` is served
model ``"solver"`` unless ``adapter_models`` says otherwise, and ``None`` is the base model.

Nothing is lost silently: a batch completes whole or raises one ``ServerError`` naming the
failed request and the cause of each of its attempts, after retries with exponential backoff on
connection errors, timeouts, HTTP 429 and 5xx. A batch never outlives its ``deadline``: no
attempt runs or starts past it, and what is unfinished then is cancelled (a timed-out attempt
closes its connection, and ``selfplay-gym serve`` stops generating for it).

What the trainer needs, and which servers give it:

* per-token log-probs: every request sets ``logprobs=true``. vLLM reports them under the
  temperature-scaled distribution (our convention) only when started with
  ``--logprobs-mode processed_logprobs``.
* token ids: requested with ``return_token_ids`` (vLLM >= 0.10.2 and ``selfplay-gym serve``
  answer ``prompt_token_ids`` and ``choices[i].token_ids``) and ``return_tokens_as_token_ids``
  (older vLLM: completion ids only). With ``token_ids=False`` they are not required and
  ``prompt_ids``/``completion_ids`` may stay empty: fine for evaluation, but a trainer would
  then need a local tokenizer to rebuild them, which can silently disagree with the server.

This module sends requests and retries them; reading what comes back (``parse_chat``, error
bodies, ``ServerError``) is ``agents/openai_wire.py``, re-exported here.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx

from selfplay_gym.agents.adapter_versions import AdapterVersion, AdapterVersions
from selfplay_gym.agents.openai_wire import (
    ServerError,
    api_root,
    attempts_failed,
    deadline_passed,
    error_message,
    parse_chat,
    response_json,
    retry_after,
)
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.types import Completion, Messages

__all__ = ["OpenAIBackend", "ServerError", "parse_chat"]

T = TypeVar("T")


class OpenAIBackend:
    """Generation through an OpenAI-compatible HTTP server (the ``Backend`` protocol).

    Args:
        base_url: the server's API root, e.g. ``http://127.0.0.1:8000/v1``, or a list of them
            (servers of the same model and adapters).
        model: the served name of the base model (what ``adapter=None`` generates with); None:
            the first model the server lists (vLLM lists its base model first).
        adapter_models: role adapter name -> served model name, where they differ.
        max_concurrency: requests in flight at once.
        timeout: seconds per attempt of a request (connect: at most 10).
        deadline: seconds a whole ``generate`` call may take, retries included (None: no
            limit). The default leaves room for slow batches, unlike timeout x attempts (~50 min).
        max_retries: extra attempts after a connection error, timeout, 429 or 5xx.
        backoff: first retry delay in seconds; doubled each retry, capped at ``max_backoff``.
        logprobs / token_ids: require them in every answer (see the module docstring).
        extra_body: more fields for every request (server-specific options).
        transport: an httpx transport (tests pass a mock one).
    """

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str | None = None,
        *,
        adapter_models: Mapping[str, str] | None = None,
        api_key: str | None = None,
        max_concurrency: int = 32,
        timeout: float = 600.0,
        deadline: float | None = 1200.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        logprobs: bool = True,
        token_ids: bool = True,
        group_identical: bool = True,
        extra_body: Mapping[str, Any] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if deadline is not None and deadline <= 0:
            raise ValueError(f"deadline must be > 0 seconds (or None: no limit), got {deadline}")
        self.base_urls = [
            api_root(url) for url in ([base_url] if isinstance(base_url, str) else base_url)
        ]
        if not self.base_urls:
            raise ValueError("OpenAIBackend needs at least one server URL")
        self.model = model
        self.adapter_models = dict(adapter_models or {})
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_concurrency = max_concurrency
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self.deadline = deadline
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.logprobs = logprobs
        self.token_ids = token_ids
        self.group_identical = group_identical
        self.extra_body = dict(extra_body or {})
        self.transport = transport
        self.versions = AdapterVersions()
        """Adapters loaded at run time (``load_adapter``, ``sync_from``): each load is a new
        served name, ``solver@v3``, so that no server answers from the old weights' cache."""

    def served_name(self, adapter: str | None) -> str:
        if adapter is None:
            if self.model is None:
                self.model = self.models()[0]
            return self.model
        if adapter in self.versions.current:
            return self._lora_name(self.versions.current[adapter])
        return self.adapter_models.get(adapter, adapter)

    def _lora_name(self, version: AdapterVersion) -> str:
        return f"{self.adapter_models.get(version.adapter, version.adapter)}@v{version.version}"

    # --- the Backend protocol ----------------------------------------------------------------
    def generate(
        self, prompts: Sequence[Messages], adapters: Sequence[str | None], sampling: SamplingConfig
    ) -> list[Completion]:
        """One completion per prompt, in order; all of them, or a ``ServerError``."""
        if len(prompts) != len(adapters):
            raise ValueError(f"{len(prompts)} prompts but {len(adapters)} adapter names")
        groups: dict[Any, list[int]] = {}
        for i, (messages, adapter) in enumerate(zip(prompts, adapters, strict=True)):
            if not messages:
                raise ValueError(f"prompt {i} has no messages; every prompt needs at least one")
            key = (
                (adapter, tuple((m["role"], m["content"]) for m in messages))
                if self.group_identical
                else i
            )
            groups.setdefault(key, []).append(i)
        calls = list(groups.values())
        results = _run(self._batch(prompts, adapters, sampling, calls)) if calls else []
        out: list[Completion | None] = [None] * len(prompts)
        for indices, completions in zip(calls, results, strict=True):
            for i, completion in zip(indices, completions, strict=True):
                out[i] = completion
        return out  # type: ignore[return-value]

    async def _batch(
        self, prompts, adapters, sampling, calls: list[list[int]]
    ) -> list[list[Completion]]:
        limit = asyncio.Semaphore(self.max_concurrency)
        now = asyncio.get_running_loop().time
        expires = None if self.deadline is None else now() + self.deadline
        causes: dict[int, list[str]] = {}  # request -> the cause of each failed attempt
        async with self._client() as client:

            async def one(k: int, indices: list[int]) -> list[Completion]:
                async with limit:
                    i = indices[0]
                    return await self._chat(
                        client, k, i, len(prompts), prompts[i], adapters[i], len(indices),
                        sampling, expires, causes.setdefault(i, []),
                    )  # fmt: skip

            tasks = [asyncio.ensure_future(one(k, indices)) for k, indices in enumerate(calls)]
            left = None if expires is None else max(0.0, expires - now())
            _, pending = await asyncio.wait(
                tasks, timeout=left, return_when=asyncio.FIRST_EXCEPTION
            )
            failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception()]
            if failed or pending:  # all or nothing: stop the rest
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                if failed:  # the first failure in batch order
                    raise failed[0].exception()  # type: ignore[misc]
                late = sorted(calls[k][0] for k, t in enumerate(tasks) if t in pending)
                unfinished = {i: causes.get(i, []) for i in late}
                answered = len(tasks) - len(pending)
                raise deadline_passed(self.deadline, len(tasks), answered, unfinished)
            return [t.result() for t in tasks]

    async def _chat(
        self, client, server, index, total, messages, adapter, n, sampling, expires, causes
    ) -> list[Completion]:
        model = self.served_name(adapter)
        where = f"request {index} of {total} (model {model!r})"
        body = self._body(model, messages, n, sampling)
        response = await self._send(
            client, server, "chat/completions", body, where, index, expires=expires, causes=causes
        )
        data = response_json(response, where, index)
        try:
            return parse_chat(data, n, need_logprobs=self.logprobs, need_ids=self.token_ids)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ServerError(
                f"{where}: the server answered something that is not a usable "
                f"chat completion ({type(exc).__name__}: {exc}): {str(data)[:300]}",
                request_index=index,
            ) from exc

    def _body(self, model: str, messages: Messages, n: int, sampling: SamplingConfig) -> dict:
        body: dict[str, Any] = {
            "model": model,
            "messages": [dict(m) for m in messages],
            "n": n,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "logprobs": self.logprobs,
        }
        if sampling.top_k:
            body["top_k"] = sampling.top_k  # not OpenAI's, but vLLM's and SGLang's
        if self.token_ids:
            body["return_token_ids"] = True
            body["return_tokens_as_token_ids"] = True
        return body | self.extra_body

    # --- adapters and models -----------------------------------------------------------------
    def load_adapter(self, name: str, path: str | Path) -> AdapterVersion:
        """Serve the adapter at ``path`` (a directory the *servers* read) as role adapter
        ``name`` from now on, on every server, under a new versioned name; the version it
        replaces is unloaded. vLLM needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``.
        """
        version, previous = self.versions.register(name, path)
        served = self._lora_name(version)
        body = {"lora_name": served, "lora_path": str(path)}
        where = f"loading adapter {served!r} from {path}"

        async def load_everywhere() -> None:
            async with self._client() as client:
                for server in range(len(self.base_urls)):
                    send = functools.partial(self._send, client, server, where=where, rotate=False)
                    try:
                        await send("load_lora_adapter", body)
                    except ServerError as exc:  # a name left by an earlier run of ours
                        if exc.status != 400 or "already" not in str(exc).lower():
                            raise
                        await send("unload_lora_adapter", {"lora_name": served})
                        await send("load_lora_adapter", body)
                    if previous is not None:
                        await self._unload(send, self._lora_name(previous))

        try:
            _run(load_everywhere())
        except BaseException:
            if previous is None:
                del self.versions.current[name]
            else:
                self.versions.current[name] = previous
            raise
        return version

    @staticmethod
    async def _unload(send, lora_name: str) -> None:
        """Free an old version's slot; one the server no longer has is already free."""
        try:
            await send("unload_lora_adapter", {"lora_name": lora_name})
        except ServerError as exc:
            if exc.status not in (400, 404):
                raise

    def sync_from(
        self, learner: Any, names: Sequence[str], root: str | Path, keep: int = 2
    ) -> list[Path]:
        """After an update: save each adapter to ``root/<name>/v<k>`` and load it on the server.

        ``root`` must be a directory the server reads at the same path (same machine or a
        shared filesystem). Versions older than the last ``keep`` are deleted.
        """
        paths = []
        for name in names:
            path = Path(learner.save_adapter(name, self.versions.next_path(root, name)))
            version = self.load_adapter(name, path.resolve())
            stale = Path(root) / name / f"v{version.version - keep}"
            if version.version > keep and stale.exists():
                shutil.rmtree(stale)
            paths.append(path)
        return paths

    def models(self) -> list[str]:
        """The first server's model names (``GET /v1/models``)."""

        async def get() -> list[str]:
            async with self._client() as client:
                response = await self._send(
                    client, 0, "models", None, "listing models", rotate=False
                )
                return [m["id"] for m in response_json(response, "listing models", None)["data"]]

        return _run(get())

    # --- HTTP with retries -------------------------------------------------------------------
    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
        )
        return httpx.AsyncClient(
            headers=self.headers, timeout=self.timeout, limits=limits, transport=self.transport
        )

    async def _send(
        self,
        client,
        server: int,
        path: str,
        body: Any,
        where: str,
        index: int | None = None,
        rotate: bool = True,
        expires: float | None = None,
        causes: list[str] | None = None,
    ) -> httpx.Response:
        """POST (GET without a body) to server number ``server``; retry what a retry can fix
        (on the next server of a pool when ``rotate``), raise the rest at once. No attempt
        waits past ``expires`` (loop time); ``causes`` collects each failed attempt's cause."""
        now = asyncio.get_running_loop().time
        causes = [] if causes is None else causes
        wait, tried, gave_up = 0.0, [], ""
        for attempt in range(self.max_retries + 1):
            pause = max(wait, min(self.max_backoff, self.backoff * 2 ** (attempt - 1)))
            left = None if expires is None else expires - now() - (pause if attempt else 0.0)
            if left is not None and left <= 0:
                gave_up = f" (stopped at the batch deadline of {self.deadline:g} s)"
                break
            if attempt:
                await asyncio.sleep(pause)
            url = self.base_urls[(server + attempt * rotate) % len(self.base_urls)]
            tried.append(url)
            timeout = self.timeout if left is None else _shorter(self.timeout, left)
            try:
                response = await (
                    client.get(f"{url}/{path}", timeout=timeout)
                    if body is None
                    else client.post(f"{url}/{path}", json=body, timeout=timeout)
                )
            except httpx.TransportError as exc:  # refused, reset, timed out, cut mid-answer
                detail = str(exc) or "no detail"
                if isinstance(exc, httpx.ReadTimeout):
                    detail = f"no answer within {timeout.read:g} s"
                causes.append(f"attempt {attempt + 1}: {type(exc).__name__}: {detail}")
                wait = 0.0
                continue
            if response.status_code == 429 or response.status_code >= 500:
                status = f"HTTP {response.status_code}: {error_message(response)}"
                causes.append(f"attempt {attempt + 1}: {status}")
                wait = retry_after(response, self.max_backoff)
                continue
            if response.status_code >= 400:
                raise ServerError(
                    f"{where} was refused with HTTP {response.status_code}: "
                    f"{error_message(response)}",
                    status=response.status_code,
                    request_index=index,
                )
            return response
        servers = ", ".join(dict.fromkeys(tried or self.base_urls))
        raise attempts_failed(where, causes, servers, index, gave_up)


def _shorter(timeout: httpx.Timeout, seconds: float) -> httpx.Timeout:
    """``timeout`` cut to at most ``seconds`` in every phase."""
    return httpx.Timeout(
        min(timeout.read, seconds),
        connect=min(timeout.connect, seconds),
        write=min(timeout.write, seconds),
        pool=min(timeout.pool, seconds),
    )


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to the end from sync code, also when an event loop is already running
    (a notebook): then in a worker thread with its own loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()

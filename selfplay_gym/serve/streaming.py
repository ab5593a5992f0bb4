"""Server-sent events: ``stream=true`` on chat and plain completions, chunk by chunk as
OpenAI and vLLM send them.

Every token becomes one ``data: {...}`` chunk (``chat.completion.chunk`` with a ``delta``, or
``text_completion`` with ``text``), carrying its log-probs when asked; text that could still
turn out to start a stop string, or half a UTF-8 character, waits for the next chunk
(decoder.py). Chat opens each choice with a ``{"role": "assistant"}`` delta; an echoed prompt
comes first on its own. ``stream_options.include_usage`` adds ``"usage": null`` to every chunk
and a last one with no choices and the usage. The stream ends with ``data: [DONE]``. A client
that goes away cancels the response; its rows stop at their next step (``Job.cancelled``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from selfplay_gym.serve.batcher import Job
from selfplay_gym.serve.decoder import Row, Step
from selfplay_gym.serve.protocol import ChatCompletionRequest, CompletionRequest
from selfplay_gym.serve.responses import Responses, envelope, usage


def sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def attach(job: Job) -> asyncio.Queue:
    """Route the job's steps from the model thread into a queue of (choice, row, step)."""
    queue: asyncio.Queue[tuple[int, Row, Step]] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    job.stream = lambda i, row, step: loop.call_soon_threadsafe(queue.put_nowait, (i, row, step))
    return queue


async def follow(job: Job, queue: asyncio.Queue) -> AsyncIterator[tuple[int, Row, Step]]:
    """The job's steps as they come, until its answer is in (every step is queued by then:
    the model thread queues each step before it answers the job)."""
    while not job.future.done():
        getter = asyncio.ensure_future(queue.get())
        await asyncio.wait({getter, job.future}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            yield getter.result()
        else:
            getter.cancel()
    while not queue.empty():
        yield queue.get_nowait()


class _Chunks:
    """One response's chunks: one id and created time, usage null until the last."""

    def __init__(self, kind: str, request: Any):
        self.kind, self.model = kind, request.model
        self.id = f"{'chatcmpl' if kind.startswith('chat') else 'cmpl'}-{uuid.uuid4().hex}"
        options = request.stream_options
        self.with_usage = options is not None and options.include_usage

    def __call__(self, choices: list[dict], used: dict | None = None) -> str:
        body = envelope(self.kind, self.model, choices, used, self.id)
        if not self.with_usage:
            del body["usage"]
        return sse(body)


async def _events(
    job: Job, queue: asyncio.Queue, chunk: _Chunks, choice_of, head
) -> AsyncIterator[str]:
    """The shared skeleton: heads, one chunk per step, usage, [DONE]; an error as an event."""
    started: set[int] = set()
    try:
        for text in head(None, None):
            yield text
        async for i, row, step in follow(job, queue):
            if i not in started:
                started.add(i)
                for text in head(i, row):
                    yield text
            yield chunk([choice_of(i, row, step)])
        rows = job.future.result()
        for i, row in enumerate(rows):  # echo with max_tokens=0: no steps at all
            if i not in started:
                for text in head(i, row):
                    yield text
                yield chunk([choice_of(i, row, None)])
        if chunk.with_usage:
            yield chunk([], usage(rows, job.n))
    except Exception as exc:  # the whole call failed on the model thread, after the stream began
        status, kind = (
            (400, "BadRequestError")
            if isinstance(exc, ValueError)
            else (500, "InternalServerError")
        )
        yield sse({"error": {"message": f"{exc}", "type": kind, "code": status}})
    finally:
        if not job.future.done():  # the client has gone: stop generating for it
            job.cancelled = True
            job.future.cancel()
    yield sse("[DONE]")


def chat_events(
    job: Job, queue: asyncio.Queue, request: ChatCompletionRequest, responses: Responses
) -> AsyncIterator[str]:
    chunk = _Chunks("chat.completion.chunk", request)
    as_id = request.return_tokens_as_token_ids

    def head(i: int | None, row: Row | None) -> list[str]:
        if i is None:  # every choice opens with the assistant's role, before any token
            return [
                chunk(
                    [
                        {
                            "index": k,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )
                for k in range(len(job.prompts) * job.n)
            ]
        return []

    def choice_of(i: int, row: Row, step: Step | None) -> dict:
        if step is None:
            return {"index": i, "delta": {}, "logprobs": None, "finish_reason": row.finish_reason}
        choice: dict[str, Any] = {
            "index": i,
            "delta": {"content": step.text},
            "logprobs": None,
            "finish_reason": step.finish_reason,
        }
        if step.finish_reason:
            choice["stop_reason"] = step.stop_reason
        if request.logprobs:
            entries = responses.chat_entries([step.token], [step.logprob], [step.top], as_id)
            choice["logprobs"] = {"content": entries}
        if request.return_token_ids:
            choice["token_ids"] = [step.token]
        return choice

    return _events(job, queue, chunk, choice_of, head)


def completion_events(
    job: Job, queue: asyncio.Queue, request: CompletionRequest, responses: Responses
) -> AsyncIterator[str]:
    chunk = _Chunks("text_completion", request)
    prompts = job.prompts
    offsets: dict[int, int] = {}  # characters sent per choice, for text_offset

    def head(i: int | None, row: Row | None) -> list[str]:
        if i is None:
            return []
        offsets[i] = 0
        if not request.echo:
            return []
        text = responses.prompt_text(prompts[i // job.n])
        offsets[i] = len(text)
        logprobs = responses.echo_logprobs(row, request) if request.logprobs is not None else None
        choice = {"index": i, "text": text, "logprobs": logprobs, "finish_reason": None}
        if request.return_token_ids:
            choice["prompt_token_ids"] = row.prompt_ids
        return [chunk([choice])]

    def choice_of(i: int, row: Row, step: Step | None) -> dict:
        if step is None:  # nothing generated (echo only): just the end
            return {"index": i, "text": "", "logprobs": None, "finish_reason": row.finish_reason}
        choice: dict[str, Any] = {
            "index": i,
            "text": step.text,
            "logprobs": None,
            "finish_reason": step.finish_reason,
        }
        if step.finish_reason:
            choice["stop_reason"] = step.stop_reason
        if request.logprobs is not None:
            choice["logprobs"] = responses.legacy_logprobs(
                [step.token], [step.logprob], [step.top], request, offsets[i]
            )
        offsets[i] += len(step.text)
        if request.return_token_ids:
            choice["token_ids"] = [step.token]
        return choice

    return _events(job, queue, chunk, choice_of, head)


async def opened(job: Job) -> None:
    """Wait until the job is generating, so a refused prompt is still a plain 400 (raised
    here) rather than an error inside a stream that has already answered 200."""
    try:
        await asyncio.wait({job.admitted, job.future}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        job.cancelled = True
        raise
    if job.future.done() and job.future.exception() is not None:
        raise job.future.exception()

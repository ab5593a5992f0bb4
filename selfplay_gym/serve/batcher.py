"""Micro-batching: requests that arrive within a few milliseconds share one generate call.

The transformers model is not thread-safe, so every use of it (generation, adapter loading)
runs on one worker thread, one call at a time. Requests wait in an asyncio queue; the batching
task takes the first and keeps collecting while requests keep coming (gaps under ``window_s``,
at most ``max_wait_s`` and ``max_batch`` prompts) and hands the lot to the worker as one call:
each row samples its own way (decoder.py), so requests with different settings share it.
While the worker generates, new requests queue up and form the next batch. A job is answered
as soon as its own rows end, not when the whole call does; a job whose client has gone
(``cancelled``) is dropped before it starts and aborted mid-generation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from selfplay_gym.serve.decoder import Row, RowSampling, Step

T = TypeVar("T")


@dataclass(eq=False)
class Job:
    """One HTTP request: its prompts (chat messages, text or token ids), ``n`` choices of each,
    its adapter and sampling; the answer is one ``Row`` per choice, prompt by prompt."""

    prompts: list[Any]
    adapter: str | None
    sampling: RowSampling
    n: int = 1
    echo: bool = False
    """Score the prompt too (completions' ``echo``): ``Row.echo`` holds its log-probs."""
    stream: Callable[[int, Row, Step], None] | None = None
    """Called on the model thread with (choice index, row, step) after each token."""
    cancelled: bool = False
    """Set when the client has gone: the job's rows stop at their next step."""
    future: asyncio.Future | None = field(default=None, repr=False)
    admitted: asyncio.Future | None = field(default=None, repr=False)
    """Done once the prompts are encoded and the job's rows join a generate call."""
    loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def admit(self) -> None:
        """The job passed its checks and is generating; safe from the model thread."""
        self.loop.call_soon_threadsafe(
            lambda: self.admitted.done() or self.admitted.set_result(True)
        )

    def resolve(self, result: list[Row] | BaseException) -> None:
        """Answer the waiting request; safe from the model thread."""
        self.loop.call_soon_threadsafe(self._set, result)

    def _set(self, result: list[Row] | BaseException) -> None:
        if self.future.done():
            return
        if isinstance(result, BaseException):
            self.future.set_exception(result)
        else:
            self.future.set_result(result)


Work = Callable[[Sequence[Job]], list["list[Row] | Exception"]]
"""Generates a list of jobs in one go: per job, its rows or its error."""


class MicroBatcher:
    def __init__(
        self, work: Work, *, window_s: float = 0.005, max_batch: int = 64, max_wait_s: float = 0.05
    ):
        self.work = work
        self.window_s = window_s
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self.stats = {"calls": 0, "prompts": 0, "largest_call": 0, "aborted": 0}
        self._pool: ThreadPoolExecutor | None = None
        self._queue: asyncio.Queue[Job] | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="selfplay-model")
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if job.future is not None and not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def submit(self, job: Job) -> list[Row]:
        """Queue a job and wait for its rows (or its error)."""
        await self.enqueue(job)
        return await job.future

    async def enqueue(self, job: Job) -> None:
        """Queue a job; its ``future`` will hold its rows (or its error)."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called (the app's lifespan starts it)")
        job.loop = asyncio.get_running_loop()
        job.future = job.loop.create_future()
        job.admitted = job.loop.create_future()
        await self._queue.put(job)

    async def exclusive(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the model thread, between two batches."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _collect(self) -> list[Job]:
        """The first waiting job plus those that follow it closely: the batch closes once no new
        job has come for ``window_s`` (or after ``max_wait_s``). Polled, so nothing is lost."""
        loop = asyncio.get_running_loop()
        jobs = [await self._queue.get()]
        size, start = len(jobs[0].prompts) * jobs[0].n, loop.time()
        quiet_until = start + self.window_s
        while size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                now = loop.time()
                if now >= quiet_until or now >= start + self.max_wait_s:
                    break
                await asyncio.sleep(min(0.001, self.window_s))
                continue
            jobs.append(job)
            size += len(job.prompts) * job.n
            quiet_until = loop.time() + self.window_s
        return jobs

    async def _loop(self) -> None:
        while True:
            # a request whose client has gone is dropped
            jobs = [j for j in await self._collect() if not (j.future.done() or j.cancelled)]
            if not jobs:
                continue
            try:
                results = await self.exclusive(self.work, jobs)
            except Exception as exc:  # the whole call failed: every job in it learns why
                results = [exc] * len(jobs)
            rows = sum(len(job.prompts) * job.n for job in jobs)
            self.stats["calls"] += 1
            self.stats["prompts"] += rows
            self.stats["largest_call"] = max(self.stats["largest_call"], rows)
            for job, result in zip(jobs, results, strict=True):
                job._set(result)  # those answered early are done already

"""Micro-batching: requests that arrive within a few milliseconds share one generate call.

The transformers model is not thread-safe, so every use of it (generation, adapter loading)
runs on one worker thread, one call at a time. Requests wait in an asyncio queue; the batching
task takes the first and keeps collecting while requests keep coming (gaps under ``window_s``,
at most ``max_wait_s`` and ``max_batch`` prompts), splits the lot by sampling config and hands
each part to the worker as one call.
While the worker generates, new requests queue up and form the next batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.types import Completion

T = TypeVar("T")


@dataclass
class Job:
    """One HTTP request: its prompts (chat messages, text or token ids), adapter, sampling."""

    prompts: list[Any]
    adapter: str | None
    sampling: SamplingConfig
    future: asyncio.Future | None = field(default=None, repr=False)


Work = Callable[[Sequence[Job]], list["list[Completion] | Exception"]]
"""Generates a list of jobs sharing one sampling config: per job, its completions or its error."""


class MicroBatcher:
    def __init__(
        self, work: Work, *, window_s: float = 0.005, max_batch: int = 64, max_wait_s: float = 0.05
    ):
        self.work = work
        self.window_s = window_s
        self.max_wait_s = max_wait_s
        self.max_batch = max_batch
        self.stats = {"calls": 0, "prompts": 0, "largest_call": 0}
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

    async def submit(self, job: Job) -> list[Completion]:
        """Queue a job and wait for its completions (or its error)."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.start() was not called (the app's lifespan starts it)")
        job.future = asyncio.get_running_loop().create_future()
        await self._queue.put(job)
        return await job.future

    async def exclusive(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the model thread, between two batches."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _collect(self) -> list[Job]:
        """The first waiting job plus those that follow it closely: the batch closes once no new
        job has come for ``window_s`` (or after ``max_wait_s``). Polled, so nothing is lost."""
        loop = asyncio.get_running_loop()
        jobs = [await self._queue.get()]
        size, start = len(jobs[0].prompts), loop.time()
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
            size += len(job.prompts)
            quiet_until = loop.time() + self.window_s
        return jobs

    async def _loop(self) -> None:
        while True:
            groups: dict[SamplingConfig, list[Job]] = {}
            for job in await self._collect():
                if not job.future.done():  # a cancelled request (client gone) is dropped
                    groups.setdefault(job.sampling, []).append(job)
            for group in groups.values():
                try:
                    results = await self.exclusive(self.work, group)
                except Exception as exc:  # the whole call failed: every job in it learns why
                    results = [exc] * len(group)
                prompts = sum(len(job.prompts) for job in group)
                self.stats["calls"] += 1
                self.stats["prompts"] += prompts
                self.stats["largest_call"] = max(self.stats["largest_call"], prompts)
                for job, result in zip(group, results, strict=True):
                    if job.future.done():
                        continue
                    if isinstance(result, BaseException):
                        job.future.set_exception(result)
                    else:
                        job.future.set_result(result)

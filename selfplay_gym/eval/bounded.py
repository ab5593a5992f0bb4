"""A check that cannot hang the caller: one worker process per checker, killed at a deadline.

math-verify bounds itself with ``signal.alarm``, which works only in a main thread and not at
all against a C-level hang, and grader hangs are a known failure in the papers' code. So checks
run in a worker process: its main thread gets math-verify's own timeouts, and the caller waits
at most ``timeout`` seconds, then kills the worker, records a ``"timeout"`` verdict and starts a
fresh worker on the next call. The worker is started with ``spawn`` by default (safe with CUDA
and threads in the caller); the deadline covers the check only, never the worker's start.
"""

from __future__ import annotations

import multiprocessing
import threading
import weakref
from collections.abc import Callable
from typing import Any

from selfplay_gym.envs.verify import Verdict

CheckFn = Callable[[str, str], Verdict]
"""``fn(candidate, reference) -> Verdict``; must pickle (a module-level function) under spawn."""

_READY = "ready"


def _serve(conn: Any, fn: CheckFn) -> None:
    """The worker loop: (candidate, reference) in, Verdict out, until the pipe closes."""
    conn.send(_READY)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        try:
            verdict = fn(*request)
        except BaseException as exc:  # a checker error is a verdict, never a dead worker
            verdict = Verdict(False, "error", error=f"{type(exc).__name__}: {exc}")
        conn.send(verdict)


def _stop(process: Any, conn: Any) -> None:
    conn.close()
    if process.is_alive():
        process.kill()
    process.join(timeout=5)


class BoundedChecker:
    """Calls ``fn(candidate, reference)`` in a worker process; past ``timeout`` s it is wrong.

    Thread-safe (one check at a time); verdicts are cached, timeouts included, so a hostile
    pair costs its deadline once. ``timeouts`` counts the checks that ran out of time: cut off
    here, or stopped by ``fn``'s own timeout (a verdict with method ``"timeout"``).
    """

    def __init__(
        self,
        fn: CheckFn,
        timeout: float = 10.0,
        *,
        context: str = "spawn",
        start_timeout: float = 120.0,
        cache_size: int = 100_000,
    ):
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.fn, self.timeout, self.start_timeout = fn, timeout, start_timeout
        self.context = multiprocessing.get_context(context)
        self.cache: dict[tuple[str, str], Verdict] = {}
        self.cache_size = cache_size
        self.timeouts = 0
        self._lock = threading.Lock()
        self._worker: tuple[Any, Any] | None = None
        self._finalizer: Any = None

    def _start(self) -> tuple[Any, Any]:
        parent, child = self.context.Pipe()
        process = self.context.Process(
            target=_serve, args=(child, self.fn), daemon=True, name="selfplay-gym-checker"
        )
        process.start()
        child.close()
        if not parent.poll(self.start_timeout) or parent.recv() != _READY:
            _stop(process, parent)
            raise RuntimeError(f"the answer-checking worker did not start in {self.start_timeout}s")
        self._finalizer = weakref.finalize(self, _stop, process, parent)
        return process, parent

    def start(self) -> None:
        """Start the worker now rather than at the first check (it is started lazily)."""
        with self._lock:
            if self._worker is None:
                self._worker = self._start()

    def _restart_next_time(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self._worker = None

    def __call__(self, candidate: str, reference: str) -> Verdict:
        key = (candidate, reference)
        with self._lock:
            if key in self.cache:
                return self.cache[key]
            if self._worker is None:
                self._worker = self._start()
            _, conn = self._worker
            try:
                conn.send(key)
                if conn.poll(self.timeout):
                    verdict = conn.recv()
                    if verdict.method == "timeout":  # fn's own timeout stopped it
                        self.timeouts += 1
                else:
                    self.timeouts += 1
                    self._restart_next_time()
                    verdict = Verdict(
                        False, "timeout", error=f"TimeoutError: no verdict within {self.timeout}s"
                    )
            except (EOFError, OSError, BrokenPipeError) as exc:  # the worker died mid-check
                self._restart_next_time()
                verdict = Verdict(False, "error", error=f"worker died: {type(exc).__name__}: {exc}")
            if len(self.cache) < self.cache_size:
                self.cache[key] = verdict
            return verdict

    def close(self) -> None:
        """Stop the worker now (it also stops with this object or at interpreter exit)."""
        with self._lock:
            self._restart_next_time()

    def __enter__(self) -> BoundedChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

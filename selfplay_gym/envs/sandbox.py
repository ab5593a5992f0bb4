"""Run untrusted Python safely: one fresh, limited, isolated interpreter per run, and the
outcome returned as data.

Model-written code is hostile input. Each ``run`` starts ``python -I -S`` (no site-packages,
no PYTHON* variables, no script directory on the path) in a new session, with a scrubbed
environment, a private temporary directory as cwd, resource limits (``sandbox_limits``) and,
by default, its own network, mount, PID and IPC namespaces (``sandbox_isolation``). At the
wall-clock deadline the whole process group and the PID namespace are killed with SIGKILL.
The program's value, or its exception, comes back as JSON over a dedicated pipe (an inherited
descriptor, not stdout), so printing, closing stdout or exiting early cannot fake a result,
and the verdict is never read off the exit status alone.

    >>> from selfplay_gym.envs.sandbox import run
    >>> run("def f(x):\\n    return x * 2", call="f", args=(21,)).value  # doctest: +SKIP
    42

Verdicts: ``ok`` (a value), ``error`` (an exception; its type and message), ``timeout`` (the
wall-clock deadline or the CPU limit), ``memory`` (MemoryError under the address-space limit),
``killed`` (a signal: a segfault, the kernel), ``output_limit`` (stdout, stderr or the result
past its cap), ``no_result`` (the program exited, e.g. ``sys.exit(0)``, before its result).

Where namespaces cannot be set up, ``run`` raises SandboxUnavailable; ``isolation="none"``
runs anyway, with a SandboxWarning: the resource limits still hold, but the program can reach
the network and read whatever the caller's user can (see ``sandbox_isolation``).
"""

from __future__ import annotations

import functools
import json
import os
import selectors
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from selfplay_gym.envs import sandbox_child
from selfplay_gym.envs.sandbox_isolation import (
    WORK_DIR,
    base_interpreter,
    end_run,
    kill_uid,
    root_plan,
    run_uid,
    unshare_command,
)
from selfplay_gym.envs.sandbox_limits import (
    DEFAULT_LIMITS,
    Limits,
    count_processes,
    preexec,
    scrubbed_env,
)
from selfplay_gym.envs.sandbox_result import (
    VERDICTS,
    Collected,
    ExecutionResult,
    SandboxUnavailable,
    unavailable,
    verdict,
)

Isolation = Literal["namespace", "none"]
CHILD_SOURCE = Path(sandbox_child.__file__).read_text(encoding="utf-8")
GRACE_S = 0.2
"""After the program's supervisor reports, how long stragglers may keep pipes open."""
MIN_MEMORY_MB = 64
"""Below this the interpreter itself cannot start under RLIMIT_AS."""


class SandboxWarning(RuntimeWarning):
    """Untrusted code is about to run without namespace isolation."""


@dataclass(frozen=True)
class Job:
    """One program for ``run_many``: the arguments of ``run`` that vary per program."""

    code: str
    call: str | None = None
    args: tuple = ()
    timeout_s: float = 5.0
    memory_mb: int = 512
    stdin: str | None = None
    """Text the program reads on standard input (None: empty, as ``/dev/null``)."""


def run(code: str, *, call: str | None = None, args: Sequence[Any] = (), timeout_s: float = 5.0,
        memory_mb: int = 512, limits: Limits = DEFAULT_LIMITS,
        isolation: Isolation = "namespace", python: str | None = None,
        stdin: str | None = None) -> ExecutionResult:
    """Run ``code`` in a fresh sandboxed interpreter; if ``call`` names a function it defines,
    call it with ``args`` (JSON values) and return its value.

    ``timeout_s`` is the wall-clock deadline, from start-up to result; ``memory_mb`` the
    address-space limit; ``limits`` the rest. ``stdin`` is what the program reads on its
    standard input (held in a memory file, so it counts against ``Limits.file_mb``).
    ``python`` is the interpreter (default: the one behind this process, venv stripped).
    Raises SandboxUnavailable when ``isolation`` cannot be set up, ValueError on arguments
    that cannot be sent to the program."""
    _check_isolation(isolation)
    return _execute(Job(code, call, tuple(args), timeout_s, memory_mb, stdin), limits,
                    isolation, python or base_interpreter())


def run_many(jobs: Iterable[Job | str], *, workers: int = 2, limits: Limits = DEFAULT_LIMITS,
             isolation: Isolation = "namespace", python: str | None = None,
             ) -> list[ExecutionResult]:
    """Run several programs, ``workers`` at a time, each still in its own fresh process;
    results in the order of ``jobs`` (a bare string is ``Job(code)``)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    _check_isolation(isolation)
    interpreter = python or base_interpreter()
    batch = [Job(j) if isinstance(j, str) else j for j in jobs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda j: _execute(j, limits, isolation, interpreter), batch))


@functools.lru_cache(maxsize=4)
def isolation_problem(python: str | None = None) -> str | None:
    """Why namespace isolation does not work here (None when it does); probed once."""
    try:
        _execute(Job("pass", timeout_s=10.0), DEFAULT_LIMITS, "namespace",
                 python or base_interpreter())
    except SandboxUnavailable as exc:
        return str(exc)
    return None


def _check_isolation(isolation: str) -> None:
    if isolation not in ("namespace", "none"):
        raise ValueError(f"isolation must be 'namespace' or 'none', got {isolation!r}")
    if isolation == "none":
        warnings.warn("running untrusted code with isolation='none': resource limits apply, but "
                      "the program can use the network and read what this user can read",
                      SandboxWarning, stacklevel=3)


def _plan(python: str, isolated: bool) -> dict[str, Any]:
    if not isolated:
        return {"last_cap": 0}
    try:
        return root_plan(python)
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        raise ValueError(f"python={python!r} cannot be run as the sandbox's interpreter: {exc}") from exc


def _check(job: Job) -> None:
    """Misuse is refused before anything starts."""
    if not isinstance(job.code, str):
        raise ValueError(f"code must be a string, got {type(job.code).__name__}")
    if job.stdin is not None and not isinstance(job.stdin, str):
        raise ValueError(f"stdin must be a string or None, got {type(job.stdin).__name__}")
    if job.timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {job.timeout_s}")
    if job.memory_mb < MIN_MEMORY_MB:
        raise ValueError(f"memory_mb must be at least {MIN_MEMORY_MB}, got {job.memory_mb}")
    try:
        json.dumps([job.call, list(job.args)], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"call and args must be JSON values (numbers, strings, lists, dicts): "
                         f"{exc}") from exc


def _job_message(job: Job, limits: Limits, isolated: bool, tmp: str, plan: dict[str, Any],
                 uid: int | None) -> bytes:
    message = {
        "code": job.code, "call": job.call, "args": list(job.args), "stdin": job.stdin,
        "isolated": isolated,
        "root": tmp if isolated else None, "work": WORK_DIR if isolated else tmp, "uid": uid,
        "processes": limits.processes, "work_mb": limits.disk_mb,
        # without a user namespace or a uid of its own, the cap counts the caller's processes
        "processes_already": 0 if isolated or uid is not None else count_processes(os.getuid()),
        "dirs": [], "files": [], "devices": [], "symlinks": [], **plan,
    }
    return json.dumps(message).encode()


def _execute(job: Job, limits: Limits, isolation: str, python: str) -> ExecutionResult:
    _check(job)
    isolated = isolation == "namespace"
    try:
        prefix = unshare_command() if isolated else []
    except FileNotFoundError as exc:
        raise unavailable(str(exc)) from exc
    plan = _plan(python, isolated)
    tmp = tempfile.mkdtemp(prefix="selfplay-sandbox-")
    job_r, job_w = os.pipe()
    result_r, result_w = os.pipe()
    status_r, status_w = os.pipe()
    command = [*prefix, python, "-I", "-S", "-c", CHILD_SOURCE, str(job_r), str(result_w),
               str(status_w)]
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            pass_fds=(job_r, result_w, status_w), cwd=tmp, start_new_session=True,
            env=scrubbed_env(WORK_DIR if isolated else tmp),
            preexec_fn=preexec(limits, job.timeout_s, job.memory_mb))
    except BaseException:
        for fd in (job_w, result_r, status_r):
            os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        for fd in (job_r, result_w, status_w):
            os.close(fd)
    uid = run_uid(proc.pid)
    try:
        if uid is not None and not isolated:
            os.chown(tmp, uid, uid)
        try:
            sandbox_child.write_all(job_w, _job_message(job, limits, isolated, tmp, plan, uid))
        except BrokenPipeError:
            pass  # the child is gone already; its status (or silence) says why
        finally:
            os.close(job_w)
        pipes = {"stdout": proc.stdout.fileno(), "stderr": proc.stderr.fileno(),
                 "result": result_r, "status": status_r}
        got = _collect(pipes, started + job.timeout_s, limits)
    finally:  # whatever happened above, nothing of the run survives this block
        status, usage = end_run(proc.pid)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if uid is not None and not isolated:
            kill_uid(uid)  # anything the program detached from its process group
        for stream in (proc.stdout, proc.stderr):
            stream.close()
        for fd in (result_r, status_r):
            os.close(fd)
        shutil.rmtree(tmp, ignore_errors=True)
    return verdict(got, job.timeout_s, limits, isolation, wall=time.monotonic() - started,
                   cpu=usage.ru_utime + usage.ru_stime)


def _collect(pipes: dict[str, int], deadline: float, limits: Limits) -> Collected:
    """Read every pipe until all close, a cap is passed, or the deadline (then kill)."""
    caps = {"stdout": limits.output_bytes, "stderr": limits.output_bytes,
            "result": limits.result_bytes, "status": 1 << 16}
    got = Collected({name: bytearray() for name in pipes})
    selector = selectors.DefaultSelector()
    for name, fd in pipes.items():
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ, name)
    status_done = False
    try:
        while selector.get_map() and got.over is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                got.timed_out = not status_done
                break
            for key, _ in selector.select(remaining):
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(key.fd)
                    if key.data == "status":  # the supervisor is done: stragglers get a grace
                        status_done = True
                        deadline = min(deadline, time.monotonic() + GRACE_S)
                    continue
                buffer = got.data[key.data]
                room = caps[key.data] - len(buffer)
                buffer += chunk[:room]
                if len(chunk) > room:
                    got.over = key.data
                    break
    finally:
        selector.close()
    return got


__all__ = ["ExecutionResult", "Isolation", "Job", "Limits", "SandboxUnavailable",
           "SandboxWarning", "VERDICTS", "isolation_problem", "run", "run_many"]

"""What a sandboxed run comes back as: the ``ExecutionResult`` record, and the judgement
that turns what the run's pipes carried into its verdict.

The verdict is decided from data, never from the exit status alone: the supervisor's status
messages (trusted: the program never holds that pipe), the program's JSON result, and what
the runner itself did (a deadline, a cap passed).
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass, field
from typing import Any

from selfplay_gym.envs.sandbox_limits import Limits

VERDICTS = ("ok", "error", "timeout", "memory", "killed", "output_limit", "no_result")


class SandboxUnavailable(RuntimeError):
    """The isolation asked for could not be set up here; the message says what to do."""


def unavailable(reason: str) -> SandboxUnavailable:
    return SandboxUnavailable(
        f"namespace isolation could not be set up: {reason.strip()}. Run where `unshare "
        "--net --mount --pid` works (as root: with CAP_SYS_ADMIN; as another user: with "
        "unprivileged user namespaces enabled, `--user`), or pass "
        "isolation='none' to run without network and filesystem isolation (resource limits "
        "still apply; a SandboxWarning is issued).")


@dataclass(frozen=True)
class ExecutionResult:
    """What one run did. ``value`` is the JSON form of the called function's return value."""

    verdict: str
    value: Any = None
    error_type: str | None = None
    error_message: str | None = None
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    """The program's own exit status, when it exited rather than being killed."""
    signal: str | None = None
    """The signal that ended the program (``SIGXCPU``, ``SIGSEGV``, ...), if one did."""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    """CPU time of the run's processes that were reaped (a lower bound when it was killed)."""
    detail: str = ""
    """Why the verdict is what it is, in words."""
    isolation: str = "namespace"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


@dataclass
class Collected:
    """What the runner read from the run's pipes (stdout, stderr, result, status)."""

    data: dict[str, bytearray] = field(default_factory=dict)
    over: str | None = None
    """The pipe that passed its cap, if one did (the run was stopped there)."""
    timed_out: bool = False


def _messages(raw: bytes) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        try:
            merged.update(json.loads(line))
        except (ValueError, TypeError, RecursionError):
            continue
    return merged


def verdict(got: Collected, timeout_s: float, limits: Limits, isolation: str, wall: float,
            cpu: float) -> ExecutionResult:
    """The run's outcome; raises SandboxUnavailable when the sandbox itself never started."""
    status = _messages(bytes(got.data["status"]))
    stderr = bytes(got.data["stderr"]).decode("utf-8", "replace")
    if "setup_error" in status:
        raise unavailable(status["setup_error"])
    if not status.get("ready") and not got.timed_out and got.over is None:
        raise unavailable(f"the sandbox did not start: {stderr[-2000:] or 'no message'}")
    common = dict(stdout=bytes(got.data["stdout"]).decode("utf-8", "replace"), stderr=stderr,
                  wall_s=wall, cpu_s=cpu, isolation=isolation, exit_code=status.get("exit"))
    sig = status.get("signal")
    name = signal.Signals(sig).name if isinstance(sig, int) and sig in signal.Signals._value2member_map_ else None
    cpu_limit = limits.cpu_s if limits.cpu_s is not None else timeout_s
    if got.over is not None:
        cap = limits.result_bytes if got.over == "result" else limits.output_bytes
        return ExecutionResult("output_limit", detail=f"{got.over} passed {cap} bytes; stopped",
                               **common)
    if got.timed_out:
        return ExecutionResult("timeout", detail=f"killed at the {timeout_s:g} s deadline",
                               **common)
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= cpu_limit):
        return ExecutionResult("timeout", signal=name, detail=f"CPU limit ({cpu_limit:g} s)",
                               **common)
    if sig is not None:
        return ExecutionResult("killed", signal=name or str(sig), detail=f"ended by {name}",
                               **common)
    if "exit" not in status:
        return ExecutionResult("killed", detail="the run's supervisor was killed", **common)
    raw = bytes(got.data["result"])
    try:
        result = json.loads(raw) if raw else None
    except (ValueError, RecursionError):  # a program may write any bytes, deep nesting too
        result = None
    if isinstance(result, dict) and "value" in result:
        return ExecutionResult("ok", value=result["value"], **common)
    if isinstance(result, dict) and isinstance(result.get("error"), str):
        kind = "memory" if result["error"] == "MemoryError" else "error"
        return ExecutionResult(kind, error_type=result["error"],
                               error_message=str(result.get("message", "")),
                               detail=f"raised {result['error']}", **common)
    what = "a malformed result" if raw else "no result"
    return ExecutionResult("no_result", detail=f"exited with status {status['exit']} leaving {what}",
                           **common)

"""Resource limits of one sandboxed run, and the environment it starts with.

Each limit closes one way a hostile program could hurt the machine or the run; the field
docstrings of ``Limits`` say which. All but the process count are set by ``preexec`` in the
forked child before it executes anything, so they bind ``unshare``, the interpreter's start-up
and the program alike; the process count is set by the child itself once it runs as the uid
it will keep (``sandbox_child.drop_privileges``), because RLIMIT_NPROC counts processes per
uid (per user namespace): set earlier, it would count the caller's own processes, or not bind
at all for root.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """What one run may use besides wall time and memory (``run``'s ``timeout_s``, ``memory_mb``)."""

    cpu_s: float | None = None
    """CPU seconds (RLIMIT_CPU; default: the wall-clock timeout). A busy loop is stopped by
    SIGXCPU even when the wall-clock deadline is generous; reported as ``timeout``."""
    processes: int = 32
    """Processes and threads the program may have at once (RLIMIT_NPROC). Stops fork bombs:
    past it ``fork`` fails with EAGAIN instead of filling the process table."""
    file_mb: int = 16
    """Largest file the program may write (RLIMIT_FSIZE; writes past it fail with EFBIG)."""
    disk_mb: int = 64
    """All the program may write, in files of any number (ENOSPC past it). Isolated runs only:
    their writable ``/tmp`` is a tmpfs of this size; RLIMIT_FSIZE alone bounds one file, not
    a loop creating thousands."""
    open_files: int = 64
    """Open file descriptors (RLIMIT_NOFILE). Stops descriptor exhaustion loops from reaching
    the system-wide file table."""
    output_bytes: int = 64 * 1024
    """Bytes of stdout and of stderr kept. A program that writes more is killed at once and
    reported as ``output_limit``: 100 MB of prints cost a few milliseconds, not a full read."""
    result_bytes: int = 1 << 20
    """Bytes of the JSON result accepted on the result pipe; more is ``output_limit`` too."""

    def __post_init__(self) -> None:
        for name in ("processes", "file_mb", "disk_mb", "open_files", "output_bytes",
                     "result_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be at least 1, got {getattr(self, name)}")
        if self.cpu_s is not None and self.cpu_s <= 0:
            raise ValueError(f"Limits.cpu_s must be positive, got {self.cpu_s}")


DEFAULT_LIMITS = Limits()


def rlimits(limits: Limits, timeout_s: float, memory_mb: int) -> dict[int, tuple[int, int]]:
    """The (soft, hard) pairs ``preexec`` sets, by resource.

    - RLIMIT_AS: address space. A memory bomb gets MemoryError (``memory``) instead of pushing
      the machine into swap or the OOM killer choosing a victim.
    - RLIMIT_CPU: soft limit SIGXCPU, hard limit one second later SIGKILL (a program may catch
      SIGXCPU; it cannot catch the second).
    - RLIMIT_FSIZE, RLIMIT_NOFILE: see ``Limits``.
    - RLIMIT_CORE = 0: a crashing program writes no core file (disk, and a copy of its memory).
    """
    cpu = math.ceil(limits.cpu_s if limits.cpu_s is not None else timeout_s)
    memory = memory_mb * 2**20
    return {
        resource.RLIMIT_AS: (memory, memory),
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_FSIZE: (limits.file_mb * 2**20, limits.file_mb * 2**20),
        resource.RLIMIT_NOFILE: (limits.open_files, limits.open_files),
        resource.RLIMIT_CORE: (0, 0),
    }


def preexec(limits: Limits, timeout_s: float, memory_mb: int) -> Callable[[], None]:
    """The function ``Popen`` runs in the child between fork and exec: it sets the limits.

    It only calls ``setrlimit`` on values computed beforehand: nothing that takes a lock
    another thread may have held at fork time, so ``run_many``'s threads can fork safely."""
    pairs = list(rlimits(limits, timeout_s, memory_mb).items())

    def set_limits() -> None:
        for which, pair in pairs:
            resource.setrlimit(which, pair)

    return set_limits


def scrubbed_env(home: str) -> dict[str, str]:
    """The whole environment of the program: nothing of the caller's (tokens, proxies, paths)
    leaks in. ``-I`` already makes the interpreter ignore PYTHON* variables."""
    return {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8"}


def count_processes(uid: int) -> int:
    """Processes (threads included, as RLIMIT_NPROC counts them) owned by ``uid`` now.

    Without namespaces a non-root program shares its uid with the caller, so its process cap
    has to be that many plus ``Limits.processes``."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid == uid:
                total += len(os.listdir(f"/proc/{entry.name}/task"))
        except OSError:
            continue
    return total

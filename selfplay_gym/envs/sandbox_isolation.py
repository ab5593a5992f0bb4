"""How a sandboxed run is isolated and ended: the ``unshare`` command, the root the program
will see, and the killing of whatever it left.

With ``isolation="namespace"`` every run gets its own namespaces from util-linux ``unshare``:

- network (``--net``): only a loopback interface that is down, so no connection leaves the
  run, not even to 127.0.0.1 on the host, and abstract Unix sockets are private too;
- mount (``--mount``, private propagation): the child builds a new root on a tmpfs and
  chroots into it (``sandbox_child.enter_root``), so the project, home directories and /etc
  are not there to be read, and everything but the run's own ``/tmp`` is read-only. chroot,
  not pivot_root, on purpose: the kernel refuses a new user namespace to a chrooted process,
  which closes the classic escape (a new user namespace gives back CAP_SYS_CHROOT);
- PID (``--pid``, ``--kill-child``, which forks): the program cannot see or signal any
  process outside the run (``os.getppid()`` is its supervisor, PID 1, which ignores signals
  from inside), and when PID 1 dies the kernel kills everything left in the run;
- IPC (``--ipc``): no System V shared memory or semaphores with the host;
- user (``--user --map-root-user``), only when the caller is not root: unprivileged users may
  create the others inside it; the program then keeps uid 0 of that namespace with every
  capability dropped. A root caller skips it and the program runs as a uid of its own
  (``run_uid``), so RLIMIT_NPROC binds (it never binds uid 0) and no host file is writable.

With ``isolation="none"`` only the limits, the scrubbed environment, the private cwd and the
new session remain. The program can use the network and read what its uid can; a root caller
still drops it to ``run_uid`` (so an interpreter kept where only root can read, such as pyenv
under /root, cannot import its extension modules); a non-root caller's program runs as the
caller, so it can signal the caller's processes, and a child that calls ``setsid()`` leaves
the process group that is killed: root callers sweep the run's uid (``kill_uid``), others
cannot. ``Limits.disk_mb`` is not enforced there.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

UID_BASE = 1_000_000_000
"""Root callers run each program as ``UID_BASE + the run's pid``: a uid no account, file or
other run has, so the process cap counts this run alone and leftovers are identifiable."""

DEVICES = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")
WORK_DIR = "/tmp"
"""The program's cwd, HOME and TMPDIR inside an isolated run: a private tmpfs, the same path
every run (so a program printing its cwd is deterministic)."""


def caller_is_root() -> bool:
    return os.geteuid() == 0


def run_uid(pid: int) -> int | None:
    """The uid a run started by root drops to; None when the caller is not root."""
    return UID_BASE + pid if caller_is_root() else None


def base_interpreter() -> str:
    """The real interpreter behind this one (a venv's python is a symlink plus pyvenv.cfg):
    the sandbox needs no site-packages, and its stdlib is what gets bound into the root."""
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def unshare_command() -> list[str]:
    """The ``unshare`` prefix of the command line (FileNotFoundError where it is missing)."""
    binary = shutil.which("unshare") or ("/usr/bin/unshare" if os.path.exists("/usr/bin/unshare")
                                         else None)
    if binary is None:
        raise FileNotFoundError("util-linux `unshare` is not installed")
    command = [binary, "--net", "--mount", "--pid", "--ipc", "--kill-child",
               "--propagation", "private"]
    if not caller_is_root():
        command += ["--user", "--map-root-user"]
    return command


@functools.lru_cache(maxsize=8)
def interpreter_paths(python: str) -> tuple[str, ...]:
    """Directories ``python`` reads at run time: its own, its stdlib and extension modules,
    and its shared library if it has one (asked of the interpreter itself, once)."""
    probe = ("import json, sys, sysconfig; p = sysconfig.get_paths('posix_prefix', vars={"
             "'base': sys.base_prefix, 'platbase': sys.base_exec_prefix}); "
             "print(json.dumps([p['stdlib'], p['platstdlib'], "
             "sysconfig.get_config_var('LIBDIR') or '', "
             "sysconfig.get_config_var('LDLIBRARY') or '', sysconfig.get_config_var('MULTIARCH') or '']))")
    out = subprocess.run([python, "-I", "-S", "-c", probe], capture_output=True, text=True,
                         check=True, timeout=30, env={"PATH": "/usr/bin:/bin"})
    stdlib, platstdlib, libdir, ldlibrary, multiarch = json.loads(out.stdout)
    paths = [os.path.dirname(python), os.path.dirname(os.path.realpath(python)), stdlib,
             platstdlib]
    if ldlibrary.endswith(".so") or ".so." in ldlibrary:
        paths.append(libdir)
    shared = [f"/lib/{multiarch}", f"/usr/lib/{multiarch}"] if multiarch else ["/lib", "/usr/lib"]
    return tuple(paths + shared + ["/lib64", "/usr/lib64"])


def _outermost(paths: list[str]) -> list[str]:
    """Existing real directories, none inside another (binding a parent covers the child)."""
    real = sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})
    kept: list[str] = []
    for path in real:
        if not any(path == k or path.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(path)
    return kept


@functools.lru_cache(maxsize=8)
def root_plan(python: str) -> dict[str, list]:
    """What the isolated root contains: read-only binds of directories and files, device
    nodes, and the top-level symlinks of merged-/usr systems (``/lib -> usr/lib``)."""
    symlinks = [[link, os.readlink(link)] for link in ("/bin", "/lib", "/lib32", "/lib64",
                                                        "/libx32", "/sbin")
                if os.path.islink(link)]
    files = [f for f in ("/etc/ld.so.cache",) if os.path.isfile(f)]
    last_cap = "/proc/sys/kernel/cap_last_cap"
    with open(last_cap) as f:
        cap = int(f.read())
    return {"dirs": _outermost(list(interpreter_paths(python))), "files": files,
            "devices": [d for d in DEVICES if os.path.exists(d)], "symlinks": symlinks,
            "last_cap": cap}


def _processes_of(uid: int) -> list[int]:
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                if next(int(line.split()[1]) for line in f if line.startswith("Uid:")) == uid:
                    pids.append(int(entry.name))
        except (OSError, StopIteration, ValueError):
            continue
    return pids


def kill_uid(uid: int, rounds: int = 100) -> int:
    """SIGKILL every process whose real uid is ``uid`` (one of ``run_uid``'s, never another);
    without a PID namespace this is what reaches a process that called ``setsid()``.

    A fork bomb refills the slots that kills free, so the sweep first stops (SIGSTOP) every
    process it finds until a sweep finds no new one (stopped processes keep their
    RLIMIT_NPROC slots, so nothing new can start), then kills them all."""
    if uid < UID_BASE:
        raise ValueError(f"refusing to kill the processes of uid {uid}: not a sandbox uid")
    stopped: set[int] = set()
    for _ in range(rounds):
        new = [pid for pid in _processes_of(uid) if pid not in stopped]
        if not new:
            break
        for pid in new:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
            stopped.add(pid)
    for pid in stopped | set(_processes_of(uid)):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return len(stopped)


def end_run(pid: int) -> tuple[int, Any]:
    """End the run and reap it: (wait status, rusage) of the process ``Popen`` started.

    First SIGKILL that process's children (with isolation: PID 1 of the run's namespace,
    whose death takes every process in it, even one that left the process group; without:
    the program), so that their parent reaps them rather than the host's init; then, after a
    second at most, the whole process group."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        with contextlib.suppress(OSError, IndexError):
            if Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                os.kill(int(child), signal.SIGKILL)
    give_up = time.monotonic() + 1.0
    while time.monotonic() < give_up:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.002)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _, status, usage = os.wait4(pid, 0)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # what is left of the group (runs without isolation)
    return status, usage

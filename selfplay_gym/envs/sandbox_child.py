"""The trusted side of one sandboxed run: what the fresh interpreter does before, around and
after the untrusted program.

``sandbox.py`` starts ``python -I -S -c <this file's text> JOB_FD RESULT_FD STATUS_FD``
(inside ``unshare`` when isolated); nothing here imports the package, only the standard
library, so the text runs in an interpreter that cannot see the project. Order of events:

1. read the job (code, call, args, the root to build) from JOB_FD and close it;
2. isolated: build a fresh read-only root on a tmpfs (the interpreter, its stdlib, the shared
   libraries, four device nodes, a private ``/proc`` and a private writable ``/tmp``), chroot
   into it; not isolated: chdir into the private temporary directory;
3. drop privileges (a per-run uid when started as root, else every capability), forbid new
   privileges, cap the process count (after the uid change: RLIMIT_NPROC counts per uid);
4. report ``ready`` on STATUS_FD and fork: the child runs the program and writes its value or
   exception as JSON on RESULT_FD; this process (PID 1 of the run's PID namespace when
   isolated) waits for it and reports its exit status on STATUS_FD, which the child closed
   first, so the program cannot forge it. When PID 1 exits, the kernel kills every process
   left in the namespace, however it detached itself.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import signal
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
KEEP_FLAGS = MS_NOEXEC | 1024 | 2048 | 4096  # noexec, noatime, nodiratime, relatime
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
MESSAGE_CHARS = 2000


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def send(fd: int, message: dict) -> None:
    write_all(fd, (json.dumps(message) + "\n").encode())


class Libc:
    """The four libc calls the standard library lacks: mount, prctl, capset (ctypes)."""

    def __init__(self) -> None:
        import ctypes

        self.ctypes = ctypes
        self.lib = ctypes.CDLL(None, use_errno=True)
        self.lib.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
        self.lib.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4

    def check(self, rc: int, what: str) -> None:
        if rc != 0:
            errno = self.ctypes.get_errno()
            raise OSError(errno, f"{what}: {os.strerror(errno)}")

    def mount(self, source, target: str, fstype, flags: int, data=None) -> None:
        def enc(s):
            return None if s is None else s.encode()

        rc = self.lib.mount(enc(source), target.encode(), enc(fstype), flags, enc(data))
        self.check(rc, f"mount {source or ''} on {target}")

    def prctl(self, option: int, arg: int = 0) -> None:
        self.check(self.lib.prctl(option, arg, 0, 0, 0), f"prctl({option})")

    def clear_capabilities(self) -> None:
        """Empty the effective, permitted and inheritable sets (capset, version 3)."""
        c = self.ctypes

        class Header(c.Structure):
            _fields_ = [("version", c.c_uint32), ("pid", c.c_int)]

        class Data(c.Structure):
            _fields_ = [("effective", c.c_uint32), ("permitted", c.c_uint32),
                        ("inheritable", c.c_uint32)]

        self.check(self.lib.capset(c.byref(Header(0x20080522, 0)), (Data * 2)()), "capset")


def bind_read_only(libc: Libc, path: str, target: str) -> None:
    """Bind ``path`` at ``target`` read-only, nosuid, nodev, keeping flags the source locks."""
    libc.mount(path, target, None, MS_BIND)
    kept = os.statvfs(path).f_flag & KEEP_FLAGS
    libc.mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | kept)


def enter_root(libc: Libc, job: dict) -> None:
    """Build the run's root on a tmpfs over ``job["root"]`` and chroot into it.

    Whitelist, not blacklist: only what the interpreter needs is bound in, read-only, so the
    project, home directories and /etc are simply absent. Writable: ``/tmp`` alone, a tmpfs
    of ``work_mb`` (bounds the total a program can write, which RLIMIT_FSIZE cannot)."""
    root = job["root"]
    libc.mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for link, target in job["symlinks"]:
        os.makedirs(os.path.dirname(root + link), exist_ok=True)
        os.symlink(target, root + link)
    for path in job["dirs"]:
        os.makedirs(root + path, exist_ok=True)
        bind_read_only(libc, path, root + path)
    for path in job["files"] + job["devices"]:
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        open(root + path, "w").close()
        if path in job["devices"]:
            libc.mount(path, root + path, None, MS_BIND)
        else:
            bind_read_only(libc, path, root + path)
    os.makedirs(root + "/proc")
    # a user namespace may not mount proc where the host's is partly masked (containers):
    # then the run has an empty /proc, less to see and nothing lost
    with contextlib.suppress(OSError):
        libc.mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.makedirs(root + job["work"])
    owner = "" if job["uid"] is None else f",uid={job['uid']},gid={job['uid']}"
    libc.mount("tmpfs", root + job["work"], "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={job['work_mb']}m,mode=700{owner}")
    libc.mount(None, root, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(root)
    os.chdir(job["work"])


def drop_privileges(libc: Libc, job: dict) -> None:
    """No capability survives into the program, and it cannot regain one (setuid binaries,
    file capabilities); the process cap applies to the uid the program runs as."""
    import resource

    if os.geteuid() == 0:  # real root, or root of the run's own user namespace
        for cap in range(job["last_cap"] + 1):
            libc.prctl(PR_CAPBSET_DROP, cap)
    if job["uid"] is not None:  # started as real root: become a uid no one else has
        os.setgroups([])
        os.setgid(job["uid"])
        os.setuid(job["uid"])
    elif os.geteuid() == 0:  # root of our own user namespace: keep the uid, lose the powers
        libc.clear_capabilities()
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # a uid change clears the parent's setting
    nproc = job["processes"] + job["processes_already"]
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def feed_stdin(text: str) -> None:
    """Put ``text`` on descriptor 0, where ``input()``, ``sys.stdin`` and ``open(0)`` read it:
    a memory file, so no pipe fills up waiting for a reader and nothing touches the disk."""
    fd = os.memfd_create("stdin")
    write_all(fd, text.encode("utf-8", "replace"))
    os.lseek(fd, 0, os.SEEK_SET)
    os.dup2(fd, 0)
    os.close(fd)


def run_program(job: dict, result_fd: int) -> None:
    """Feed the job's stdin, run the program, then its ``call``; write the outcome as JSON;
    never return.

    SystemExit and KeyboardInterrupt are not caught: a program that exits before its result
    leaves none, and the runner says so (``no_result``). Processes the program forked that
    come back here exit silently, so only the main process can write the result."""
    main_pid = os.getpid()
    sys.argv = ["<program>"]
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        if job.get("stdin") is not None:
            feed_stdin(job["stdin"])
        exec(compile(job["code"], "<program>", "exec"), namespace)
        value = None
        if job["call"] is not None:
            if not callable(namespace.get(job["call"])):
                raise NameError(f"the program defines no function {job['call']!r}")
            value = namespace[job["call"]](*job["args"])
        text = json.dumps({"value": value})
    except Exception as exc:
        try:
            message = str(exc)[:MESSAGE_CHARS]
        except Exception:
            message = "<unprintable>"
        text = json.dumps({"error": type(exc).__name__, "message": message})
    if os.getpid() != main_pid:
        os._exit(0)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        write_all(result_fd, text.encode())
    os._exit(0)


def supervise(pid: int) -> dict:
    """Reap every child (orphans included) until the program's main process is gone."""
    while True:
        try:
            reaped, status = os.wait()
        except ChildProcessError:
            return {"lost": True}
        if reaped == pid:
            if os.WIFSIGNALED(status):
                return {"signal": os.WTERMSIG(status)}
            return {"exit": os.WEXITSTATUS(status)}


def main(argv: list[str]) -> None:
    job_fd, result_fd, status_fd = (int(a) for a in argv[1:4])
    job = json.loads(read_all(job_fd))
    os.close(job_fd)
    try:
        libc = Libc()
        if job["isolated"]:
            enter_root(libc, job)
        else:
            os.chdir(job["work"])
        drop_privileges(libc, job)
    except Exception as exc:
        send(status_fd, {"setup_error": f"{type(exc).__name__}: {exc}"})
        os._exit(1)
    send(status_fd, {"ready": True})
    pid = os.fork()
    if pid == 0:
        os.close(status_fd)
        run_program(job, result_fd)
    os.close(result_fd)
    libc.prctl(PR_SET_DUMPABLE, 0)  # the program (same uid) may not ptrace its supervisor
    send(status_fd, supervise(pid))
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv)

"""The sandbox against hostile programs: each is contained and reported, and one test counts.

Every program runs for real, in a real subprocess, with deadlines of about a second. The
whole suite goes through ``run_many`` once (a module fixture, two workers); each case then
checks its own result and the host side (files, processes, sockets) afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from selfplay_gym.envs.sandbox import (
    ExecutionResult,
    Job,
    Limits,
    SandboxWarning,
    isolation_problem,
    run,
    run_many,
)
from selfplay_gym.envs.sandbox_isolation import UID_BASE, caller_is_root
from selfplay_gym.envs.sandbox_limits import scrubbed_env

PROJECT = Path(__file__).resolve().parents[2]
MARK = uuid.uuid4().hex[:12]
ESCAPES = [str(PROJECT / f"ESCAPED-{MARK}"), f"/etc/ESCAPED-{MARK}", f"/usr/lib/ESCAPED-{MARK}",
           f"/ESCAPED-{MARK}", f"/dev/shm/ESCAPED-{MARK}", f"/var/tmp/ESCAPED-{MARK}",
           str(Path.home() / f"ESCAPED-{MARK}"), f"../ESCAPED-{MARK}",
           str(Path(tempfile.gettempdir()) / f"ESCAPED-{MARK}")]
SECRETS = [str(PROJECT / "README.md"), str(PROJECT / "pyproject.toml"), __file__, "/etc/passwd",
           str(Path.home() / ".bashrc"), "/proc/1/environ"]


@dataclass
class Host:
    """What the programs aim at on the host side: a listening socket and a bystander process."""

    server: socket.socket
    canary: subprocess.Popen


@dataclass(frozen=True)
class Case:
    name: str
    job: Callable[[Host], Job]
    check: Callable[[ExecutionResult, Host], None]


def attempts(body: str) -> str:
    """A program whose ``f(items)`` tries ``body`` (using ``x``) on each item, recording what
    happened instead of stopping at the first failure."""
    return ("import os, signal, socket, subprocess\n"
            "def f(items):\n    out = {}\n    for x in items:\n        try:\n"
            f"            out[str(x)] = {body}\n"
            "        except Exception as e:\n            out[str(x)] = type(e).__name__\n"
            "    return out\n")


def _leftovers() -> list[str]:
    """Live processes still running the sandbox's child bootstrap, or holding a sandbox uid
    (a zombie is dead already: it only waits for its parent to collect its status)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
            uid = int(status.split("\nUid:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            continue
        if "\nState:\tZ" in status:
            continue
        if b"The trusted side of one sandboxed run" in cmdline or uid >= UID_BASE:
            found.append(entry.name)
    return found


def no_leftovers(within_s: float = 2.0) -> None:
    deadline = time.monotonic() + within_s
    while (left := _leftovers()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes outlived their run: {left}"


# --- the checks, one per hostile program -------------------------------------------------------
def fork_bomb(r, host):
    assert r.verdict == "timeout" and r.wall_s < 3
    no_leftovers()


def memory_bomb(r, host):
    assert r.verdict == "memory" and r.error_type == "MemoryError"


def busy_loop(r, host):
    assert r.verdict == "timeout" and r.signal == "SIGXCPU", r  # the CPU limit, not the deadline


def deadline(r, host):
    assert r.verdict == "timeout" and r.signal is None and 0.9 < r.wall_s < 2.5, r


def write_outside(r, host):
    assert r.verdict == "ok", r
    for path, outcome in r.value.items():
        # only the sandbox's own /tmp (a private tmpfs) takes writes; a checkout that itself
        # lies under /tmp (a CI clone) is not there, so writing into it fails like any other
        if path == "inside" or os.path.dirname(path) == "/tmp":
            assert outcome == "written", (path, outcome)
        else:
            assert outcome in ("FileNotFoundError", "OSError", "PermissionError"), (path, outcome)
    assert not [p for p in ESCAPES if os.path.exists(os.path.abspath(p))]
    assert not os.path.exists(PROJECT.parent / f"ESCAPED-{MARK}")


def read_project(r, host):
    assert r.verdict == "ok", r
    for path in SECRETS:
        assert r.value[path] in ("FileNotFoundError", "PermissionError"), (path, r.value[path])
    assert r.value["cwd"] == "/tmp" and r.value["listing"] == []
    assert r.value["env"] == scrubbed_env("/tmp")
    assert r.value["project"] is False


def network(r, host):
    assert r.verdict == "ok", r
    assert set(r.value.values()) <= {"OSError", "gaierror", "ConnectionRefusedError", "TimeoutError"}
    host.server.settimeout(0)
    with pytest.raises(BlockingIOError):
        host.server.accept()  # nothing ever connected


def shell(r, host):
    assert r.verdict == "ok", r
    system, spawned = r.value["system"], r.value["spawn"]
    if spawned == "FileNotFoundError":  # the usual case: no shell in the run's root
        assert system != 0
    assert "selfplay-gym" not in r.stdout  # a shell that exists still cannot read the project


def kill_parent(r, host):
    assert r.verdict == "ok", r
    assert r.value["ppid"] == 1  # its supervisor, PID 1 of the run, which ignores the signal
    assert host.canary.poll() is None, "the bystander process was killed"
    os.kill(os.getpid(), 0)  # and this process, the runner, is alive


def closed_stdout(r, host):
    assert r.verdict == "ok" and r.value == 42 and r.stdout == "", r


def flood(r, host):
    assert r.verdict == "output_limit" and len(r.stdout) == Limits().output_bytes and r.wall_s < 5


def early_exit(r, host):
    assert r.verdict == "no_result" and r.exit_code == 0 and r.value is None, r


def hard_exit(r, host):
    assert r.verdict == "no_result" and r.exit_code == 3, r


def recursion(r, host):
    assert r.verdict == "error" and r.error_type == "RecursionError", r


def c_stack(r, host):
    assert r.verdict == "killed" and r.signal == "SIGSEGV", r


def big_file(r, host):
    assert r.verdict == "error" and "File too large" in r.error_message, r


def full_disk(r, host):
    assert r.verdict == "error" and "No space left" in r.error_message, r


def descriptors(r, host):
    assert r.verdict == "error" and "Too many open files" in r.error_message, r


def privileges(r, host):
    assert r.verdict == "ok", r
    for attempt in ("unshare user", "unshare mount", "unshare net", "chroot", "mount"):
        assert r.value[attempt] == "Operation not permitted", (attempt, r.value)
    assert r.value["CapEff"] == "0" * 16 and r.value["NoNewPrivs"] == "1"
    assert set(r.value["processes"]) <= {"1", "2"}  # its supervisor and itself, nothing of the host


REGAIN = """import ctypes, os
def f():
    libc = ctypes.CDLL(None, use_errno=True)
    def errno(rc):
        return "ok" if rc == 0 else os.strerror(ctypes.get_errno())
    out = {"unshare " + name: errno(libc.unshare(flag)) for name, flag in
           (("user", 0x10000000), ("mount", 0x20000), ("net", 0x40000000))}
    out["mount"] = errno(libc.mount(b"tmpfs", b"/usr", b"tmpfs", 0, None))
    try:
        os.chroot("/usr")
        out["chroot"] = "ok"
    except OSError as e:
        out["chroot"] = e.strerror
    status = open("/proc/self/status").read()
    for key in ("CapEff", "NoNewPrivs"):
        out[key] = status.split(key + ":")[1].split()[0]
    out["processes"] = [p for p in os.listdir("/proc") if p.isdigit()]
    return out
"""


def forged_output(r, host):
    assert r.verdict == "ok" and r.value == 2, r


CASES = [
    Case("fork bomb", lambda h: Job(
        "import os\nwhile True:\n    try:\n        if os.fork() == 0:\n            os.setsid()\n"
        "    except OSError:\n        pass\n", timeout_s=1.0), fork_bomb),
    Case("memory bomb", lambda h: Job("x = bytearray(2 * 1024**3)\n", memory_mb=512), memory_bomb),
    Case("busy loop", lambda h: Job("while True:\n    pass\n", timeout_s=10.0), busy_loop),
    Case("sleep past the deadline", lambda h: Job("import time\ntime.sleep(60)\n", timeout_s=1.0),
         deadline),
    Case("write outside", lambda h: Job(
        attempts("open(x, 'w').write('escaped') and 'written'")
        + "def g(items):\n    out = f(items)\n    open('inside', 'w').write('x')\n"
          "    out['inside'] = 'written'\n    return out\n", "g", (ESCAPES,)), write_outside),
    Case("read the project", lambda h: Job(
        attempts("open(x).read()[:80]") + "def g(items):\n    out = f(items)\n"
        "    out['cwd'], out['listing'], out['env'] = os.getcwd(), os.listdir('.'), dict(os.environ)\n"
        f"    out['project'] = os.path.exists({str(PROJECT)!r})\n    return out\n",
        "g", (SECRETS,)), read_project),
    Case("open sockets", lambda h: Job(attempts(
        "(socket.create_connection(tuple(x), 1), 'connected')[1] if isinstance(x, list)"
        " else socket.getaddrinfo(x, 80) and 'resolved'"),
        "f", ([["127.0.0.1", h.server.getsockname()[1]], ["1.1.1.1", 80], "example.com"],)),
        network),
    Case("spawn a shell", lambda h: Job(
        "import os, subprocess\ndef f(readme):\n    out = {'system': os.system(f'cat {readme}')}\n"
        "    try:\n        subprocess.run(['/bin/sh', '-c', f'cat {readme}'])\n"
        "        out['spawn'] = 'ran'\n    except OSError as e:\n"
        "        out['spawn'] = type(e).__name__\n    return out\n", "f",
        (str(PROJECT / "README.md"),)), shell),
    Case("kill the parent", lambda h: Job(attempts("os.kill(x, signal.SIGKILL) or 'sent'")
        + "def g(items):\n    out = f([os.getppid(), *items])\n    out['ppid'] = os.getppid()\n"
          "    return out\n", "g", ([-1, 1, h.canary.pid, os.getpid()],)), kill_parent),
    Case("close stdout", lambda h: Job(
        "import os\ndef f():\n    os.close(1)\n    os.close(2)\n    return 42\n", "f"),
        closed_stdout),
    Case("print 100 MB", lambda h: Job("import sys\nsys.stdout.write('x' * 100_000_000)\n"), flood),
    Case("sys.exit(0) first", lambda h: Job("import sys\ndef f():\n    sys.exit(0)\n", "f"),
         early_exit),
    Case("os._exit(3) first", lambda h: Job("import os\ndef f():\n    os._exit(3)\n", "f"),
         hard_exit),
    Case("recursion bomb", lambda h: Job("def f():\n    return f()\n", "f"), recursion),
    Case("C-stack recursion bomb", lambda h: Job(
        "import sys\nsys.setrecursionlimit(10**6)\nclass R:\n    def __repr__(self):\n"
        "        return repr(self)\nrepr(R())\n"), c_stack),
    Case("ignore SIGTERM and SIGXCPU", lambda h: Job(
        "import signal, time\nfor s in (signal.SIGTERM, signal.SIGXCPU, signal.SIGINT):\n"
        "    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.01)\n",
        timeout_s=1.0), deadline),
    Case("write a 100 MB file", lambda h: Job(
        "def f():\n    with open('big', 'wb') as fh:\n        for _ in range(100):\n"
        "            fh.write(bytes(2**20))\n", "f"), big_file),
    Case("fill the disk", lambda h: Job(
        "def f():\n    for i in range(100):\n        with open(f'part{i}', 'wb') as fh:\n"
        "            fh.write(bytes(8 * 2**20))\n", "f"), full_disk),
    Case("exhaust descriptors", lambda h: Job(
        "def f():\n    return [open('/dev/null') for _ in range(10_000)]\n", "f"), descriptors),
    Case("regain privileges (new user namespace, chroot, mount)", lambda h: Job(REGAIN, "f"),
         privileges),
    Case("forge the result on stdout", lambda h: Job(
        "def f():\n    print('{\"value\": 1}')\n    return 2\n", "f"), forged_output),
]


@pytest.fixture(scope="module")
def outcomes(isolated):
    server = socket.create_server(("127.0.0.1", 0))
    canary = subprocess.Popen(["sleep", "60"])
    host = Host(server, canary)
    try:
        results = run_many([case.job(host) for case in CASES], workers=2,
                           limits=Limits(cpu_s=1.0))
        yield host, dict(zip([c.name for c in CASES], results, strict=True))
    finally:
        canary.kill()
        canary.wait()
        server.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_program_is_contained(outcomes, case):
    host, results = outcomes
    case.check(results[case.name], host)


def test_every_hostile_program_is_contained_and_counted(outcomes):
    host, results = outcomes
    escapes = []
    for case in CASES:
        try:
            case.check(results[case.name], host)
        except AssertionError as exc:
            escapes.append(f"{case.name}: {exc}")
    print(f"hostile programs contained: {len(CASES) - len(escapes)}/{len(CASES)}")
    assert not escapes, escapes
    assert len(CASES) >= 21


# --- the API -----------------------------------------------------------------------------------
def test_value_output_and_errors_come_back_as_data(isolated):
    ok = run("print('hi')\ndef f(a, b):\n    return {'sum': a + b}\n", call="f", args=(2, 3))
    assert (ok.verdict, ok.value, ok.stdout, ok.isolation) == ("ok", {"sum": 5}, "hi\n", "namespace")
    missing = run("x = 1\n", call="f")
    assert missing.verdict == "error" and missing.error_type == "NameError"
    not_json = run("def f():\n    return {1, 2}\n", call="f")
    assert not_json.verdict == "error" and not_json.error_type == "TypeError"
    syntax = run("def f(:\n")
    assert syntax.verdict == "error" and syntax.error_type == "SyntaxError"


def test_run_many_keeps_order_and_gives_each_run_a_fresh_process(isolated):
    code = ("import os\ndef f(i):\n    assert not os.path.exists('seen')\n"
            "    open('seen', 'w').close()\n    return i\n")
    results = run_many([Job(code, "f", (i,)) for i in range(6)], workers=2)
    assert [r.value for r in results] == list(range(6))
    assert run_many(["print(1)"], workers=1)[0].stdout == "1\n"


def test_misuse_raises_with_the_fix():
    with pytest.raises(ValueError, match="'namespace' or 'none'"):
        run("pass", isolation="off")
    with pytest.raises(ValueError, match="JSON"):
        run("def f(x):\n    return x\n", call="f", args=(object(),))
    with pytest.raises(ValueError, match="memory_mb"):
        run("pass", memory_mb=8)
    with pytest.raises(ValueError, match="cannot be run"):
        run("pass", python="/nonexistent/python3")


@pytest.mark.skipif(not caller_is_root() or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to take CAP_SYS_ADMIN away")
def test_refuses_when_namespaces_cannot_be_created():
    """Root without CAP_SYS_ADMIN (a default Docker container) cannot unshare: refused."""
    script = ("from selfplay_gym.envs.sandbox import SandboxUnavailable, run\n"
              "try:\n    run('pass')\nexcept SandboxUnavailable as e:\n    print('REFUSED', e)\n")
    out = subprocess.run(["setpriv", "--bounding-set", "-sys_admin", sys.executable, "-c", script],
                         capture_output=True, text=True, timeout=120, cwd=PROJECT)
    assert "REFUSED" in out.stdout and "isolation='none'" in out.stdout, out


def test_namespaces_work_here(isolated):
    assert isolation_problem() is None  # else every isolated test above would be skipped


def test_without_isolation_limits_hold_and_a_warning_says_what_is_lost():
    with pytest.warns(SandboxWarning, match="network"):
        ok = run("def f(x):\n    return x + 1\n", call="f", args=(1,), isolation="none")
    assert ok.verdict == "ok" and ok.value == 2 and ok.isolation == "none"
    with pytest.warns(SandboxWarning):
        results = run_many([Job("x = bytearray(2 * 1024**3)\n"),
                            Job("import time\ntime.sleep(60)\n", timeout_s=1.0)],
                           isolation="none")
    assert [r.verdict for r in results] == ["memory", "timeout"]


@pytest.mark.skipif(not caller_is_root(), reason="the per-run uid sweep exists for root callers")
def test_without_isolation_a_detached_fork_bomb_is_swept():
    with pytest.warns(SandboxWarning):
        bomb = run("import os\nwhile True:\n    try:\n        if os.fork() == 0:\n"
                   "            os.setsid()\n    except OSError:\n        pass\n",
                   timeout_s=1.0, isolation="none")
    assert bomb.verdict == "timeout"
    no_leftovers()


def test_signal_names_are_reported(isolated):
    r = run("import os, signal\nos.kill(os.getpid(), signal.SIGABRT)\n")
    assert r.verdict == "killed" and r.signal == "SIGABRT", r
    assert signal.SIGABRT.name == r.signal


def test_a_deeply_nested_forged_result_is_no_result_not_a_crash(isolated):
    deep = b'{"value": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    code = ("import os\nfor fd in range(3, 20):\n    try:\n"
            f"        os.write(fd, {deep!r})\n    except OSError:\n        pass\n")
    result = run(code, timeout_s=10.0)
    assert (result.verdict, result.value) == ("no_result", None) and "malformed" in result.detail

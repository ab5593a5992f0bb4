"""Sandbox throughput: runs per second of trivial programs, serial and with parallel workers.

Every run is a fresh ``python -I -S`` under resource limits; with ``isolation="namespace"``
(the default) it also gets its own network, mount, PID and IPC namespaces and a freshly built
read-only root. The program is ``def f(x): return x + 1`` called with one argument, so the
figure is the sandbox's fixed cost per run: what a code task pays before its own work.
Rows: namespace serial, namespace with ``--workers`` threads (``run_many``), and no isolation
serial (the limits alone, for what the namespaces cost). Medians of ``--repeats`` rounds;
"load avg" is the 1-minute load when the run started (other work on the machine).

Run ``python benchmarks/sandbox.py [--runs 40] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
import warnings

from common import append_row, machine, median, result_line

from selfplay_gym.envs.sandbox import Job, SandboxWarning, run_many

NAME = "sandbox"
PROGRAM = "def f(x):\n    return x + 1\n"
COLUMNS = ("date", "machine", "cores", "load avg", "python", "runs", "namespace serial runs/s",
           "namespace ms/run", "namespace {w} workers runs/s", "speed-up", "no isolation runs/s")


def runs_per_second(runs: int, workers: int, isolation: str) -> float:
    """One round: ``runs`` fresh sandboxed runs, ``workers`` at a time; every one must be ok."""
    jobs = [Job(PROGRAM, "f", (i,)) for i in range(runs)]
    started = time.perf_counter()
    results = run_many(jobs, workers=workers, isolation=isolation)
    seconds = time.perf_counter() - started
    bad = [r for i, r in enumerate(results) if not r.ok or r.value != i + 1]
    if bad:
        raise RuntimeError(f"{len(bad)} runs failed, first: {bad[0]}")
    return runs / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per round")
    parser.add_argument("--workers", type=int, default=2, help="parallel runs in run_many")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported")
    args = parser.parse_args()

    warnings.simplefilter("ignore", SandboxWarning)  # the no-isolation row is meant
    load = os.getloadavg()[0]  # other work on the machine slows every row alike; say how much
    runs_per_second(4, 1, "namespace")  # warm-up: the interpreter probe, page cache
    serial, parallel, bare = [], [], []
    for _ in range(args.repeats):  # contenders alternate, so drift hits all of them alike
        serial.append(runs_per_second(args.runs, 1, "namespace"))
        parallel.append(runs_per_second(args.runs, args.workers, "namespace"))
        bare.append(runs_per_second(args.runs, 1, "none"))
    figures = {
        "serial_runs_per_s": median(serial),
        "ms_per_run": 1000 / median(serial),
        "parallel_runs_per_s": median(parallel),
        "speedup": median(parallel) / median(serial),
        "no_isolation_runs_per_s": median(bare),
    }
    for key, value in figures.items():
        print(f"{key:>26}: {value:.2f}")
    columns = [c.format(w=args.workers) for c in COLUMNS]
    values = [datetime.date.today().isoformat(), machine(), os.cpu_count(), f"{load:.1f}",
              platform.python_version(), args.runs, *(f"{v:.1f}" for v in figures.values())]
    path = append_row(NAME, "Sandbox throughput", __doc__.split("\n\n")[1].replace("\n", " "),
                      columns, values)
    print(f"appended to {path}")
    print(result_line({"workers": args.workers, "runs": args.runs, **figures}))


if __name__ == "__main__":
    main()

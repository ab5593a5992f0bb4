"""Concurrent throughput of ``selfplay-gym serve``: many clients, mixed sampling settings.

``--clients`` threads each send ``--requests`` chat completions one after another (R-Zero
solver prompts, ``--max-tokens`` new tokens), the way an evaluation harness or a pool of agents
drives a server. The temperatures and top-p of the requests cycle through several settings,
so a server that can only batch requests with equal settings splits its batches. Reported:
generated tokens per second of wall time (the median of ``--repeats`` rounds), requests per
second, latency p50 and p95 over all rounds, the server's generate calls per round and largest
call, against the in-process backend (HFBackend.generate, one batched call over the same
prompts at one setting: the ceiling).

``python benchmarks/serve_concurrency.py --label after``; the same command with
``PYTHONPATH=<an older checkout>`` measures that version (``--label before``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import time

import httpx
from common import FACT_COLUMNS, append_row, count_params, model_dir, result_line, run_facts

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.agents.tiny import solver_prompts
from selfplay_gym.envs.tasks import ArithmeticTask
from selfplay_gym.serve import create_app, serve_in_thread

NAME = "serve_concurrency"
COLUMNS = (*FACT_COLUMNS, "version", "size", "params", "clients", "requests", "max tokens",
           "settings", "server tok/s", "req/s", "p50 s", "p95 s", "calls", "largest call",
           "in-process tok/s", "server/in-process")
SETTINGS = [(0.6, 1.0), (0.8, 0.95), (1.0, 0.9), (0.7, 1.0)]
"""(temperature, top_p) of request k: ``SETTINGS[k % len(SETTINGS)]``."""


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def drive(url: str, prompts: list, args) -> dict:
    """Every client's requests, concurrently: tokens, wall time, per-request latencies."""
    latencies: list[float] = []
    tokens = 0

    def client(c: int) -> tuple[list[float], int]:
        mine, count = [], 0
        with httpx.Client(timeout=3600) as http:
            for r in range(args.requests):
                k = c * args.requests + r
                temperature, top_p = SETTINGS[k % args.settings]
                body = {"model": "bench", "messages": list(prompts[k % len(prompts)]),
                        "max_tokens": args.max_tokens, "temperature": temperature, "top_p": top_p}
                start = time.perf_counter()
                response = http.post(f"{url}/chat/completions", json=body)
                response.raise_for_status()
                mine.append(time.perf_counter() - start)
                count += response.json()["usage"]["completion_tokens"]
        return mine, count

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
        for mine, count in pool.map(client, range(args.clients)):
            latencies += mine
            tokens += count
    return {"tokens": tokens, "seconds": time.perf_counter() - start, "latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="current", help="the version measured, for the table")
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=5, help="per client, one after another")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--settings", type=int, default=4, choices=range(1, len(SETTINGS) + 1),
                        help="how many (temperature, top_p) settings the requests cycle through")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the whole load")
    parser.add_argument("--no-record", action="store_true", help="print only; no results row")
    args = parser.parse_args()

    path = model_dir(args.size)
    total = args.clients * args.requests
    questions = [p.question for p in ArithmeticTask(levels=(1,)).problems(total, seed=0)]
    prompts = solver_prompts(questions)

    local = HFBackend(path, generation_batch_size=64)
    sampling = SamplingConfig(temperature=0.8, top_p=0.95, max_new_tokens=args.max_tokens)
    local.generate(prompts[:8], [None] * 8, sampling)  # warm-up
    start = time.perf_counter()
    done = local.generate(prompts, [None] * total, sampling)
    in_process = sum(len(c.completion_ids) for c in done) / (time.perf_counter() - start)
    del local

    app = create_app(HFBackend(path, generation_batch_size=64), "bench")
    with serve_in_thread(app) as url:
        drive(url, prompts[:8], argparse.Namespace(**{**vars(args), "clients": 8, "requests": 1}))
        calls_before = app.state.batcher.stats["calls"]
        runs = [drive(url, prompts, args) for _ in range(args.repeats)]
        calls = (app.state.batcher.stats["calls"] - calls_before) / args.repeats
        largest = app.state.batcher.stats["largest_call"]
    for run in runs:
        print(f"{args.label}: {run['tokens']} tokens in {run['seconds']:.1f} s", flush=True)
    rate = statistics.median(run["tokens"] / run["seconds"] for run in runs)
    requests = statistics.median(total / run["seconds"] for run in runs)
    latencies = [t for run in runs for t in run["latencies"]]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    figures = {"version": args.label, "server_tok_s": rate, "req_s": requests, "p50_s": p50,
               "p95_s": p95, "calls": calls, "largest_call": largest,
               "in_process_tok_s": in_process}
    if not args.no_record:
        values = [*run_facts("cpu"), args.label, args.size, f"{count_params(path) / 1e6:.1f}M",
                  args.clients, total, args.max_tokens, args.settings, f"{rate:.0f}",
                  f"{requests:.1f}", f"{p50:.2f}", f"{p95:.2f}", f"{calls:.0f}", largest,
                  f"{in_process:.0f}", f"{rate / in_process:.2f}"]
        append_row(NAME, "selfplay-gym serve under concurrent clients",
                   "Clients x requests chat completions with (temperature, top_p) cycling through "
                   "`settings` values; median tokens/s of wall time over 3 rounds, latency "
                   "percentiles over all, generate calls per round, against one in-process "
                   "HFBackend.generate call over the same prompts "
                   "(benchmarks/serve_concurrency.py).", COLUMNS, values)
    print(result_line(figures))


if __name__ == "__main__":
    main()

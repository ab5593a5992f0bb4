"""Generation throughput of the three engines on the same model, prompts and lengths.

transformers ``generate`` (HFBackend: what training on the learner uses), vLLM in this process
(VLLMBackend) and vLLM's OpenAI server (``vllm serve`` driven by OpenAIBackend), each on the
same R-Zero solver prompts, the same number of completions and new tokens, temperature 1.
Throughput is generated tokens per second of wall time for one batched call (each engine
stops at its own end-of-turn tokens, so the token counts are measured, not assumed), the median
of ``--repeats`` calls after one warm-up call. Engine start-up is reported apart.

Needs vLLM: run in .venv-vllm (``make venv-vllm``):
``.venv-vllm/bin/python benchmarks/engines.py [--sizes tiny 25m 100m]``.
On a GPU, ``--dtype bfloat16`` measures what training there would use.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import FACT_COLUMNS, append_row, count_params, median, model_dir, result_line, run_facts

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.openai_api import OpenAIBackend
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.agents.tiny import solver_prompts
from selfplay_gym.envs.tasks import ArithmeticTask

NAME = "engines"
COLUMNS = (*FACT_COLUMNS, "size", "params", "dtype", "prompts", "new tokens",
           "HF tok/s", "vLLM tok/s", "server tok/s", "vLLM/HF", "server/HF", "vLLM start s",
           "server start s")


def timed(generate, repeats: int) -> tuple[float, int]:
    """Median tokens/s over ``repeats`` calls after a warm-up; and the tokens of the last call."""
    generate()
    rates, tokens = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        completions = generate()
        seconds = time.perf_counter() - start
        tokens = sum(len(c.completion_ids) for c in completions)
        rates.append(tokens / seconds)
    return median(rates), tokens


def start_server(path: Path, dtype: str) -> tuple[subprocess.Popen, str, float]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(path), "--host",
               "127.0.0.1", "--port", str(port), "--served-model-name", "base", "--dtype", dtype,
               "--gpu-memory-utilization", "0.1", "--logprobs-mode", "processed_logprobs",
               "--seed", "0"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {process.returncode}: {' '.join(command)}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, f"{url}/v1", time.perf_counter() - start
        except httpx.TransportError:
            time.sleep(1)


def measure(size: str, args) -> dict:
    from selfplay_gym.agents.vllm import VLLMBackend

    path = model_dir(size)
    questions = [p.question for p in ArithmeticTask(levels=(1,)).problems(args.prompts, seed=0)]
    prompts = solver_prompts(questions)
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=args.new_tokens)
    adapters = [None] * len(prompts)
    out: dict = {"size": size, "params": count_params(path)}

    learner = HFBackend(path, dtype=args.dtype, generation_batch_size=len(prompts))
    out["hf"], out["hf_tokens"] = timed(
        lambda: learner.generate(prompts, adapters, sampling), args.repeats)

    start = time.perf_counter()
    engine = VLLMBackend.launch(path, dtype=args.dtype, max_loras=1)
    out["vllm_start"] = time.perf_counter() - start
    out["vllm"], out["vllm_tokens"] = timed(
        lambda: engine.generate(prompts, adapters, sampling), args.repeats)
    engine.close()

    process, url, out["server_start"] = start_server(path, args.dtype)
    try:
        client = OpenAIBackend(url, "base", group_identical=False, timeout=600)
        out["server"], out["server_tokens"] = timed(
            lambda: client.generate(prompts, adapters, sampling), args.repeats)
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=60)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "25m", "100m"])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()
    for size in args.sizes:
        row = measure(size, args)
        print(f"{size}: {row}", flush=True)
        values = [*run_facts("cpu"), size, f"{row['params'] / 1e6:.1f}M", args.dtype, args.prompts,
                  args.new_tokens, f"{row['hf']:.0f}", f"{row['vllm']:.0f}", f"{row['server']:.0f}",
                  f"{row['vllm'] / row['hf']:.2f}", f"{row['server'] / row['hf']:.2f}",
                  f"{row['vllm_start']:.0f}", f"{row['server_start']:.0f}"]
        append_row(NAME, "Generation engines: tokens per second on the same prompts",
                   "transformers generate (HFBackend) vs vLLM in-process vs vLLM's server through "
                   "OpenAIBackend; median of 3 batched calls after a warm-up, temperature 1 "
                   "(benchmarks/engines.py).", COLUMNS, values)
        print(result_line({"size": size, "hf_tok_s": row["hf"], "vllm_tok_s": row["vllm"],
                           "server_tok_s": row["server"], "vllm_over_hf": row["vllm"] / row["hf"]}))


if __name__ == "__main__":
    main()

"""Benchmark the offline default model: size, build time, held-out accuracy, generation speed.

Also plays R-Zero episodes with the model in every role (sampling at temperature 1) and reports
how often each role's output parses, so a build that lost a format shows up here.

Run ``python benchmarks/tiny_model.py`` (``--rebuild`` times a fresh build instead of reading
the cached one's ``build.json``). Ends with one ``RESULT`` line and appends a row to
``benchmarks/results/tiny_model.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from common import machine  # benchmarks/ is on the path when a script runs from it
from transformers import AutoModelForCausalLM, AutoTokenizer

from selfplay_gym import SelfPlayVectorEnv
from selfplay_gym.agents.tiny import (
    HELD_OUT_SIZE,
    TinyModelConfig,
    generate_texts,
    greedy_solver_accuracy,
    tiny_model_dir,
    warm_start_examples,
)
from selfplay_gym.envs.tasks import ArithmeticTask, solve
from selfplay_gym.types import Completion, Request

RESULTS = Path(__file__).parent / "results" / "tiny_model.md"
COLUMNS = (
    "date", "machine", "cores", "torch", "params", "MB", "build s", "steps", "held-out acc",
    "gen tok/s (b=32)", "questioner valid", "judge valid",
)


class SampledPolicy:
    """The model as a Policy for every role: one batched, temperature-1 sample per request."""

    def __init__(self, model, tokenizer, max_new_tokens: int = 32):
        self.model, self.tokenizer, self.max_new_tokens = model, tokenizer, max_new_tokens

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        texts = generate_texts(
            self.model, self.tokenizer, [r.messages for r in requests],
            max_new_tokens=self.max_new_tokens, temperature=1.0, top_k=0,
        )
        return [Completion(text=text) for text in texts]


def generation_speed(model, tokenizer, batch: int, new_tokens: int, repeats: int = 3) -> float:
    """Sampled tokens per second on one batch of mixed-role prompts, ``new_tokens`` each."""
    prompts = [messages for messages, _ in warm_start_examples(4 * batch, seed=1)][:batch]
    times = []
    for _ in range(repeats + 1):  # the first call warms up
        started = time.perf_counter()
        generate_texts(model, tokenizer, prompts, batch_size=batch, max_new_tokens=new_tokens,
                       min_new_tokens=new_tokens, temperature=1.0, top_k=0)
        times.append(time.perf_counter() - started)
    return batch * new_tokens / statistics.median(times[1:])


def format_validity(model, tokenizer, episodes: int = 64) -> dict[str, float]:
    """Shares of parseable turns per role when the model plays a whole R-Zero episode."""
    venv = SelfPlayVectorEnv.make("rzero", episodes, num_solvers=4, task=ArithmeticTask((1,)))
    policy = SampledPolicy(model, tokenizer)
    rollout = venv.rollout({"questioner": policy, "solver": policy, "judge": policy}, seed=0)
    turns = [t for e in rollout.episodes for t in e.turns]
    shares = {}
    for role in ("questioner", "solver", "judge"):
        mine = [t for t in turns if t.role == role]
        shares[role] = sum(t.valid for t in mine) / len(mine) if mine else float("nan")
    asked = [t.parsed for t in turns if t.role == "questioner" and t.valid]
    right = [solve(p["question"]) == p["answer"] for p in asked]
    shares["questioner_answer_right"] = sum(right) / len(right) if right else float("nan")
    return shares


def append_row(row: Sequence[object]) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Tiny default model benchmark\n\nOne row per run of `benchmarks/tiny_model.py`.\n\n"
            f"| {' | '.join(COLUMNS)} |\n|{'---|' * len(COLUMNS)}\n"
        )
    with RESULTS.open("a") as f:
        f.write(f"| {' | '.join(str(v) for v in row)} |\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: the user cache")
    parser.add_argument("--rebuild", action="store_true", help="time a fresh build")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()

    config = TinyModelConfig()
    started = time.perf_counter()
    path = tiny_model_dir(config, cache_dir=args.cache_dir, rebuild=args.rebuild)
    wall = time.perf_counter() - started
    info = json.loads((path / "build.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()

    params = model.num_parameters()
    megabytes = (path / "model.safetensors").stat().st_size / 1e6
    held_out = greedy_solver_accuracy(model, tokenizer, ArithmeticTask(config.levels).held_out(
        HELD_OUT_SIZE))
    torch.manual_seed(0)
    speed = generation_speed(model, tokenizer, args.batch, args.new_tokens)
    validity = format_validity(model, tokenizer)

    print(f"model dir        {path} ({'built now' if wall > 5 else 'cached'}, {wall:.1f} s)")
    print(f"parameters       {params:,} ({megabytes:.2f} MB on disk, fp32)")
    print(f"build            {info['build_seconds']:.1f} s, {info['steps']} steps, "
          f"phases {info['seconds']} on {info['device']}")
    print(f"accuracy         validation {info['validation_accuracy']:.3f}, "
          f"held-out {held_out:.3f} (build.json: {info['held_out_accuracy']:.3f})")
    print(f"prompt tokens    {info['prompt_tokens']}")
    print(f"generation       {speed:.0f} tokens/s (batch {args.batch}, {args.new_tokens} new "
          f"tokens, T=1, {torch.get_num_threads()} threads)")
    print("valid turns (T=1) " + ", ".join(f"{k} {v:.2f}" for k, v in validity.items()))

    append_row([
        datetime.date.today().isoformat(), machine(), os.cpu_count(), torch.__version__, params,
        f"{megabytes:.2f}", info["build_seconds"], info["steps"], f"{held_out:.3f}",
        f"{speed:.0f}", f"{validity['questioner']:.2f}", f"{validity['judge']:.2f}",
    ])
    print(f"RESULT params={params} build_s={info['build_seconds']:.1f} "
          f"heldout_acc={held_out:.3f} gen_tok_s={speed:.0f}")


if __name__ == "__main__":
    main()

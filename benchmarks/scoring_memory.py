"""Peak memory of one training forward + backward through ``completion_logprobs``.

The trainer logs the policy's entropy by default (``UpdateConfig.log_entropy``) even when no
entropy bonus is trained. Computed with a graph, that metric keeps two vocabulary-sized
tensors ([B, T, V]) alive until the backward pass; as a metric it needs none of them. This
script runs one micro-batch through a one-layer Qwen3 with a large vocabulary (so the [B, T, V]
tensors dominate, as with a 150k-token vocabulary) in three settings, each in its own process:

- ``grad``: entropy with gradients (what an entropy bonus needs, and what a metric used to cost);
- ``metric``: entropy without a graph, one row at a time (the default now);
- ``none``: no entropy at all (``log_entropy=False``), the floor.

The figure is the peak RSS (VmHWM) during the forward + backward minus the RSS before it.
Run ``python benchmarks/scoring_memory.py``; it appends a row to results/scoring_memory.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

VOCAB, BATCH, PROMPT, STEPS, TEMPERATURE = 64_000, 8, 32, 128, 0.7


def measure(setting: str) -> float:
    import torch
    from common import PeakMemory
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from selfplay_gym.agents.scoring import PackedBatch, completion_logprobs

    torch.manual_seed(0)
    model = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16))
    ids = torch.randint(0, VOCAB, (BATCH, PROMPT + STEPS))
    mask = torch.ones_like(ids)
    batch = PackedBatch(ids, mask, mask.cumsum(-1) - 1, ids[:, PROMPT:], torch.ones(BATCH, STEPS, dtype=torch.long))
    with PeakMemory("cpu") as peak:
        logp, entropy = completion_logprobs(model, batch, TEMPERATURE, with_entropy=setting != "none",
                                            entropy_grad=setting == "grad")
        loss = logp.sum() - (0.01 * entropy.sum() if setting == "grad" else 0.0)
        loss.backward()
    return peak.peak_mb - peak.start_mb


def main() -> None:
    from common import FACT_COLUMNS, append_row, result_line, run_facts, run_json_subprocess

    peaks = {s: run_json_subprocess(Path(__file__), [s])["peak_mb"] for s in ("grad", "metric", "none")}
    tensor_mb = BATCH * STEPS * VOCAB * 4 / 2**20
    for setting, mb in peaks.items():
        print(f"{setting:>6}: {mb:.0f} MB above the start ({mb / tensor_mb:.1f} [B, T, V] fp32 tensors)")
    figures = {"grad_mb": peaks["grad"], "metric_mb": peaks["metric"], "none_mb": peaks["none"],
               "metric_over_grad": peaks["metric"] / peaks["grad"]}
    append_row("scoring_memory", "Peak memory of the entropy metric in the training forward + backward",
               "One micro-batch through `completion_logprobs` (forward + backward), each setting in its "
               "own process; peak RSS during the block minus RSS at its start. `python "
               "benchmarks/scoring_memory.py`; the settings are described in its docstring.",
               [*FACT_COLUMNS, "B x T x V", "entropy with grad (MB)", "entropy as metric (MB)",
                "no entropy (MB)", "metric / grad"],
               [*run_facts("cpu"), f"{BATCH} x {STEPS} x {VOCAB}", f"{peaks['grad']:.0f}",
                f"{peaks['metric']:.0f}", f"{peaks['none']:.0f}", f"{figures['metric_over_grad']:.2f}"])
    print(result_line(figures))


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(json.dumps({"peak_mb": measure(sys.argv[1])}))
    else:
        main()

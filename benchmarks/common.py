"""Shared pieces of the benchmarks: models of several sizes, memory probes, result rows.

Every script runs as ``python benchmarks/<name>.py`` (so this module is importable as
``common``), prints its figures, ends with one ``RESULT name=value ...`` line and appends a
row to ``benchmarks/results/<name>.md``.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"

SIZES = {
    # name: Qwen3Config overrides on top of the tiny tokenizer (None: the embedded model itself)
    "tiny": None,
    "larger": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
                   num_attention_heads=8, num_key_value_heads=4, head_dim=64),
    # about 25M and 100M parameters, head size 64 (vLLM's CPU attention takes it): engines.py
    "25m": dict(hidden_size=512, intermediate_size=2048, num_hidden_layers=6,
                num_attention_heads=8, num_key_value_heads=4, head_dim=64),
    "100m": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=8,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=64),
    # Qwen/Qwen3-0.6B's config.json with random weights; meant for a GPU.
    # Qwen3-0.6B's widths and vocabulary with 4 of its 28 layers: weights dominate memory,
    # as in real LoRA training, at a compute cost 2 CPU cores can pay.
    "wide": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=4,
                 num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                 vocab_size=151936, rope_theta=1_000_000.0),
    "qwen3-0.6b": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                       num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                       vocab_size=151936, rope_theta=1_000_000.0),
}


def model_dir(size: str, tiny: Path | None = None, root: Path | None = None) -> Path:
    """A local model directory for ``size``: the embedded tiny model, or random weights of a
    bigger Qwen3 config saved with the tiny tokenizer (built once under ``root``).

    ``tiny`` is an already built tiny model directory; by default ``tiny_model_dir()``."""
    if tiny is None:
        from selfplay_gym.agents.tiny import tiny_model_dir

        tiny = tiny_model_dir(progress=False)
    if SIZES[size] is None:
        return tiny
    import torch
    from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

    root = root or Path(tempfile.gettempdir()) / "selfplay-gym-bench"
    path = root / f"{size}-{tiny.name}"
    if (path / "config.json").exists():
        return path
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    overrides = dict(SIZES[size])
    vocab = max(overrides.pop("vocab_size", 0), len(tokenizer))
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=vocab, max_position_embeddings=1024, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **overrides,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


MODE = "rzero_every_solver"


def register_every_solver_mode() -> str:
    """R-Zero with every solver sample trained (the consistency band and label check off).

    TRL's bridge trains every sample it is given, and a random-weights model never earns
    a majority label, so the benchmarks use this mode to give each side the same work."""
    from selfplay_gym import register_mode
    from selfplay_gym.envs.modes.rzero import RZeroMode

    class EverySolverRZero(RZeroMode):
        name = MODE

        def keep_for_training(self, agent, episode) -> bool:
            return True

    register_mode(MODE, EverySolverRZero, overwrite=True)
    return MODE


def count_params(path: Path) -> int:
    """Parameters of the model saved at ``path``, counted on the meta device (no weights read)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(path))
    return sum(p.numel() for p in model.parameters())


def add_model_arguments(parser, default_size: str) -> None:
    parser.add_argument("--size", choices=list(SIZES), default=default_size,
                        help="tiny: the embedded model; the others: random weights")
    parser.add_argument("--tiny-dir", type=Path, default=None,
                        help="an already built tiny model directory (default: tiny_model_dir())")


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --- taking turns ------------------------------------------------------------------------------
class Baton:
    """Two threads taking turns: only the holder runs; ``pass_to`` hands over and waits."""

    def __init__(self, first: str) -> None:
        self.turn = first
        self.done: set[str] = set()
        self.cond = threading.Condition()

    def wait_turn(self, me: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == me)

    def pass_to(self, me: str, other: str) -> None:
        with self.cond:
            if other in self.done:
                return
            self.turn = other
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == me)

    def finish(self, me: str, other: str) -> None:
        with self.cond:
            self.done.add(me)
            self.turn = other
            self.cond.notify_all()


# --- memory ------------------------------------------------------------------------------------
def current_rss_mb() -> float:
    """Resident set size now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) to the current RSS; False where unsupported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """High-water RSS (VmHWM) since the process started or the last ``reset_peak_rss``, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated`` on a GPU, else peak RSS.

    On CPU the figure is the process's high-water resident set during the block minus the
    resident set at its start: everything the block added (activations, gradients, optimizer
    state, allocator slack), not only tensors. Measure each contender in its own process.
    """

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.start_mb = 0.0
        self.peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_mb = torch.cuda.memory_allocated() / 2**20
        else:
            reset_peak_rss()
            self.start_mb = current_rss_mb()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            self.peak_mb = torch.cuda.max_memory_allocated() / 2**20
        else:
            self.peak_mb = peak_rss_mb()

    @property
    def what(self) -> str:
        return "CUDA max_memory_allocated" if self.cuda else "peak RSS (VmHWM)"


def run_json_subprocess(script: Path, args: Sequence[str]) -> dict:
    """Run ``script`` with ``args`` in a fresh interpreter; it prints one JSON line last."""
    out = subprocess.run([sys.executable, str(script), *args], check=True, capture_output=True,
                         text=True, env={**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1"})
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{script.name} {' '.join(args)} printed no JSON:\n{out.stdout}\n{out.stderr}")
    return json.loads(lines[-1])


# --- reporting ---------------------------------------------------------------------------------
def machine() -> str:
    name = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        models = [ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                  if ln.startswith("model name")]
        name = models[0] if models else name
    return name


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name()
    return machine()


def result_line(figures: Mapping[str, object]) -> str:
    """``RESULT a=1 b=0.50``: floats with 3 significant decimals, no spaces inside values."""
    parts = []
    for key, value in figures.items():
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={text.replace(' ', '_')}")
    return "RESULT " + " ".join(parts)


def markdown_row(values: Sequence[object]) -> str:
    return "| " + " | ".join(str(v) for v in values) + " |\n"


def append_row(name: str, title: str, about: str, columns: Sequence[str],
               values: Sequence[object], results_dir: Path = RESULTS_DIR) -> Path:
    """Append one row to ``results/<name>.md``, writing its header first if it is new."""
    if len(columns) != len(values):
        raise ValueError(f"{len(columns)} columns but {len(values)} values")
    path = results_dir / f"{name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"{markdown_row(columns)}|{'---|' * len(columns)}\n"
    if not path.exists():
        path.write_text(f"# {title}\n\n{about}\n\n{header}")
    elif _last_header(path.read_text()) != markdown_row(columns):  # the columns changed
        with path.open("a") as f:
            f.write(f"\n{header}")
    with path.open("a") as f:
        f.write(markdown_row(values))
    return path


def _last_header(text: str) -> str | None:
    """The last table header row of a markdown file (the row above a ``|---|`` line)."""
    lines = text.splitlines()
    heads = [lines[i - 1] + "\n" for i, line in enumerate(lines) if i and line.startswith("|---")]
    return heads[-1] if heads else None


def run_facts(device: str) -> list[object]:
    """The leading columns of every row: date, machine, cores, torch version."""
    import torch

    return [datetime.date.today().isoformat(), device_name(device), os.cpu_count(), torch.__version__]


FACT_COLUMNS = ("date", "machine", "cores", "torch")

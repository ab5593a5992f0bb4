"""The offline default model: a tiny Qwen3 and its tokenizer, built locally and cached on disk.

No hub is reachable where this project is built and tested, so the default model is made here:
a byte-level BPE tokenizer trained on the warm-start corpus, a ~0.6M-parameter Qwen3 from a
config, and a short supervised warm start on demonstrations that scripted experts play
*through the R-Zero env* (this module hard-codes no prompt or answer format). Training stops
once the Solver is partly competent (``target_accuracy``), so self-play has room to improve.

This module builds, ships and caches; the parts are re-exported from their own modules:
``tiny_config`` (the config, whose fingerprint is the cache key), ``tiny_tokenizer``,
``tiny_demos`` (the demonstrations) and ``tiny_train`` (the model and its warm start).

>>> path = tiny_model_dir()  # built once (one to two minutes on 2 CPU cores), then cached
>>> model = AutoModelForCausalLM.from_pretrained(path)
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from selfplay_gym.agents.tiny_config import FORMAT_VERSION, TinyModelConfig
from selfplay_gym.agents.tiny_demos import (
    HELD_OUT_SIZE,
    SOLVING_ROLES,
    role_demonstrations,
    solver_prompts,
    training_problems,
    warm_start_examples,
)
from selfplay_gym.agents.tiny_tokenizer import (
    CHAT_TEMPLATE,
    IM_END,
    IM_START,
    PAD,
    Example,
    build_tokenizer,
    corpus_texts,
    render_prompt,
)
from selfplay_gym.agents.tiny_train import (
    generate_texts,
    greedy_solver_accuracy,
    make_model,
    train_warm_start,
)
from selfplay_gym.envs.tasks import ArithmeticTask

__all__ = [
    "CHAT_TEMPLATE",
    "EMBEDDED",
    "FORMAT_VERSION",
    "HELD_OUT_SIZE",
    "IM_END",
    "IM_START",
    "PAD",
    "SHIPPED",
    "SOLVING_ROLES",
    "Example",
    "TinyModelConfig",
    "build_tokenizer",
    "default_cache_dir",
    "embedded_model_dir",
    "generate_texts",
    "greedy_solver_accuracy",
    "render_prompt",
    "role_demonstrations",
    "ship_tiny_model",
    "solver_prompts",
    "tiny_model_dir",
    "train_warm_start",
    "training_problems",
    "warm_start_examples",
]


# --- building and caching ------------------------------------------------------------------------
def _build(config: TinyModelConfig, directory: Path, progress: bool) -> dict[str, Any]:
    """Demonstrations, tokenizer, model, warm start, evaluation, all saved into ``directory``."""
    clock = {"start": time.perf_counter()}
    validation = training_problems(config.validation_size, config.seed + 10_007, config.levels)
    demos = role_demonstrations(config, {p.question for p in validation}, progress)
    examples = [(messages, text) for _, messages, text in demos]
    tokenizer = build_tokenizer(corpus_texts(examples), config.vocab_size)
    tokenizer.model_max_length = config.max_position_embeddings
    model = make_model(config, tokenizer).to("cuda" if torch.cuda.is_available() else "cpu")
    clock["data"] = time.perf_counter()
    history = train_warm_start(model, tokenizer, examples, validation, config, progress)
    clock["train"] = time.perf_counter()
    held_out = ArithmeticTask(levels=config.levels).held_out(HELD_OUT_SIZE)
    info = {
        "config": dataclasses.asdict(config),
        "fingerprint": config.fingerprint(),
        "parameters": model.num_parameters(),
        "device": model.device.type,
        "held_out_accuracy": greedy_solver_accuracy(model, tokenizer, held_out),
        "validation_accuracy": history[-1]["validation_accuracy"],
        "steps": history[-1]["step"],
        "history": history,
        "examples": dict(collections.Counter(role for role, _, _ in demos)),
        "prompt_tokens": _token_counts(tokenizer, demos),
    }
    model.to("cpu").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    info["seconds"] = {
        "demonstrations": round(clock["data"] - clock["start"], 2),
        "training": round(clock["train"] - clock["data"], 2),
    }
    info["build_seconds"] = round(time.perf_counter() - clock["start"], 2)
    (directory / "build.json").write_text(json.dumps(info, indent=2))
    return info


def _token_counts(tokenizer: PreTrainedTokenizerFast, demos: list) -> dict[str, dict[str, float]]:
    """Per role, the templated prompt's length in tokens: what each turn costs to read."""
    counts = collections.defaultdict(list)
    for role, messages, _ in demos:
        counts[role].append(len(tokenizer(render_prompt(tokenizer, messages)).input_ids))
    return {r: {"mean": round(float(np.mean(c)), 1), "max": max(c)} for r, c in counts.items()}


SHIPPED = Path(__file__).resolve().parent.parent / "assets"
"""Where the package keeps prebuilt models: ``assets/tiny-<fingerprint>/`` (``ship_tiny_model``)."""


def _cache_name(config: Any) -> str:
    """``tiny-<fingerprint>`` (arithmetic) or ``tiny-code-<fingerprint>`` (``TinyCodeConfig``)."""
    return f"{getattr(config, 'PREFIX', 'tiny')}-{config.fingerprint()}"


def _builder(config: Any):
    if isinstance(config, TinyModelConfig):
        return _build
    from selfplay_gym.agents.tiny_code import build_code_model

    return build_code_model


def ship_tiny_model(config: Any = None) -> Path:
    """Build (or take from the cache) the model of ``config`` (a TinyModelConfig or a
    TinyCodeConfig) and copy it into ``SHIPPED``, replacing older shipped builds of its kind:
    ``python -m selfplay_gym.agents.tiny [code]``."""
    config = config or TinyModelConfig()
    source = tiny_model_dir(config, cache_dir=default_cache_dir())
    prefix = getattr(config, "PREFIX", "tiny")
    for old in SHIPPED.glob(f"{prefix}-*"):
        if old.name[len(prefix) + 1:].isalnum() and "-" not in old.name[len(prefix) + 1:]:
            shutil.rmtree(old)
    SHIPPED.mkdir(exist_ok=True)
    return Path(shutil.copytree(source, SHIPPED / source.name))


def default_cache_dir() -> Path:
    """``$SELFPLAY_GYM_CACHE``, else ``$XDG_CACHE_HOME/selfplay-gym``, else ``~/.cache/...``."""
    if os.environ.get("SELFPLAY_GYM_CACHE"):
        return Path(os.environ["SELFPLAY_GYM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "selfplay-gym"


def tiny_model_dir(
    config: Any = None, *, cache_dir: str | Path | None = None,
    rebuild: bool = False, progress: bool = True,
) -> Path:
    """The directory of the built model and tokenizer, for ``from_pretrained``; built if absent.

    The package ships the default build (``SHIPPED``, 3 MB), so a fresh install needs no
    build; any other config is built once and cached. The build happens in a temporary
    directory that takes the cache entry's name only once complete, so an interrupted build
    never leaves a half-written model behind.
    """
    config = config or TinyModelConfig()
    name = _cache_name(config)
    if cache_dir is None and not rebuild and (SHIPPED / name / "build.json").is_file():
        return SHIPPED / name
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / name
    if (target / "build.json").is_file() and not rebuild:
        return target
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-building-", dir=root))
    building.chmod(0o755)  # mkdtemp's 0o700 would hide a shared cache from its other users
    try:
        _builder(config)(config, building, progress)
        if target.exists():  # a rebuild, or a concurrent build that finished first
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-stale-", dir=root))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


EMBEDDED = ("tiny", "tiny-code")
"""Model names that mean a model of this package: the arithmetic one and the code one."""


def embedded_model_dir(name: str) -> Path:
    """The directory of the embedded model ``name`` ("tiny" or "tiny-code"), built if absent."""
    if name == "tiny-code":
        from selfplay_gym.agents.tiny_code import TinyCodeConfig

        return tiny_model_dir(TinyCodeConfig())
    if name != "tiny":
        raise ValueError(f"no embedded model {name!r}; choose one of {EMBEDDED}")
    return tiny_model_dir()


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["code"]:
        from selfplay_gym.agents.tiny_code import TinyCodeConfig

        print(ship_tiny_model(TinyCodeConfig()))
    else:
        print(ship_tiny_model())

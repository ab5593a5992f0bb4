"""The run configuration: dataclasses with working defaults, composed from each part's own config.

The CLI is generated from ``RunConfig`` (``selfplay-gym train --help``); a YAML or JSON file
with the same nesting can supply defaults (``--config run.yaml``), and flags override it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from selfplay_gym.algorithms.trainer import TrainConfig
from selfplay_gym.validation import check_types


@dataclass
class ModelConfig:
    name: str = "tiny"
    """"tiny" (the embedded model, built and cached on first use), a hub id or a local directory."""
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    device: str | None = None
    """None: CUDA when available, else CPU."""
    dtype: str | None = None
    """None: bfloat16 on CUDA, float32 on CPU."""
    gradient_checkpointing: bool | None = None
    """Recompute activations in the update's backward pass instead of keeping them: less memory,
    about a third more update time. None: on for models above 1B parameters."""
    chat_template: str | None = None
    """A jinja chat template, or the path of a file holding one, set on the tokenizer when the
    model loads (learner and vLLM engine), replacing its own. For a tokenizer that has none
    (prompts would otherwise be plain "role: content" lines) or whose template does not fit."""


ENGINES = ("hf", "vllm", "openai")
"""Where rollouts are generated: the transformers learner itself, vLLM in this process, or an
OpenAI-compatible server (``vllm serve --enable-lora``, ``selfplay-gym serve``)."""


@dataclass
class RolloutConfig:
    num_envs: int = 16
    """Episodes per iteration, played in lockstep."""
    num_solvers: int = 8
    """Answers per question, for modes that have solvers (the GRPO group size)."""
    max_new_tokens: int = 48
    temperature: float = 1.0
    top_p: float = 1.0
    role_temperatures: tuple[str, ...] = ()
    """Per-role sampling temperature as role=T, e.g. "refiner=0": a checker that decodes
    greedily answers consistently; a role at T=0 plays but does not learn."""
    engine: str = "hf"
    """"hf" (generate on the learner), "vllm" (vLLM in this process, CPU or GPU) or "openai" (a
    server at base_url). Training always runs on the transformers learner; after every update
    the adapters are loaded onto the engine under new versioned names."""
    base_url: str = ""
    """The server's API root for engine "openai", e.g. http://127.0.0.1:8000/v1."""
    served_model: str = ""
    """The server's name for the base model (engine "openai"); empty: the first it lists."""
    engine_memory: float | None = None
    """vLLM's gpu_memory_utilization: the share of GPU memory (on CPU, of the memory of one
    NUMA node) vLLM reserves for weights and KV cache. None: 0.3 on CUDA (training gets the
    rest), 0.1 on CPU."""
    engine_sleep: bool = False
    """Engine "vllm": put vLLM to sleep during each update (weights to CPU memory, KV cache
    freed) and wake it for the next rollout, as TRL's vllm_enable_sleep_mode; the update gets
    vLLM's whole share. vLLM sleeps on CUDA, ROCm and XPU only."""


@dataclass
class RunConfig:
    mode: str = "rzero"
    """A registered mode (`selfplay-gym modes`) or your own as "package.module:ClassName" (a
    module in the current directory or on PYTHONPATH); a Mode without a recipe trains every LLM
    role jointly with grpo."""
    train_roles: tuple[str, ...] = ()
    """Roles whose adapters learn; the others are frozen or scripted. Empty: the mode's recipe."""
    schedule: str = ""
    """"joint", "alternating" (one role per phase, in order) or "staggered" (AERO's: the first
    role leads, the others' data lags one iteration, plus replay). Empty: the mode's recipe."""
    phase_iterations: int = 1
    """Iterations per phase of the alternating schedule."""
    stage_iterations: int = 0
    """Iterations of each stage but the last in a multi-stage recipe (DARC: stage 1); the last
    stage runs the rest of train.iterations. 0: an equal share."""
    options: tuple[str, ...] = ()
    """The mode's own options as key=value (its Config fields), e.g. "mask_format=span";
    values are read as JSON where they parse (numbers, true/false), else as text."""
    scripted: tuple[str, ...] = ()
    """Override who plays a role, as role=agent: "judge=reference" (majority, reference, random)."""
    task: str = ""
    """Questions or documents of your own: "jsonl:PATH" (or json, parquet, csv, txt): rows with
    question (or problem) and answer are questions (held out for --train.eval-every, asked by
    --scripted questioner=dataset), rows with text are documents (DARC, ALIVE); "hf:NAME[@SPLIT]"
    a hub dataset (needs network once, then cached). Empty: the mode's own task."""
    algorithm: str = ""
    """A key of algorithms.losses.PRESETS: grpo, dr_grpo, dapo, rloo, reinforce_pp, rzero, darc,
    kto, rft. Empty: the mode's recipe."""
    kl_coef: float | None = None
    """Override the preset's KL coefficient."""
    tis_cap: float | None = None
    """Truncated importance sampling: weight each token's loss by min(p_learner / p_engine, C)
    with this C (TRL's token_truncate clips at 3 by default); None: off. For engines other
    than hf, where the sampler's log-probs are not the learner's."""
    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a (nested) config dataclass from a plain dict, naming unknown keys."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__} expects a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {unknown}; valid keys are {sorted(names)}")
    values = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            value = from_dict(hint, value)
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)  # anything else is named by check_types
        elif float in (hint, *typing.get_args(hint)) and isinstance(value, str) and _YAML_FLOAT.fullmatch(value):
            value = float(value)
        values[key] = value
    return cls(**values)


_YAML_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
"""``1e-4``: YAML 1.1 (PyYAML) reads a number with an exponent but no dot as a string."""


def load_config(path: str | Path) -> RunConfig:
    """A RunConfig from a YAML or JSON file (same nesting as the dataclasses)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    cfg = from_dict(RunConfig, data or {})
    check_types(cfg)  # before flags are parsed over it: tyro only warns about wrong types
    return cfg

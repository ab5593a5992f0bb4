"""Config validation in one place: every RunConfig is checked here before anything loads.

Types against the dataclasses' annotations (a YAML typo, a JSON list where a number goes),
ranges (a minibatch of 0, NaN learning rates), the device and dtype, the output directory, and
on ``--resume`` the run being continued. Each refusal is a ValueError (the CLI prints it as one
``error:`` line) that names the option and the fix.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import types
import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from selfplay_gym.algorithms.checkpoint import latest_checkpoint
from selfplay_gym.algorithms.trackers import report_to_problems
from selfplay_gym.run_record import RUN_RECORD, read_record, record

if TYPE_CHECKING:
    from selfplay_gym.config import ModelConfig, RunConfig


def flag(path: str) -> str:
    """The CLI flag of a dotted config key: ``train.update.minibatch_size`` ->
    ``--train.update.minibatch-size``."""
    return "--" + path.replace("_", "-")


def _at_least(low: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v >= low), f">= {low}"


def _above(low: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v > low), f"> {low}"


def _fraction(low_open: bool, high_open: bool) -> tuple[Callable[[float], bool], str]:
    def admits(v: float) -> bool:
        return (v > 0 if low_open else v >= 0) and (v < 1 if high_open else v <= 1)

    return admits, f"in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"


RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "phase_iterations": _at_least(1),
    "stage_iterations": _at_least(0),
    "kl_coef": _at_least(0),
    "tis_cap": _above(0),
    "model.lora_r": _at_least(1),
    "model.lora_alpha": _above(0),
    "model.lora_dropout": _fraction(False, True),
    "rollout.num_envs": _at_least(1),
    "rollout.num_solvers": _at_least(1),
    "rollout.max_new_tokens": _at_least(1),
    "rollout.temperature": _at_least(0),
    "rollout.top_p": _fraction(True, False),
    "rollout.engine_memory": _fraction(True, False),
    "train.iterations": _at_least(1),
    "train.learning_rate": _above(0),
    "train.weight_decay": _at_least(0),
    "train.save_every": _at_least(0),
    "train.keep_checkpoints": _at_least(1),
    "train.log_episodes": _at_least(0),
    "train.eval_every": _at_least(0),
    "train.max_nonfinite_steps": _at_least(1),
    "train.update.epochs": _at_least(1),
    "train.update.minibatch_size": _at_least(1),
    "train.update.micro_batch_size": _at_least(1),
    "train.update.max_grad_norm": _above(0),
}
"""Where a number stops making sense (a None value is "unset" and passes); every float must
also be finite."""

DTYPES = ("float32", "bfloat16", "float16", "float64")


def describe(hint: Any) -> str:
    """An annotation in words, for error messages: ``int | None`` -> "an integer or null"."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe(h) for h in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        plural = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}
        return f"a list of {plural.get(args[0], describe(args[0]))}" if args else "a list"
    words = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             type(None): "null"}
    return words.get(hint, f"a {getattr(hint, '__name__', hint)}")


def fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the annotated type (bool is not a number here; an int is a float).
    Annotations this does not model pass: it refuses only what is surely wrong."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, h) for h in args)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(fits(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(map(fits, value, args)))
    if origin is typing.Literal:
        return value in args
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    return isinstance(value, hint) if isinstance(hint, type) else True


def value_problem(value: Any, hint: Any) -> str | None:
    """Why ``value`` cannot stand for ``hint`` (wrong type, NaN or infinite), or None."""
    if not fits(value, hint):
        return f"expected {describe(hint)}, got {type(value).__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return "must be a finite number"
    return None


def _walk(obj: Any, prefix: str = ""):
    """(dotted key, value, annotation) of every leaf field of a nested config dataclass."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, path = getattr(obj, f.name), prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]) and dataclasses.is_dataclass(value):
            yield from _walk(value, path + ".")
        else:
            yield path, value, hints[f.name]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def type_problems(cfg: RunConfig) -> list[str]:
    return [f"{flag(path)} {_show(value)}: {problem} (config key {path})"
            for path, value, hint in _walk(cfg)
            if (problem := value_problem(value, hint))]


def check_types(cfg: RunConfig) -> None:
    """Raise ValueError naming every field whose value has the wrong type (a YAML typo)."""
    problems = type_problems(cfg)
    if problems:
        raise ValueError("; ".join(problems))


def range_problems(cfg: RunConfig) -> list[str]:
    """Numbers outside ``RANGES``; a value of the wrong type is left to ``type_problems``."""
    out = []
    for path, value, hint in _walk(cfg):
        admits, phrase = RANGES.get(path, (None, ""))
        if admits and value is not None and value_problem(value, hint) is None and not admits(value):
            out.append(f"{flag(path)} {_show(value)}: must be {phrase}")
    return out


def device_problem(device: str | None) -> str | None:
    """Why this process cannot put a model on ``device``, or None (None: chosen at run time)."""
    if device is None:
        return None
    fix = "; use --model.device cpu, or leave it unset (CUDA when available, else CPU)"
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        return f"--model.device {device!r} is not a device torch knows{fix}"
    if dev.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            return f"--model.device {device!r}: this torch build has no CUDA support{fix}"
        if not torch.cuda.is_available():
            return f"--model.device {device!r}: no CUDA device is visible to this process{fix}"
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            return (f"--model.device {device!r}: this machine has {torch.cuda.device_count()} "
                    f"CUDA device(s), numbered from 0{fix}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        return f"--model.device {device!r}: MPS is not available here{fix}"
    return None


def config_problems(cfg: RunConfig) -> list[str]:
    """Every reason ``cfg`` cannot run, each naming its option and the fix; empty when it can."""
    problems = type_problems(cfg) + range_problems(cfg)
    if isinstance(cfg.model.dtype, str) and cfg.model.dtype not in DTYPES:
        problems.append(f"--model.dtype {cfg.model.dtype!r}: choose one of {list(DTYPES)}, or "
                        "leave it unset (bfloat16 on CUDA, float32 on CPU)")
    if isinstance(cfg.model.device, str) and (device := device_problem(cfg.model.device)):
        problems.append(device)
    if isinstance(cfg.train.report_to, tuple):
        problems += report_to_problems(cfg.train.report_to)
    return problems


def validate_config(cfg: RunConfig) -> None:
    """Refuse a config that would fail deep inside a run (a ZeroDivisionError, a raw TypeError,
    NaN weights), as one ValueError naming each bad option and its fix. ``plan_run`` calls it,
    so the CLI, YAML files and Python callers all get it before anything loads."""
    problems = config_problems(cfg)
    if problems:
        raise ValueError("; ".join(problems))


def check_output_dir(output_dir: str | Path) -> None:
    """Create the run directory and write a probe file in it, so that a file in the way or a
    place nobody can write (/proc, a read-only mount) is refused before a model loads, not at
    the first metrics line."""
    root = Path(output_dir)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--train.output-dir {str(root)!r} is a file; choose a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise ValueError(f"--train.output-dir {str(root)!r} cannot be written "
                         f"({exc.strerror or exc}); choose a directory you can write") from None


IDENTITY = ("mode", "model.name", "model.lora_r", "model.lora_alpha")
"""What a resumed run must share with the run it continues: what its adapters learned to play,
on which base model, in which shape."""


def record_run(cfg: RunConfig, output_dir: str | Path, resolved: RunConfig | None = None) -> None:
    """Write ``RUN_RECORD`` (``run_record.py``: the config as given, ``resolved`` with the
    recipe filled in, library versions, git commit) atomically: a kill leaves the old or the new.
    A resume is checked against it."""
    path = Path(output_dir) / RUN_RECORD
    partial = path.with_name(f"{RUN_RECORD}.{os.getpid()}.partial")
    content = record(dataclasses.asdict(cfg), dataclasses.asdict(resolved or cfg))
    partial.write_text(json.dumps(content, indent=1, default=str))
    partial.replace(path)


def _lookup(data: Any, path: str) -> Any:
    for key in path.split("."):
        data = data.get(key) if isinstance(data, dict) else None
    return data


def resume_problems(cfg: RunConfig, output_dir: str | Path, adapters: Collection[str]) -> list[str]:
    """What differs between ``cfg`` (playing with ``adapters``) and the run saved in output_dir:
    the recorded identity, and each latest checkpoint's LoRA shape and adapter names."""
    root, problems = Path(output_dir), []
    saved = read_record(root)  # None: a run from before the record; the checkpoints still speak
    saved = saved and saved["config"]
    now = dataclasses.asdict(cfg)
    for path in IDENTITY if isinstance(saved, dict) else ():
        if _lookup(saved, path) != _lookup(now, path):
            problems.append(f"{flag(path)} was {_lookup(saved, path)!r}, now {_lookup(now, path)!r}")
    for directory in (root, *sorted(root.glob("stage[0-9]*"))):
        checkpoint = latest_checkpoint(directory, report=False)
        if checkpoint is not None:
            problems += checkpoint_problems(checkpoint, cfg.model, adapters)
    return list(dict.fromkeys(problems))  # a record and a checkpoint may say the same


def checkpoint_problems(checkpoint: Path, model: ModelConfig, adapters: Collection[str]) -> list[str]:
    """Where a checkpoint's adapters (names, peft's adapter_config.json) do not fit this run."""
    saved = {}
    for adapter_dir in sorted(p for p in (checkpoint / "adapters").glob("*") if p.is_dir()):
        try:
            saved[adapter_dir.name] = json.loads((adapter_dir / "adapter_config.json").read_text())
        except (OSError, ValueError):
            saved[adapter_dir.name] = {}  # the checkpoint's own validation names a damaged file
    foreign = sorted(set(saved) - set(adapters))
    out = []
    if foreign:
        out.append(f"checkpoint {checkpoint} holds adapter(s) {foreign}, which this run does not "
                   f"play (it plays {sorted(adapters)}: another --mode or --scripted?)")
    for key, option, value in (("r", "lora_r", model.lora_r), ("lora_alpha", "lora_alpha", model.lora_alpha)):
        was = sorted({config[key] for config in saved.values() if key in config and config[key] != value})
        if was:
            out.append(f"{flag('model.' + option)} was {was[0]} (checkpoint {checkpoint}), now {value}")
    return out


def check_resume(cfg: RunConfig, output_dir: str | Path, adapters: Collection[str]) -> None:
    """Refuse to resume a run under another mode, base model or LoRA shape, saying what
    differs, instead of a state_dict error from deep inside peft."""
    problems = resume_problems(cfg, output_dir, adapters)
    if problems:
        raise ValueError(f"cannot --resume {output_dir}: " + "; ".join(problems) + ". Resume with "
                         "the run's own values, or start over with --overwrite or another "
                         "--train.output-dir")

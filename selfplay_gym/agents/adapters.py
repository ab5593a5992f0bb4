"""LoRA adapters on one base model: create, select, save and load them by role name.

All adapters live in one peft model over one copy of the base weights. Saved adapters use
peft's own layout (``adapter_config.json`` + ``adapter_model.safetensors``), so
``PeftModel.from_pretrained(base, path)`` opens them. Loading into an existing adapter copies
weights in place, so optimizers holding its parameters stay valid across a resume.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

WEIGHTS = "adapter_model.safetensors"


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "all-linear"

    def to_peft(self) -> LoraConfig:
        targets = self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)
        return LoraConfig(
            r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
            target_modules=targets, bias="none", task_type="CAUSAL_LM",
        )


class AdapterStore:
    """The peft-wrapped model and its named adapters."""

    def __init__(self, model: torch.nn.Module, lora: LoraSettings, seed: int = 0):
        self.model = model
        self.lora = lora
        self.seed = seed

    @property
    def has_adapters(self) -> bool:
        return isinstance(self.model, PeftModel)

    @property
    def names(self) -> list[str]:
        return list(self.model.peft_config) if self.has_adapters else []

    def add(self, name: str, lora: LoraSettings | None = None) -> None:
        if not name or name.startswith("__"):
            raise ValueError(f"invalid adapter name {name!r}")
        if name in self.names:
            raise ValueError(f"adapter {name!r} exists already; adapters are {self.names}")
        config = (lora or self.lora).to_peft()
        # LoRA A is drawn at random: seed it from (seed, name) so a run rebuilds the same adapters.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + zlib.crc32(name.encode()))
            if self.has_adapters:
                self.model.add_adapter(name, config)
            else:
                self.model = get_peft_model(self.model, config, adapter_name=name)

    def require(self, name: str) -> None:
        if name not in self.names:
            raise ValueError(
                f"no adapter named {name!r}; this backend has {self.names}. Create it with "
                f"backend.add_adapter({name!r}) or list it in HFBackend(..., adapters=[...])"
            )

    @contextlib.contextmanager
    def using(self, name: str | None) -> Iterator[None]:
        """Run the model as adapter ``name``, or as the bare base model for None."""
        if name is None:
            with self.model.disable_adapter() if self.has_adapters else contextlib.nullcontext():
                yield
            return
        self.require(name)
        self.model.set_adapter(name)
        yield

    def activate_for_training(self, name: str) -> None:
        """Make ``name`` the active adapter and the only parameters that require grad."""
        self.require(name)
        self.model.set_adapter(name)
        own = self.parameters(name)
        for param_name, param in self.model.named_parameters():
            param.requires_grad_(param_name in own)

    def parameters(self, name: str) -> dict[str, torch.nn.Parameter]:
        """The adapter's own parameters, found by name (``requires_grad`` says nothing:
        peft's ``set_adapter`` flips it for whichever adapter is active)."""
        self.require(name)
        marker = f".{name}."
        return {n: p for n, p in self.model.named_parameters() if "lora_" in n and marker in n}

    def save(self, name: str, path: str | Path) -> Path:
        self.require(name)
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = get_peft_model_state_dict(self.model, adapter_name=name)
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, path / WEIGHTS)
        self.model.peft_config[name].save_pretrained(str(path))
        return path

    def remove(self, name: str) -> None:
        """Drop adapter ``name`` and free its weights (a server unloading an old version)."""
        self.require(name)
        if len(self.names) == 1:
            raise ValueError(f"{name!r} is the only adapter; it stays (an empty peft model cannot be kept)")
        self.model.delete_adapter(name)

    def load(self, name: str, path: str | Path) -> None:
        path = Path(path)
        if not (path / WEIGHTS).exists():
            raise FileNotFoundError(f"no {WEIGHTS} in {path}: is it a directory written by save_adapter?")
        if name in self.names:
            result = set_peft_model_state_dict(self.model, load_file(path / WEIGHTS), adapter_name=name)
            missing = [k for k in result.missing_keys if "lora_" in k and f".{name}." in k]
            if missing:
                raise ValueError(f"{path} does not match adapter {name!r}: missing {missing[:3]}...")
        elif self.has_adapters:
            self.model.load_adapter(str(path), adapter_name=name, is_trainable=True)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name, is_trainable=True)

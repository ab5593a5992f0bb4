"""Helpers of the engine tests."""

from __future__ import annotations

import torch

from selfplay_gym.agents.hf import HFBackend


def randomise_adapter(backend: HFBackend, adapter: str, seed: int, scale: float = 0.3) -> None:
    """Give an adapter weights that move the model (peft starts LoRA B at zero): an "update"."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in backend.adapter_parameters(adapter).items():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * scale)

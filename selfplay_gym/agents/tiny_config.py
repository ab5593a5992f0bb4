"""The tiny model's config: everything that determines a build, and its fingerprint.

Kept apart from the build so that a config (and its cache key) can be read without importing
the tokenizer, the env or torch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

FORMAT_VERSION = 4
"""Bump when the build changes in a way the config does not show; it is part of the cache key."""


@dataclass
class TinyModelConfig:
    """Everything that determines the built model; its fingerprint is the cache key."""

    seed: int = 0
    """Seeds the data, the initial weights and the batch order: one seed, one model."""
    vocab_size: int = 4096
    """BPE vocabulary cap; training stops earlier once every prompt phrase is one token
    (about 2,800 tokens for the four modes' prompts: their long fixed texts cost a few tokens)."""
    hidden_size: int = 128
    num_layers: int = 2
    """Two layers learnt faster per step and per second than four."""
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 32
    """vLLM's CPU attention takes head sizes of 32 and up (32, 64, 80, ...), so the embedded
    model runs on every engine; four heads of 32 cost what eight of 16 did."""
    intermediate_size: int = 512
    max_position_embeddings: int = 1024
    """The context: room for any R-Zero prompt plus a reasoning trace."""
    levels: tuple[int, ...] = (1,)
    """Arithmetic levels the warm start demonstrates (1: two-digit + and -)."""
    num_episodes: int = 15_000
    """R-Zero episodes the scripted experts play; about one solver example each."""
    modes: tuple[str, ...] = ("rzero", "aero", "darc", "alive")
    """Modes whose formats the model learns from expert episodes (R-Zero's carry the skill)."""
    other_mode_share: float = 0.05
    """Episodes of each mode other than R-Zero and ALIVE, as a share of ``num_episodes``."""
    alive_share: float = 0.5
    """ALIVE's episodes, as a share of ``num_episodes``: its solver must find two numbers in
    a story before it can add them, a skill its format alone does not teach."""
    num_solvers: int = 4
    """Solvers per demonstration episode: how many answers the judge learns to read."""
    solver_accuracy: float = 0.7
    """The noisy experts' accuracy: realistic disagreement for the judge to see."""
    format_share: float = 0.1
    """Chance that an episode's questioner and judge turns are kept (the solver's always are)."""
    batch_size: int = 32
    learning_rate: float = 1e-3
    """Constant after warmup: higher rates delayed the jump in accuracy in our sweeps."""
    warmup_steps: int = 20
    max_steps: int = 3000
    """The step budget; the build time depends on the config only through the steps taken."""
    eval_every: int = 25
    """Steps between validation checks (step-based, so the stopping point is deterministic)."""
    validation_size: int = 300
    target_accuracy: float = 0.6
    """Stop once validation greedy accuracy reaches this: partial competence, room to improve."""

    def fingerprint(self) -> str:
        return fingerprint_of(self, FORMAT_VERSION)


def fingerprint_of(config, format_version: int) -> str:
    """16 hex digits of the config's fields and its builder's format version: a cache key."""
    fields = {"format_version": format_version, **dataclasses.asdict(config)}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

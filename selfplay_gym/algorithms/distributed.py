"""Data-parallel training across the processes that ``accelerate launch`` (or torchrun) starts.

Each rank plays its share of the episodes with its own seeds, computes the gradient of its
share, and the ranks average those gradients before clipping and the optimizer step, so the
adapters stay identical everywhere (DDP's rule, applied to the LoRA parameters alone: the
base model is frozen and never communicated). Only rank 0 writes logs and checkpoints.

In one process (no launcher, ``WORLD_SIZE`` unset or 1) every function here is a no-op and
neither accelerate nor torch.distributed is touched.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from selfplay_gym.envs.vector import Rollout

T = TypeVar("T")
RANK_STRIDE = 1_000_000_007
"""Seed offset between ranks: rank r plays with seed + r * RANK_STRIDE."""


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: str | None = None
    """This rank's accelerator (``cuda:<local rank>``), or None to let the backend choose."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


@functools.lru_cache(maxsize=1)
def world() -> World:
    """This process's place in the run, from the launcher's environment.

    The first call under a launcher starts the process group through accelerate's
    ``PartialState`` (gloo on CPU, NCCL on GPU, whatever ``accelerate config`` chose), or
    through plain ``torch.distributed`` when accelerate is not installed.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World()
    import torch.distributed as dist

    if not dist.is_initialized():
        try:
            from accelerate import PartialState
        except ImportError:
            pass
        else:  # on a machine without CUDA, accelerate starts gloo only when told it is on CPU
            PartialState(cpu=not torch.cuda.is_available())
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = f"cuda:{local}" if torch.cuda.is_available() else None
    return World(dist.get_rank(), dist.get_world_size(), device)


def local_share(total: int) -> int:
    """This rank's part of ``total`` episodes: the parts differ by at most one and sum to it."""
    w = world()
    if total < w.size:
        raise ValueError(f"num_envs={total} is fewer than the {w.size} processes; give each at least one")
    return total // w.size + (w.rank < total % w.size)


def rank_seed(seed: int) -> int:
    """A seed distinct per rank (the same seed in one process)."""
    return seed + world().rank * RANK_STRIDE


def rank_dir() -> str:
    """A path part that keeps ranks' files apart ("rank1"); empty in one process."""
    return f"rank{world().rank}" if world().distributed else ""


def on_main(factory: Callable[[], T]) -> T:
    """``factory()`` on rank 0; elsewhere an object whose every method does nothing."""
    return factory() if world().is_main else _Nothing()  # type: ignore[return-value]


class _Nothing:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def broadcast_parameters(params: Iterable[torch.Tensor]) -> None:
    """Copy rank 0's values into every rank (adapters start equal even if initialisation differs)."""
    if world().distributed:
        import torch.distributed as dist

        with torch.no_grad():
            for p in params:
                dist.broadcast(p.data, src=0)


def average_gradients(params: list[torch.nn.Parameter], count: int) -> None:
    """Make each rank's ``p.grad`` the mean gradient over all ranks' samples.

    Rank r holds g_r, the mean over its ``count`` = n_r samples; afterwards every rank holds
    sum_r n_r g_r / sum_r n_r, which is the full-batch gradient when the loss is a per-sample
    mean. A rank without samples contributes zeros. One flat all-reduce per call.
    """
    if not world().distributed:
        return
    import torch.distributed as dist

    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) * count for g in grads] + [grads[0].new_tensor([float(count)])])
    dist.all_reduce(flat)
    total = float(flat[-1])
    flat = flat[:-1] / max(total, 1.0)
    offset = 0
    for p in params:
        p.grad = flat[offset : offset + p.numel()].view_as(p).clone()
        offset += p.numel()


def max_over_ranks(value: int) -> int:
    """The largest ``value`` of any rank (so that every rank takes the same number of steps)."""
    if not world().distributed:
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.int64, device=world().device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def sum_over_ranks(row: Mapping[str, float]) -> dict[str, float]:
    """Key-wise sums of a row with the same keys on every rank (counts of samples, say)."""
    if not world().distributed:
        return dict(row)
    import torch.distributed as dist

    keys = sorted(row)
    t = torch.tensor([float(row[k]) for k in keys], dtype=torch.float64, device=world().device)
    dist.all_reduce(t)
    return {k: int(v) if isinstance(row[k], int) else v for k, v in zip(keys, t.tolist(), strict=True)}


def union(keys: Iterable[str]) -> list[str]:
    """The sorted union of every rank's ``keys``."""
    if not world().distributed:
        return sorted(set(keys))
    import torch.distributed as dist

    parts: list[Any] = [None] * world().size
    dist.all_gather_object(parts, sorted(set(keys)))
    return sorted(set().union(*parts))


def gather_rollout(rollout: Rollout) -> Rollout:
    """On rank 0, every rank's episodes in rank order (the global batch, for metrics and logs).

    Episode ids gain the rank (``p1-r0-e3``), since each rank numbers its own episodes from 0.
    Other ranks get their own rollout back.
    """
    if not world().distributed:
        return rollout
    import torch.distributed as dist

    parts: list[Any] | None = [None] * world().size if world().is_main else None
    dist.gather_object(rollout, parts, dst=0)
    if parts is None:
        return rollout
    return Rollout(
        episodes=[dataclasses.replace(e, episode_id=f"p{rank}-{e.episode_id}")
                  for rank, part in enumerate(parts) for e in part.episodes],
        completions=[c for part in parts for c in part.completions],
        policy_calls=sum(part.policy_calls for part in parts),
    )

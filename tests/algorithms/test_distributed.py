"""Data-parallel training: two CPU processes under ``accelerate launch``, talking over gloo.

The test launches this file as a script on two ranks (``worker`` below); each rank saves its
adapters, and the test compares them with each other and with a single-process run here.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.algorithms import distributed
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.samples import compute_advantages
from selfplay_gym.algorithms.update import UpdateConfig, update_adapter
from selfplay_gym.types import Sample

NUM_SAMPLES = 8
ALGORITHM = dataclasses.replace(PRESETS["grpo"], kl_coef=0.0)  # token-mean clipped surrogate
TOLERANCE = 1e-6


def fixed_samples(backend: HFBackend) -> list[Sample]:
    """Eight samples in two GRPO groups, token ids from a fixed generator, exact old log-probs."""
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, 300, (int(torch.randint(4, 9, (1,), generator=gen)),), generator=gen)
               for _ in range(NUM_SAMPLES)]
    completions = [torch.randint(10, 300, (int(torch.randint(2, 7, (1,), generator=gen)),), generator=gen)
                   for _ in range(NUM_SAMPLES)]
    prompt_ids = [p.tolist() for p in prompts]
    completion_ids = [c.tolist() for c in completions]
    with torch.no_grad():
        logp, _, _ = backend.train_logprobs("policy", prompt_ids, completion_ids, temperature=1.0,
                                            with_entropy=False)  # [N, T]
    rewards = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    return [
        Sample(role="solver", agent=f"solver_{i % 4}", episode_id=f"e{i // 4}", group_id=f"g{i // 4}",
               prompt_ids=prompt_ids[i], completion_ids=completion_ids[i],
               old_logprobs=logp[i, : len(completion_ids[i])].tolist(), reward=rewards[i])
        for i in range(NUM_SAMPLES)
    ]


def fixed_update(model_dir: str, rank: int, size: int) -> dict:
    """Two SGD steps on this rank's contiguous share of the eight samples, one minibatch each.

    The advantages are computed over all eight (the global batch); micro-batches of one sample
    make the loss of a minibatch the plain mean of per-sample losses, so any split over ranks
    has the same full-batch gradient.
    """
    backend = HFBackend(model_dir, adapters=["policy"], seed=0)
    params = backend.adapter_parameters("policy")
    distributed.broadcast_parameters(params.values())
    samples = fixed_samples(backend)
    advantages = compute_advantages(samples, ALGORITHM)  # [N]
    share = slice(rank * NUM_SAMPLES // size, (rank + 1) * NUM_SAMPLES // size)
    optimizer = torch.optim.SGD(list(params.values()), lr=0.1)  # step = lr x gradient
    config = UpdateConfig(minibatch_size=NUM_SAMPLES, micro_batch_size=1)
    grad_norms = []
    for step in range(2):  # the second step sees non-zero LoRA B, so every tensor moves
        stats = update_adapter(backend, "policy", samples[share], advantages[share], None, optimizer,
                               ALGORITHM, config, 1.0, torch.Generator().manual_seed(step))
        grad_norms.append(stats["grad_norm"])
    return {"params": {k: v.detach().clone() for k, v in params.items()}, "grad_norms": grad_norms}


def worker(model_dir: str, tiny_dir: str, out: str) -> None:
    """Runs on every rank under ``accelerate launch``."""
    from selfplay_gym.algorithms.trainer import TrainConfig
    from selfplay_gym.build import build_trainer
    from selfplay_gym.config import ModelConfig, RolloutConfig, RunConfig

    rank = distributed.world().rank
    torch.save(fixed_update(model_dir, rank, distributed.world().size), Path(out) / f"update_{rank}.pt")

    cfg = RunConfig(
        mode="rzero", train_roles=("questioner", "solver"), schedule="joint", algorithm="rzero",
        model=ModelConfig(name=tiny_dir),
        rollout=RolloutConfig(num_envs=4, num_solvers=4, max_new_tokens=24),
        train=TrainConfig(iterations=2, learning_rate=1e-3, output_dir=str(Path(out) / "run"),
                          progress=False),
    )
    trainer = build_trainer(cfg)

    def adapters() -> dict:
        return {name: {k: v.detach().clone() for k, v in trainer.learner.adapter_parameters(name).items()}
                for name in trainer.optimizers}

    start = adapters()
    history = trainer.train()
    torch.save({"start": start, "end": adapters(), "num_envs": trainer.venv.num_envs,
                "history": history}, Path(out) / f"train_{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def launched(random_model_dir, tiny_dir, tmp_path_factory):
    """Both ranks' saved results, from one ``accelerate launch`` of two CPU processes."""
    pytest.importorskip("accelerate")
    out = tmp_path_factory.mktemp("distributed")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        __file__, str(random_model_dir), str(tiny_dir), str(out),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    return out


def test_ranks_end_with_identical_adapters(launched):
    """After two self-play iterations every rank holds bit-identical adapters, and they moved."""
    rank0, rank1 = (torch.load(launched / f"train_{r}.pt", weights_only=False) for r in (0, 1))
    assert rank0["num_envs"] == rank1["num_envs"] == 2  # num_envs=4 is the global batch
    moved = 0
    for adapter, params in rank0["end"].items():
        for name, value in params.items():
            assert torch.equal(value, rank1["end"][adapter][name]), f"{adapter}:{name} differs across ranks"
            moved += not torch.equal(value, rank0["start"][adapter][name])
    assert moved > 0, "no adapter tensor changed: the test would pass without any update"


def test_only_rank_zero_writes(launched):
    run = launched / "run"
    metrics = (run / "metrics.jsonl").read_text().splitlines()
    episodes = (run / "episodes.jsonl").read_text().splitlines()
    assert len(metrics) == 2
    assert len(episodes) == 2 * 4  # the global batch of both ranks, logged once
    ids = [line.split('"episode_id": "', 1)[1].split('"', 1)[0] for line in episodes]
    assert len(set(ids)) == len(ids)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["iter_000000", "iter_000001"]


def test_split_update_matches_one_process(launched, random_model_dir):
    """Two ranks with four samples each give the adapters of one process with all eight.

    Tolerance: 1e-6 absolute on adapter weights after two SGD steps at lr 0.1 (measured: a
    few 1e-9). The averaged gradient equals the full-batch one in exact arithmetic (the loss
    is a per-sample mean, see ``fixed_update``); in float32 only the order of summation
    differs (4 + 4 samples and an all-reduce, versus 8 in a row): about 1e-7 of gradients of
    order 0.1, times lr. SGD keeps the weight change proportional to the gradient; AdamW would
    not (it divides each element by its own magnitude, so an element whose per-sample terms
    nearly cancel turns rounding into a visible step: 1e-5 at lr 1e-2). Any real error, a
    wrong weighting of the ranks or a missing all-reduce, moves weights by up to about 1e-2.
    """
    ranks = [torch.load(launched / f"update_{r}.pt", weights_only=False) for r in (0, 1)]
    single = fixed_update(str(random_model_dir), 0, 1)
    for name, value in single["params"].items():
        assert torch.equal(ranks[0]["params"][name], ranks[1]["params"][name])
        diff = (ranks[0]["params"][name] - value).abs().max().item()
        assert diff <= TOLERANCE, f"{name}: {diff:.2e} from the single-process update"
    assert ranks[0]["grad_norms"] == ranks[1]["grad_norms"]
    assert min(single["grad_norms"]) > 0
    assert ranks[0]["grad_norms"] == pytest.approx(single["grad_norms"], rel=1e-5)


if __name__ == "__main__":
    worker(*sys.argv[1:4])

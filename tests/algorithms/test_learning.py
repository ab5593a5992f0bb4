"""The trainer learns: a verifiable reward rises on the real tiny model while a frozen role stays put."""

from __future__ import annotations

import numpy as np
import torch

from selfplay_gym import SelfPlayVectorEnv
from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.scripted import MajorityJudge
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.schedules import Joint
from selfplay_gym.algorithms.trainer import SelfPlayTrainer, TrainConfig
from selfplay_gym.algorithms.update import UpdateConfig
from selfplay_gym.envs.tasks import ArithmeticTask
from selfplay_gym.envs.verify import extract_answer


def even_answer(episode, agent) -> float:
    """1 when the solver's boxed answer is an even integer: checkable, and learnable fast."""
    text = next((t.text for t in episode.turns if t.agent == agent), "")  # "" if it never acted
    answer = extract_answer(text)
    return float(answer is not None and answer.lstrip("-").isdigit() and int(answer) % 2 == 0)


def test_a_verifiable_reward_rises_and_the_frozen_role_is_untouched(tiny_dir, tmp_path):
    backend = HFBackend(tiny_dir, adapters=["questioner", "solver"])
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=16)
    llm = LLMPolicy(backend, {"questioner": RoleConfig("questioner", sampling),
                              "solver": RoleConfig("solver", sampling)})
    venv = SelfPlayVectorEnv.make("rzero", num_envs=16, num_solvers=8, band_low=0.0,
                                  task=ArithmeticTask(levels=(1,)), rewards={"solver": even_answer})
    config = TrainConfig(iterations=30, learning_rate=3e-3, output_dir=str(tmp_path), progress=False,
                         save_every=0, update=UpdateConfig(minibatch_size=128, micro_batch_size=128))
    trainer = SelfPlayTrainer(venv, llm.roles_map() | {"judge": MajorityJudge()}, backend,
                              PRESETS["dapo"], Joint(("solver",)), config)
    frozen = {n: p.detach().clone() for n, p in backend.store.parameters("questioner").items()}

    history = trainer.train()

    rewards = [row["reward/solver/mean"] for row in history]
    first, last = np.mean(rewards[:5]), np.mean(rewards[-5:])
    assert last > first + 0.15, f"solver reward {first:.2f} -> {last:.2f}: {np.round(rewards, 2)}"
    after = backend.store.parameters("questioner")
    assert all(torch.equal(frozen[n], after[n]) for n in frozen)

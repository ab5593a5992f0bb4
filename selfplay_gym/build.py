"""From a RunConfig to a ready SelfPlayTrainer: model, adapters, policies, envs, schedule.

The one place that knows every layer, so that none of the layers has to know each other.
"""

from __future__ import annotations

import dataclasses

from selfplay_gym.agents.adapters import LoraSettings
from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.scripted import scripted_policy
from selfplay_gym.algorithms import distributed
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.schedules import schedule_from_name
from selfplay_gym.algorithms.trainer import SelfPlayTrainer
from selfplay_gym.config import RunConfig
from selfplay_gym.envs.registry import mode_class
from selfplay_gym.envs.vector import SelfPlayVectorEnv


def resolve_model(name: str) -> str:
    """"tiny" means the embedded model, built and cached on first use."""
    if name == "tiny":
        from selfplay_gym.agents.tiny import tiny_model_dir

        return str(tiny_model_dir())
    return name


def mode_options(cfg: RunConfig) -> dict:
    """The rollout settings this mode accepts (num_solvers only where the mode has solvers)."""
    fields = {f.name for f in dataclasses.fields(mode_class(cfg.mode).Config)}
    return {"num_solvers": cfg.rollout.num_solvers} if "num_solvers" in fields else {}


def build_trainer(cfg: RunConfig) -> SelfPlayTrainer:
    if cfg.algorithm not in PRESETS:
        raise ValueError(f"unknown algorithm {cfg.algorithm!r}; choose one of {sorted(PRESETS)}")
    mode = mode_class(cfg.mode)
    # under accelerate launch num_envs is the global batch: each rank plays its share
    num_envs = distributed.local_share(cfg.rollout.num_envs)
    venv = SelfPlayVectorEnv.make(cfg.mode, num_envs=num_envs, **mode_options(cfg))
    scripted = dict(mode.scripted_roles)
    for item in cfg.scripted:
        role, _, name = item.partition("=")
        if role not in mode.roles or not name:
            raise ValueError(f"--scripted {item!r}: write role=agent with a role of {list(mode.roles)}")
        scripted[role] = name
    llm_roles = [r for r in mode.roles if r not in scripted]
    adapters = {r: "policy" if mode.single_policy else r for r in llm_roles}
    backend = HFBackend(
        resolve_model(cfg.model.name),
        adapters=sorted(set(adapters.values())),
        lora=LoraSettings(r=cfg.model.lora_r, alpha=cfg.model.lora_alpha, dropout=cfg.model.lora_dropout),
        device=cfg.model.device or distributed.world().device,
        dtype=cfg.model.dtype,
        seed=cfg.train.seed,
    )
    sampling = SamplingConfig(cfg.rollout.temperature, cfg.rollout.top_p, 0, cfg.rollout.max_new_tokens)
    llm = LLMPolicy(backend, {r: RoleConfig(adapters[r], sampling) for r in llm_roles})
    policies = llm.roles_map() | {r: scripted_policy(n, venv.envs[0].task) for r, n in scripted.items()}
    algorithm = PRESETS[cfg.algorithm]
    if cfg.kl_coef is not None:
        algorithm = dataclasses.replace(algorithm, kl_coef=cfg.kl_coef)
    if algorithm.aggregate == "constant" and algorithm.max_tokens is None:
        algorithm = dataclasses.replace(algorithm, max_tokens=cfg.rollout.max_new_tokens)
    schedule = schedule_from_name(cfg.schedule, cfg.train_roles, phase_iterations=cfg.phase_iterations)
    return SelfPlayTrainer(venv, policies, backend, algorithm, schedule, cfg.train)

"""From a RunConfig to a ready SelfPlayTrainer: model, adapters, policies, envs, schedule.

The one place that knows every layer, so that none of the layers has to know each other.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from selfplay_gym.agents.adapters import LoraSettings
from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.scripted import scripted_policy
from selfplay_gym.algorithms import distributed
from selfplay_gym.algorithms.checkpoint import latest_checkpoint
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.replay import StaggeredReplay
from selfplay_gym.algorithms.schedules import schedule_from_name
from selfplay_gym.algorithms.trainer import SelfPlayTrainer
from selfplay_gym.config import RunConfig
from selfplay_gym.envs.registry import mode_class
from selfplay_gym.envs.vector import SelfPlayVectorEnv
from selfplay_gym.plots import read_jsonl
from selfplay_gym.types import Episode


def resolve_model(name: str) -> str:
    """"tiny" means the embedded model, built and cached on first use."""
    if name == "tiny":
        from selfplay_gym.agents.tiny import tiny_model_dir

        return str(tiny_model_dir())
    return name


def mode_options(cfg: RunConfig) -> dict:
    """The rollout settings this mode accepts (num_solvers only where the mode has solvers),
    then the config's own ``options`` (key=value)."""
    fields = {f.name for f in dataclasses.fields(mode_class(cfg.mode).Config)}
    options = {"num_solvers": cfg.rollout.num_solvers} if "num_solvers" in fields else {}
    for item in cfg.options:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--options {item!r}: write key=value with a key of {sorted(fields)}")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
    return options


def with_recipe(cfg: RunConfig) -> RunConfig:
    """Fill what the config leaves empty (train_roles, schedule, algorithm) from the mode's
    published recipe; a multi-stage recipe's stages are chosen in ``train_from_config``."""
    recipe = mode_class(cfg.mode).recipe
    cfg = dataclasses.replace(
        cfg,
        train_roles=cfg.train_roles or recipe.stages[0],
        schedule=cfg.schedule or recipe.schedule,
        algorithm=cfg.algorithm or recipe.algorithm,
    )
    if cfg.algorithm not in PRESETS:
        raise ValueError(f"unknown algorithm {cfg.algorithm!r}; choose one of {sorted(PRESETS)}")
    return cfg


def build_backend(cfg: RunConfig) -> HFBackend:
    """One base model with one LoRA adapter per adapter name the mode's LLM roles use."""
    return HFBackend(
        resolve_model(cfg.model.name),
        adapters=sorted(set(role_adapters(cfg).values())),
        lora=LoraSettings(r=cfg.model.lora_r, alpha=cfg.model.lora_alpha, dropout=cfg.model.lora_dropout),
        device=cfg.model.device or distributed.world().device,
        dtype=cfg.model.dtype,
        seed=cfg.train.seed,
    )


def role_adapters(cfg: RunConfig) -> dict[str, str]:
    """LLM role -> adapter: the recipe's map, else one per role ("policy" for single-policy modes)."""
    mode, scripted = mode_class(cfg.mode), scripted_roles(cfg)
    default = {r: "policy" if mode.single_policy else r for r in mode.roles}
    return {r: (default | mode.recipe.adapters)[r] for r in mode.roles if r not in scripted}


def role_temperatures(cfg: RunConfig) -> dict[str, float]:
    """``rollout.role_temperatures`` ("refiner=0") as role -> temperature."""
    roles, out = mode_class(cfg.mode).roles, {}
    for item in cfg.rollout.role_temperatures:
        role, _, text = item.partition("=")
        refused = ValueError(f"--rollout.role-temperatures {item!r}: write role=T with T >= 0 and "
                             f"a role of {list(roles)}")
        try:
            out[role] = float(text)
        except ValueError:
            raise refused from None
        if role not in roles or not out[role] >= 0:
            raise refused
    return out


def scripted_roles(cfg: RunConfig) -> dict[str, str]:
    mode = mode_class(cfg.mode)
    scripted = dict(mode.scripted_roles)
    for item in cfg.scripted:
        role, _, name = item.partition("=")
        if role not in mode.roles or not name:
            raise ValueError(f"--scripted {item!r}: write role=agent with a role of {list(mode.roles)}")
        scripted[role] = name
    return scripted


def build_trainer(
    cfg: RunConfig, backend: HFBackend | None = None, env_options: dict | None = None
) -> SelfPlayTrainer:
    """A trainer for one stage: ``env_options`` (a later stage's) go to the mode's envs, and a
    given ``backend`` (the earlier stage's, adapters and all) is reused."""
    cfg = with_recipe(cfg)
    # under accelerate launch num_envs is the global batch: each rank plays its share
    num_envs = distributed.local_share(cfg.rollout.num_envs)
    options = mode_options(cfg) | (env_options or {})
    mode = mode_class(cfg.mode).from_options(**options)
    # one task source for all envs, so that consecutive resets can form groups (DARC)
    venv = SelfPlayVectorEnv.make(cfg.mode, num_envs=num_envs, task=mode.default_task(), **options)
    backend = backend or build_backend(cfg)
    sampling = SamplingConfig(cfg.rollout.temperature, cfg.rollout.top_p, 0, cfg.rollout.max_new_tokens)
    temperatures = role_temperatures(cfg)
    llm = LLMPolicy(backend, {
        r: RoleConfig(a, dataclasses.replace(sampling, temperature=temperatures.get(r, sampling.temperature)))
        for r, a in role_adapters(cfg).items()
    })
    scripted = {r: scripted_policy(n, venv.envs[0].task) for r, n in scripted_roles(cfg).items()}
    algorithm = PRESETS[cfg.algorithm]
    if cfg.kl_coef is not None:
        algorithm = dataclasses.replace(algorithm, kl_coef=cfg.kl_coef)
    if algorithm.aggregate == "constant" and algorithm.max_tokens is None:
        algorithm = dataclasses.replace(algorithm, max_tokens=cfg.rollout.max_new_tokens)
    schedule = schedule_from_name(cfg.schedule, cfg.train_roles, phase_iterations=cfg.phase_iterations)
    selector = None
    if cfg.schedule == "staggered":
        selector = StaggeredReplay(lagging=tuple(cfg.train_roles[1:]), seed=cfg.train.seed)
    return SelfPlayTrainer(venv, llm.roles_map() | scripted, backend, algorithm, schedule,
                           cfg.train, selector=selector)


def train_from_config(
    cfg: RunConfig, resume: bool = False, backend: HFBackend | None = None
) -> list[dict]:
    """Run the mode's recipe: one trainer, or one per stage (DARC: Questioner, then Solver on
    the curriculum the first stage's episodes make), all on one base model.

    Stage k writes to ``output_dir/stage{k}``; ``resume`` continues every stage that has a
    checkpoint and skips the stages that finished. A given ``backend`` (from
    ``build_backend(cfg)``) is trained in place, e.g. to evaluate it afterwards.
    """
    stages = mode_class(cfg.mode).recipe.stages
    if cfg.train_roles or len(stages) == 1:
        trainer = build_trainer(cfg, backend)
        if resume:
            print(f"resuming at iteration {trainer.resume()}")
        return trainer.train()
    total, n = cfg.train.iterations, len(stages)
    early = cfg.stage_iterations or max(1, total // n)  # each stage but the last; it gets the rest
    lengths = [early] * (n - 1) + [total - early * (n - 1)]
    if min(lengths) < 1:
        raise ValueError(f"a {n}-stage recipe needs at least one iteration per stage: "
                         f"train.iterations={total} and stage_iterations={early} give {lengths}")
    root, history, trainer, options = Path(cfg.train.output_dir), [], None, None
    for k, (roles, iterations) in enumerate(zip(stages, lengths, strict=True), start=1):
        stage_cfg = dataclasses.replace(
            cfg, train_roles=roles,
            train=dataclasses.replace(cfg.train, iterations=iterations, output_dir=str(root / f"stage{k}")))
        if trainer is not None:  # the next stage starts from the last one's episodes
            rows = read_jsonl(root / f"stage{k - 1}" / "episodes.jsonl")
            episodes = [Episode.from_dict({key: v for key, v in r.items() if key != "iteration"})
                        for r in rows]
            options = trainer.venv.mode.next_stage_options(episodes)
        trainer = build_trainer(stage_cfg, trainer.learner if trainer else backend, options)
        if resume and latest_checkpoint(stage_cfg.train.output_dir):
            trainer.resume()
        history += [{"stage": k, **row} for row in trainer.train()]
    return history

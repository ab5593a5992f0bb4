"""From a RunConfig to a ready SelfPlayTrainer: model, adapters, engine, policies, envs, schedule.

The one place that knows every layer, so that none of the layers has to know each other.
``plan_run`` resolves a config against its mode once (recipe, options, who plays what); every
builder below reads that plan, never the mode again.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfplay_gym.agents.adapters import LoraSettings
from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import Backend, LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.scripted import scripted_policy
from selfplay_gym.algorithms import distributed
from selfplay_gym.algorithms.losses import PRESETS, AlgorithmConfig
from selfplay_gym.algorithms.replay import StaggeredReplay
from selfplay_gym.algorithms.schedules import schedule_from_name
from selfplay_gym.algorithms.trainer import SelfPlayTrainer
from selfplay_gym.config import ENGINES, RolloutConfig, RunConfig
from selfplay_gym.envs.mode import Mode
from selfplay_gym.envs.registry import mode_class
from selfplay_gym.envs.vector import SelfPlayVectorEnv
from selfplay_gym.plots import read_jsonl
from selfplay_gym.run_task import build_evaluator, eval_adapter, held_out_questions, task_source
from selfplay_gym.types import Episode
from selfplay_gym.validation import (
    check_output_dir,
    check_resume,
    record_run,
    validate_config,
    value_problem,
)


def resolve_model(name: str) -> str:
    """"tiny" and "tiny-code" mean the embedded models, built and cached on first use; any other
    name must be a model directory or a hub id this machine can load, else one line says why
    (``locate_model``: a directory that does not exist, a hub that is offline or unreachable)."""
    if name in ("tiny", "tiny-code"):
        from selfplay_gym.agents.tiny import embedded_model_dir

        return str(embedded_model_dir(name))
    from selfplay_gym.agents.loading import locate_model

    return locate_model(name)


@dataclass(frozen=True)
class RunPlan:
    """A RunConfig resolved against its mode: what every builder reads."""

    cfg: RunConfig
    """The config with the recipe's train_roles, schedule and algorithm filled in."""
    mode: type[Mode]
    options: dict[str, Any]
    """The mode's env options: num_solvers where the mode has solvers, then ``cfg.options``."""
    scripted: dict[str, str]
    """Role -> scripted agent name (the mode's defaults, then ``cfg.scripted``)."""
    adapters: dict[str, str]
    """LLM role -> LoRA adapter (the recipe's map, else one per role, or "policy")."""
    temperatures: dict[str, float]
    """Role -> sampling temperature, where ``rollout.role_temperatures`` sets one."""
    algorithm: AlgorithmConfig
    task: Any = None
    """The task source ``cfg.task`` names (``run_task.task_source``); None: the mode's own."""

    @property
    def adapter_names(self) -> list[str]:
        return sorted(set(self.adapters.values()))


def plan_run(cfg: RunConfig) -> RunPlan:
    """Check the config, look the mode up once and resolve everything the config leaves to it."""
    validate_config(cfg)
    mode = mode_class(cfg.mode)
    recipe = mode.recipe
    cfg = dataclasses.replace(
        cfg,
        train_roles=cfg.train_roles or recipe.stages[0],
        schedule=cfg.schedule or recipe.schedule,
        algorithm=cfg.algorithm or recipe.algorithm,
    )
    if cfg.rollout.engine not in ENGINES:
        raise ValueError(f"--rollout.engine {cfg.rollout.engine!r}: choose one of {list(ENGINES)}")
    if cfg.model.name == "tiny":  # the embedded model of the mode's domain
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, name=mode.embedded_model))
    scripted = _scripted_roles(cfg, mode)
    default = {r: "policy" if mode.single_policy else r for r in mode.roles}
    adapters = {r: (default | recipe.adapters)[r] for r in mode.roles if r not in scripted}
    plan = RunPlan(cfg, mode, _mode_options(cfg, mode), scripted, adapters,
                   _role_temperatures(cfg, mode), _algorithm(cfg), task_source(cfg.task))
    if cfg.train.eval_every:  # refused now, not after the model loads
        held_out_questions(_eval_task(plan), cfg.mode)
        eval_adapter(plan.adapters)
    return plan


def _eval_task(plan: RunPlan) -> Any:
    """Where held-out questions come from: ``--task``, else the mode's own (first-stage) task."""
    return plan.task if plan.task is not None else plan.mode.from_options(**plan.options).default_task()


def _mode_options(cfg: RunConfig, mode: type[Mode]) -> dict[str, Any]:
    fields = {f.name for f in dataclasses.fields(mode.Config)}
    options = {"num_solvers": cfg.rollout.num_solvers} if "num_solvers" in fields else {}
    for item in cfg.options:
        key, sep, text = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--options {item!r}: write key=value with a key of {sorted(fields)}")
        try:
            options[key] = json.loads(text)
        except json.JSONDecodeError:
            options[key] = text
        options[key] = _check_option(item, key, options[key], mode)
    return options


def _check_option(item: str, key: str, value: Any, mode: type[Mode]) -> Any:
    """``value`` against the annotation of the mode's Config field (a JSON list becomes a tuple
    where a tuple goes), so a wrong type is named here, not as a TypeError mid-episode."""
    try:
        hint = typing.get_type_hints(mode.Config)[key]
    except (NameError, TypeError):  # an annotation this process cannot resolve: trust the value
        return value
    if typing.get_origin(hint) is tuple and isinstance(value, list):
        value = tuple(value)
    problem = value_problem(value, hint)
    if problem:
        raise ValueError(f"--options {item!r}: {problem} for option {key!r} of mode {mode.name!r}")
    return value


def _scripted_roles(cfg: RunConfig, mode: type[Mode]) -> dict[str, str]:
    scripted = dict(mode.scripted_roles)
    for item in cfg.scripted:
        role, _, name = item.partition("=")
        if role not in mode.roles or not name:
            raise ValueError(f"--scripted {item!r}: write role=agent with a role of {list(mode.roles)}")
        scripted[role] = name
    return scripted


def _role_temperatures(cfg: RunConfig, mode: type[Mode]) -> dict[str, float]:
    out = {}
    for item in cfg.rollout.role_temperatures:
        role, _, text = item.partition("=")
        refused = ValueError(f"--rollout.role-temperatures {item!r}: write role=T with T >= 0 and "
                             f"a role of {list(mode.roles)}")
        try:
            out[role] = float(text)
        except ValueError:
            raise refused from None
        if role not in mode.roles or not out[role] >= 0:
            raise refused
    return out


def _algorithm(cfg: RunConfig) -> AlgorithmConfig:
    if cfg.algorithm not in PRESETS:
        raise ValueError(f"unknown algorithm {cfg.algorithm!r}; choose one of {sorted(PRESETS)}")
    overrides = {"kl_coef": cfg.kl_coef, "tis_cap": cfg.tis_cap}
    algorithm = dataclasses.replace(PRESETS[cfg.algorithm],
                                    **{k: v for k, v in overrides.items() if v is not None})
    if algorithm.aggregate == "constant" and algorithm.max_tokens is None:
        algorithm = dataclasses.replace(algorithm, max_tokens=cfg.rollout.max_new_tokens)
    return algorithm


# --- engines -------------------------------------------------------------------------------------
def build_backend(plan: RunPlan) -> HFBackend:
    """The learner: one base model with one LoRA adapter per adapter name of the plan."""
    cfg = plan.cfg
    return HFBackend(
        resolve_model(cfg.model.name),
        adapters=plan.adapter_names,
        lora=LoraSettings(r=cfg.model.lora_r, alpha=cfg.model.lora_alpha, dropout=cfg.model.lora_dropout),
        device=cfg.model.device or distributed.world().device,
        dtype=cfg.model.dtype,
        seed=cfg.train.seed,
        gradient_checkpointing=cfg.model.gradient_checkpointing,
        chat_template=cfg.model.chat_template,
    )


def build_generator(plan: RunPlan, learner: HFBackend) -> Backend:
    """The engine that generates rollouts (``rollout.engine``). The trainer loads every adapter
    onto it before the first rollout and after each update."""
    return start_engine(plan.cfg.rollout, learner, plan.cfg.model.name, plan.cfg.model.lora_r,
                        len(plan.adapter_names), plan.cfg.train.seed)


def start_engine(rollout: RolloutConfig, learner: HFBackend, model: str, lora_rank: int,
                 num_adapters: int, seed: int) -> Backend:
    """The learner itself (hf), vLLM in this process on the learner's model and dtype, or an
    OpenAI-compatible server at ``rollout.base_url``."""
    if rollout.engine_sleep and rollout.engine != "vllm":
        raise ValueError("--rollout.engine-sleep puts an in-process vLLM to sleep during the "
                         f"update; it needs --rollout.engine vllm, not {rollout.engine!r}")
    if rollout.engine == "hf":
        return learner
    if rollout.engine == "vllm":
        from selfplay_gym.agents.vllm import VLLMBackend

        return VLLMBackend.launch(
            resolve_model(model),
            dtype=str(learner.dtype).removeprefix("torch."),
            max_lora_rank=lora_rank,
            max_loras=max(1, num_adapters),
            max_model_len=learner.max_context,
            gpu_memory_utilization=rollout.engine_memory,
            enable_sleep_mode=rollout.engine_sleep,
            seed=seed,
            chat_template=template if isinstance(template := learner.tokenizer.chat_template, str) else None,
        )
    from selfplay_gym.agents.openai_api import OpenAIBackend

    if not rollout.base_url:
        raise ValueError("--rollout.engine openai needs --rollout.base-url, e.g. "
                         "http://127.0.0.1:8000/v1 (a `vllm serve MODEL --enable-lora` or "
                         "`selfplay-gym serve`)")
    return OpenAIBackend(rollout.base_url, rollout.served_model or None)


# --- trainers ------------------------------------------------------------------------------------
def build_trainer(
    cfg: RunConfig | RunPlan,
    backend: HFBackend | None = None,
    env_options: dict | None = None,
    generator: Backend | None = None,
) -> SelfPlayTrainer:
    """A trainer for one stage: ``env_options`` (a later stage's) go to the mode's envs, and a
    given ``backend`` (the learner) and ``generator`` (the rollout engine) are reused."""
    plan = cfg if isinstance(cfg, RunPlan) else plan_run(cfg)
    cfg = plan.cfg
    # under accelerate launch num_envs is the global batch: each rank plays its share
    num_envs = distributed.local_share(cfg.rollout.num_envs)
    options = plan.options | (env_options or {})
    mode = plan.mode.from_options(**options)
    # one task source for all envs, so that consecutive resets can form groups (DARC); a later
    # stage (env_options) plays the task its mode derived from the stage before
    own = plan.task is not None and not env_options
    task = mode.task_from(plan.task) if own else mode.default_task()
    venv = SelfPlayVectorEnv.make(cfg.mode, num_envs=num_envs, task=task, **options)
    learner = backend or build_backend(plan)
    evaluate = None
    if cfg.train.eval_every:
        source = _eval_task(plan)
        evaluate = build_evaluator(learner, held_out_questions(source, cfg.mode),
                                   eval_adapter(plan.adapters), source, cfg.rollout.max_new_tokens)
    generator = generator or build_generator(plan, learner)
    sampling = SamplingConfig(cfg.rollout.temperature, cfg.rollout.top_p, 0, cfg.rollout.max_new_tokens)
    llm = LLMPolicy(generator, {
        r: RoleConfig(a, dataclasses.replace(sampling, temperature=plan.temperatures.get(r, sampling.temperature)))
        for r, a in plan.adapters.items()
    })
    scripted = {r: scripted_policy(n, venv.envs[0].task) for r, n in plan.scripted.items()}
    schedule = schedule_from_name(cfg.schedule, cfg.train_roles, phase_iterations=cfg.phase_iterations)
    selector = None
    if cfg.schedule == "staggered":
        selector = StaggeredReplay(lagging=tuple(cfg.train_roles[1:]), seed=cfg.train.seed)
    return SelfPlayTrainer(venv, llm.roles_map() | scripted, learner, plan.algorithm, schedule,
                           cfg.train, evaluate=evaluate, selector=selector,
                           run_config=json.loads(json.dumps(dataclasses.asdict(cfg), default=str)))


def claim_output_dir(output_dir: str | Path, resume: bool, overwrite: bool) -> None:
    """Refuse to mix two runs in one directory: an existing run is continued (``resume``) or
    replaced (``overwrite``: its checkpoints and stages go first), never silently appended to."""
    root = Path(output_dir)
    held = [p for p in (root / "metrics.jsonl", root / "checkpoints", *root.glob("stage[0-9]*"))
            if p.exists()]
    if not held or resume:
        return
    if not overwrite:
        raise ValueError(f"{root} holds a run already ({held[0].name}): --resume continues it, "
                         "--overwrite replaces it, or choose another --train.output-dir")
    for path in held:
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def train_from_config(
    cfg: RunConfig, resume: bool = False, backend: HFBackend | None = None,
    generator: Backend | None = None, overwrite: bool = False,
) -> list[dict]:
    """Run the mode's recipe: one trainer, or one per stage (DARC: Questioner, then Solver on
    the curriculum the first stage's episodes make), all on one base model and one engine.

    Stage k writes to ``output_dir/stage{k}``; ``resume`` continues every stage that has a
    checkpoint and skips the stages that finished. A given ``backend`` (from
    ``build_backend(plan_run(cfg))``) is trained in place, e.g. to evaluate it afterwards; a
    given ``generator`` (an engine already started) generates the rollouts. An output_dir that
    holds a run needs ``resume`` or ``overwrite`` (``claim_output_dir``).
    """
    plan = plan_run(cfg)
    check_output_dir(cfg.train.output_dir)
    claim_output_dir(cfg.train.output_dir, resume, overwrite)
    if resume:
        check_resume(plan.cfg, cfg.train.output_dir, plan.adapter_names)
    if distributed.world().is_main:
        record_run(cfg, cfg.train.output_dir, resolved=plan.cfg)
    stages = plan.mode.recipe.stages
    if cfg.train_roles or len(stages) == 1:
        trainer = build_trainer(plan, backend, generator=generator)
        if resume:
            print(f"resuming at iteration {trainer.resume(missing_ok=True)}")
        return trainer.train()
    total, n = cfg.train.iterations, len(stages)
    early = cfg.stage_iterations or max(1, total // n)  # each stage but the last; it gets the rest
    lengths = [early] * (n - 1) + [total - early * (n - 1)]
    if min(lengths) < 1:
        raise ValueError(f"a {n}-stage recipe needs at least one iteration per stage: "
                         f"train.iterations={total} and stage_iterations={early} give {lengths}")
    root, history, trainer, options = Path(cfg.train.output_dir), [], None, None
    for k, (roles, iterations) in enumerate(zip(stages, lengths, strict=True), start=1):
        stage_plan = plan_run(dataclasses.replace(
            cfg, train_roles=roles,
            train=dataclasses.replace(cfg.train, iterations=iterations, output_dir=str(root / f"stage{k}"))))
        if trainer is not None:  # the next stage starts from the last one's episodes
            rows = read_jsonl(root / f"stage{k - 1}" / "episodes.jsonl")
            episodes = [Episode.from_dict({key: v for key, v in r.items() if key != "iteration"})
                        for r in rows]
            options = trainer.venv.mode.next_stage_options(episodes)
            backend, generator = trainer.learner, trainer.generator
        trainer = build_trainer(stage_plan, backend, options, generator)
        if resume:
            print(f"stage {k}: resuming at iteration {trainer.resume(missing_ok=True)}")
        history += [{"stage": k, **row} for row in trainer.train()]
    return history

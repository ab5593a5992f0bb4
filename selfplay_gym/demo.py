"""``selfplay-gym demo``: R-Zero self-play on the embedded tiny model, and proof that it learned.

The Challenger (questioner adapter) and the Solver (solver adapter) co-evolve on one base
model, with no labels: the Solver trains on majority-vote pseudo-labels inside R-Zero's
consistency band. Held-out accuracy on arithmetic questions that training never sees is
measured before and after, greedy (the headline) and sampled at temperature 1.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.scripted import MajorityJudge
from selfplay_gym.agents.tiny import TinyModelConfig, tiny_model_dir
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.schedules import Alternating
from selfplay_gym.algorithms.trainer import SelfPlayTrainer, TrainConfig
from selfplay_gym.algorithms.update import UpdateConfig
from selfplay_gym.build import start_engine
from selfplay_gym.config import RolloutConfig
from selfplay_gym.envs.tasks import ArithmeticTask
from selfplay_gym.envs.vector import SelfPlayVectorEnv
from selfplay_gym.eval.held_out import HeldOutAccuracy
from selfplay_gym.plots import plot_run, read_jsonl

__all__ = ["DemoConfig", "HeldOutAccuracy", "build_demo", "run_demo"]


@dataclass
class DemoConfig:
    iterations: int = 30
    """Self-play iterations (about 5 s each on 2 CPU cores, 3 minutes in all). Measured: held-out
    greedy accuracy 64.0% -> 72.0% (sampled 44.0% -> 52.5%); the Solver writes worked
    solutions, so a majority over samples is right more often than one sample, and that is
    what its pseudo-labels teach."""
    questioner_iterations: int = 1
    """Challenger iterations per cycle (against a frozen Solver)."""
    solver_iterations: int = 2
    """Solver iterations per cycle (on the Challenger's filtered questions)."""
    num_envs: int = 64
    num_solvers: int = 8
    max_new_tokens: int = 40
    """Room for a worked solution of two or three steps and its boxed answer."""
    learning_rate: float = 5e-4
    """2e-3 collapsed the Solver to near-constant answers within 50 iterations (greedy 70% -> 39%)."""
    kl_coef: float = 0.05
    """KL to the base model (k3): the brake on the collapse self-consistency rewards invite."""
    held_out: int = 200
    eval_every: int = 10
    seed: int = 0
    output_dir: str = "runs/demo"
    engine: str = "hf"
    """Where rollouts are generated: "hf" (the learner), "vllm" (in .venv-vllm) or "openai"."""
    base_url: str = ""
    """The server for engine "openai"."""
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)


def build_demo(cfg: DemoConfig) -> tuple[SelfPlayTrainer, HeldOutAccuracy]:
    model_dir = tiny_model_dir(cfg.tiny)
    backend = HFBackend(model_dir, adapters=["questioner", "solver"], seed=cfg.seed)
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=cfg.max_new_tokens)
    rollout = RolloutConfig(engine=cfg.engine, base_url=cfg.base_url)
    generator = start_engine(rollout, backend, str(model_dir), backend.store.lora.r, 2, cfg.seed)
    llm = LLMPolicy(generator, {"questioner": RoleConfig("questioner", sampling),
                              "solver": RoleConfig("solver", sampling)})
    task = ArithmeticTask(levels=cfg.tiny.levels)
    venv = SelfPlayVectorEnv.make("rzero", num_envs=cfg.num_envs, num_solvers=cfg.num_solvers, task=task)
    schedule = Alternating(((("questioner",), cfg.questioner_iterations),
                            (("solver",), cfg.solver_iterations)))
    algorithm = dataclasses.replace(PRESETS["rzero"], kl_coef=cfg.kl_coef)
    evaluator = HeldOutAccuracy(backend, task.held_out(cfg.held_out), "solver", cfg.max_new_tokens)
    train = TrainConfig(
        iterations=cfg.iterations, learning_rate=cfg.learning_rate, seed=cfg.seed,
        output_dir=cfg.output_dir, eval_every=cfg.eval_every, save_every=cfg.eval_every,
        update=UpdateConfig(minibatch_size=256, micro_batch_size=64),
    )
    trainer = SelfPlayTrainer(venv, llm.roles_map() | {"judge": MajorityJudge()}, backend,
                              algorithm, schedule, train, evaluate=evaluator)
    return trainer, evaluator


def run_demo(cfg: DemoConfig | None = None) -> dict[str, float]:
    cfg = cfg or DemoConfig()
    start = time.perf_counter()
    trainer, evaluator = build_demo(cfg)
    trainer.train()
    rows = read_jsonl(Path(cfg.output_dir) / "metrics.jsonl")
    evals = [r for r in rows if "eval/greedy_accuracy" in r]
    before, after = evals[0], evals[-1] if evals[-1]["iteration"] == cfg.iterations - 1 else evaluator()
    figures = plot_run(cfg.output_dir)
    minutes = (time.perf_counter() - start) / 60
    out = Path(cfg.output_dir)
    print(f"\nR-Zero self-play on the tiny model: {cfg.iterations} iterations in {minutes:.1f} min")
    print(f"sampled accuracy (T=1): before {100 * before['eval/sampled_accuracy']:.1f}% -> "
          f"after {100 * after['eval/sampled_accuracy']:.1f}%")
    print(f"metrics: {out / 'metrics.jsonl'}\nepisodes: {out / 'episodes.log'}")
    print("plots: " + ", ".join(str(f) for f in figures))
    print(f"held-out accuracy: before {100 * before['eval/greedy_accuracy']:.1f}% -> "
          f"after {100 * after['eval/greedy_accuracy']:.1f}%")
    return {"before": before["eval/greedy_accuracy"], "after": after["eval/greedy_accuracy"]}

"""Solver-only GRPO, step for step: our SelfPlayTrainer against TRL's GRPOTrainer.

Both train one LoRA adapter (same rank, alpha, targets) on the same model, as the R-Zero
Solver: a dataset questioner asks arithmetic questions, G solvers answer each one, a
majority judge scores them. Same number of episodes and generations per step, same
completion length, temperature 1, learning rate, loss (token-mean clipped surrogate, group
std-normalised advantages, no KL: TRL's defaults) and one optimizer update per step, on the
whole batch in one forward/backward. TRL generates through ``selfplay_gym.integrations.trl``,
so both sample with the same backend code; the difference is everything else in a step.
Every solver sample trains on both sides (R-Zero's consistency band is off for this run).

The two run alternately in one process (ours step, TRL step, ...: each waits while the other
works) so that load from other processes hits both alike; the first ``--warmup`` steps of
each are dropped and the median of the rest is reported. Peak memory is measured afterwards,
each contender alone in a fresh subprocess (see ``common.PeakMemory`` for what it counts).

Run ``python benchmarks/grpo_vs_trl.py [--size tiny|larger|qwen3-0.6b]``.

``--engine vllm`` (in .venv-vllm) is the row a TRL user would compare against: our trainer
generating on vLLM in-process (training on the transformers learner, adapters synced after
every step, the agreement pass included), TRL's ``GRPOTrainer`` with its own default
generation (transformers ``generate``, not our bridge) on the same R-Zero solver prompts, with
a plain reward function that scores each answer against its group's majority, as our majority
judge does. Memory is not compared there: vLLM's engine runs in processes of its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402
from common import (  # noqa: E402
    FACT_COLUMNS,
    MODE,
    Baton,
    PeakMemory,
    add_model_arguments,
    append_row,
    count_params,
    median,
    model_dir,
    register_every_solver_mode,
    result_line,
    run_facts,
    run_json_subprocess,
)

from selfplay_gym.agents.adapters import LoraSettings  # noqa: E402
from selfplay_gym.agents.hf import HFBackend  # noqa: E402
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig  # noqa: E402
from selfplay_gym.agents.scripted import DatasetQuestioner, MajorityJudge  # noqa: E402
from selfplay_gym.algorithms.losses import AlgorithmConfig  # noqa: E402
from selfplay_gym.algorithms.schedules import Joint  # noqa: E402
from selfplay_gym.algorithms.trainer import SelfPlayTrainer, TrainConfig  # noqa: E402
from selfplay_gym.algorithms.update import UpdateConfig  # noqa: E402
from selfplay_gym.envs.tasks import ArithmeticTask  # noqa: E402
from selfplay_gym.envs.vector import SelfPlayVectorEnv  # noqa: E402

NAME = "grpo_vs_trl"
COLUMNS = (*FACT_COLUMNS, "size", "params", "episodes x G", "new tokens", "steps",
           "ours s/step", "TRL s/step", "ours/TRL", "memory", "ours MB", "TRL MB", "ours/TRL mem")


register_every_solver_mode()


@dataclasses.dataclass
class Setup:
    size: str = "tiny"
    episodes: int = 4
    generations: int = 4
    max_new_tokens: int = 32
    lora_r: int = 8
    learning_rate: float = 1e-4
    seed: int = 0
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    engine: str = "hf"
    """Our rollout engine: "hf" (the learner; TRL through our bridge) or "vllm" (TRL native)."""

    @property
    def batch(self) -> int:
        return self.episodes * self.generations

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.device.startswith("cuda") else torch.float32

    def env_kwargs(self) -> dict:
        return {"task": ArithmeticTask(levels=(1,))}

    def scripted(self) -> dict:
        task = ArithmeticTask(levels=(1,))
        return {"questioner": DatasetQuestioner(task.problems(256, seed=self.seed), seed=self.seed),
                "judge": MajorityJudge()}


def build_ours(setup: Setup, path: Path, output_dir: Path, steps: int, schedule=None) -> SelfPlayTrainer:
    backend = HFBackend(path, adapters=["solver"], lora=LoraSettings(r=setup.lora_r, alpha=2 * setup.lora_r),
                        device=setup.device, dtype=setup.dtype, seed=setup.seed)
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=setup.max_new_tokens)
    generator = backend
    if setup.engine == "vllm":
        from selfplay_gym.agents.vllm import VLLMBackend

        generator = VLLMBackend.launch(path, dtype=str(setup.dtype).removeprefix("torch."),
                                       max_lora_rank=setup.lora_r, max_loras=1, seed=setup.seed)
    policies = LLMPolicy(generator, {"solver": RoleConfig("solver", sampling)}).roles_map() | setup.scripted()
    venv = SelfPlayVectorEnv.make(MODE, num_envs=setup.episodes, num_solvers=setup.generations,
                                  **setup.env_kwargs())
    algorithm = AlgorithmConfig("grpo", "token_mean", kl_coef=0.0)  # TRL: loss_type="dapo", beta=0
    config = TrainConfig(
        iterations=steps, learning_rate=setup.learning_rate, seed=setup.seed,
        update=UpdateConfig(minibatch_size=setup.batch, micro_batch_size=setup.batch),
        output_dir=str(output_dir), save_every=0, progress=False,
    )
    return SelfPlayTrainer(venv, policies, backend, algorithm, schedule or Joint(("solver",)), config)


def build_trl(setup: Setup, path: Path, output_dir: Path, steps: int, callbacks=()):
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfplay_gym.integrations.trl import env_reward, make_rollout_func

    cuda = setup.device.startswith("cuda")
    args = trl.GRPOConfig(
        output_dir=str(output_dir), per_device_train_batch_size=setup.batch,
        num_generations=setup.generations, max_completion_length=setup.max_new_tokens,
        gradient_accumulation_steps=1, max_steps=steps, learning_rate=setup.learning_rate,
        lr_scheduler_type="constant", warmup_steps=0, max_grad_norm=1.0, beta=0.0,
        loss_type="dapo", temperature=1.0, gradient_checkpointing=False, use_cpu=not cuda,
        bf16=cuda, report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
        seed=setup.seed, dataloader_num_workers=0,
    )
    model = AutoModelForCausalLM.from_pretrained(path, dtype=setup.dtype)
    if setup.engine == "hf":  # TRL generates through our bridge: the same backend code as ours
        rollout = make_rollout_func(MODE, "solver", setup.scripted(), **setup.env_kwargs())
        reward, prompts = env_reward, [[{"role": "user", "content": "play"}]] * 64
    else:  # TRL as its users run it: its own generation, a plain reward function
        rollout, reward, prompts = None, majority_reward, trl_solver_prompts(setup)
    return trl.GRPOTrainer(
        model=model, reward_funcs=reward, args=args, rollout_func=rollout,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=AutoTokenizer.from_pretrained(path), callbacks=list(callbacks),
        peft_config=LoraConfig(r=setup.lora_r, lora_alpha=2 * setup.lora_r, lora_dropout=0.0,
                               target_modules="all-linear", task_type="CAUSAL_LM"),
    )


def trl_solver_prompts(setup: Setup) -> list[list[dict]]:
    """The R-Zero solver's chat prompts for the questions our dataset questioner asks."""
    from selfplay_gym.agents.tiny import solver_prompts

    problems = ArithmeticTask(levels=(1,)).problems(256, seed=setup.seed)
    return [[dict(m) for m in messages] for messages in solver_prompts(p.question for p in problems)]


def majority_reward(completions, **kwargs) -> list[float]:
    """1 for an answer equal to its group's majority answer, else 0 (R-Zero's pseudo-label).

    TRL lays the G completions of one prompt side by side; an unanswered group scores 0."""
    from selfplay_gym.envs.verify import equivalent, extract_answer, majority_vote

    size = kwargs.get("num_generations") or GENERATIONS
    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    answers = [extract_answer(t) for t in texts]
    rewards = []
    for start in range(0, len(answers), size):
        group = answers[start : start + size]
        label = majority_vote(group).answer
        rewards += [float(label is not None and equivalent(a, label)) for a in group]
    return rewards


GENERATIONS = 4
"""Set from --generations in main(): TRL's reward functions are not told the group size."""


# --- alternating timing ------------------------------------------------------------------------
class StepClock:
    """Wall seconds of each step of one contender, excluding the time it waits for the other."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.started = time.perf_counter()

    def lap(self) -> None:
        self.times.append(time.perf_counter() - self.started)

    def restart(self) -> None:
        self.started = time.perf_counter()


class HandoffSchedule:
    """Trains the solver every iteration; between iterations, gives the turn to TRL."""

    def __init__(self, baton: Baton, clock: StepClock) -> None:
        self.baton, self.clock = baton, clock

    def roles(self, iteration: int) -> frozenset[str]:
        if iteration > 0:
            self.clock.lap()
            self.baton.pass_to("ours", "trl")
            self.clock.restart()
        return frozenset({"solver"})


def alternate(setup: Setup, path: Path, steps: int, work: Path) -> tuple[list[float], list[float]]:
    from transformers import TrainerCallback

    baton = Baton(first="ours")
    ours_clock, trl_clock = StepClock(), StepClock()
    errors: list[BaseException] = []

    class Handoff(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            trl_clock.lap()
            baton.pass_to("trl", "ours")
            trl_clock.restart()

    ours = build_ours(setup, path, work / "ours", steps, HandoffSchedule(baton, ours_clock))
    theirs = build_trl(setup, path, work / "trl", steps, [Handoff()])

    def run_ours() -> None:
        try:
            baton.wait_turn("ours")
            ours_clock.restart()
            ours.train()
            ours_clock.lap()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
        finally:
            baton.finish("ours", "trl")

    def run_trl() -> None:
        try:
            baton.wait_turn("trl")
            trl_clock.restart()
            theirs.train()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
        finally:
            baton.finish("trl", "ours")

    threads = [threading.Thread(target=run_ours), threading.Thread(target=run_trl)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return ours_clock.times, trl_clock.times


# --- memory, one contender per process -----------------------------------------------------------
def measure_memory(setup: Setup, path: Path, who: str, steps: int) -> dict:
    import json

    with tempfile.TemporaryDirectory() as work:
        trainer = (build_ours if who == "ours" else build_trl)(setup, path, Path(work), steps)
        with PeakMemory(setup.device) as peak:
            trainer.train()
    figures = {"who": who, "peak_mb": peak.peak_mb, "start_mb": peak.start_mb, "what": peak.what}
    print(json.dumps(figures))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser, "tiny")
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each, warm-up included")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=4, help="questions per step")
    parser.add_argument("--generations", type=int, default=4, help="answers per question (G)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--memory-steps", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--engine", choices=["hf", "vllm"], default="hf",
                        help="vllm: ours on vLLM vs TRL with its own generation (in .venv-vllm)")
    parser.add_argument("--memory-of", choices=["ours", "trl"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    setup = Setup(size=args.size, episodes=args.episodes, generations=args.generations,
                  max_new_tokens=args.max_new_tokens, engine=args.engine)
    global GENERATIONS
    GENERATIONS = args.generations
    if args.device:
        setup.device = args.device
    path = model_dir(args.size, args.tiny_dir)
    if args.memory_of:
        measure_memory(setup, path, args.memory_of, args.memory_steps)
        return

    with tempfile.TemporaryDirectory() as work:
        ours_times, trl_times = alternate(setup, path, args.steps, Path(work))
    ours_s, trl_s = median(ours_times[args.warmup:]), median(trl_times[args.warmup:])
    common_args = ["--size", args.size, "--episodes", str(args.episodes), "--generations",
                   str(args.generations), "--max-new-tokens", str(args.max_new_tokens),
                   "--memory-steps", str(args.memory_steps), "--device", setup.device]
    common_args += ["--tiny-dir", str(args.tiny_dir)] if args.tiny_dir else []
    script = Path(__file__)
    if args.engine == "vllm":  # the engine's memory is in processes of its own: not comparable
        report_engine_row(args, setup, path, ours_s, trl_s, ours_times, trl_times)
        return
    memory = {who: run_json_subprocess(script, [*common_args, "--memory-of", who]) for who in ("ours", "trl")}
    on_cuda = setup.device.startswith("cuda")
    ours_mb = memory["ours"]["peak_mb"] - (0 if on_cuda else memory["ours"]["start_mb"])
    trl_mb = memory["trl"]["peak_mb"] - (0 if on_cuda else memory["trl"]["start_mb"])
    params = count_params(path)

    print(f"model            {args.size} ({params:,} parameters) on {setup.device}, "
          f"{torch.get_num_threads()} threads")
    print(f"step             {args.episodes} questions x {args.generations} answers, "
          f"{args.max_new_tokens} new tokens, LoRA r={setup.lora_r}, one optimizer update")
    print(f"ours s/step      {ours_s:.3f}  (each: {', '.join(f'{t:.2f}' for t in ours_times)})")
    print(f"TRL  s/step      {trl_s:.3f}  (each: {', '.join(f'{t:.2f}' for t in trl_times)})")
    print(f"speed            ours/TRL = {ours_s / trl_s:.3f} (target <= 0.8)")
    what = memory["ours"]["what"] + ("" if on_cuda else " minus RSS before the first step")
    print(f"memory           {what}: ours {ours_mb:.1f} MB, TRL {trl_mb:.1f} MB, "
          f"ours/TRL = {ours_mb / trl_mb:.3f}")
    append_row(NAME, "Solver GRPO: SelfPlayTrainer vs TRL GRPOTrainer",
               "One row per run of `benchmarks/grpo_vs_trl.py`: median seconds per step (steps "
               "alternated in one process, warm-up dropped) and peak memory of each alone.",
               COLUMNS, [*run_facts(setup.device), args.size, params,
                         f"{args.episodes} x {args.generations}", args.max_new_tokens,
                         args.steps - args.warmup, f"{ours_s:.3f}", f"{trl_s:.3f}",
                         f"{ours_s / trl_s:.3f}", what, f"{ours_mb:.1f}", f"{trl_mb:.1f}",
                         f"{ours_mb / trl_mb:.3f}"])
    print(result_line({"size": args.size, "ours_s_per_step": ours_s, "trl_s_per_step": trl_s,
                       "speed_ratio": ours_s / trl_s, "ours_mem_mb": ours_mb, "trl_mem_mb": trl_mb,
                       "mem_ratio": ours_mb / trl_mb}))


def report_engine_row(args, setup: Setup, path: Path, ours_s, trl_s, ours_times, trl_times) -> None:
    params = count_params(path)
    print(f"model            {args.size} ({params:,} parameters) on {setup.device}")
    print(f"ours (vLLM)      {ours_s:.3f} s/step  (each: {', '.join(f'{t:.2f}' for t in ours_times)})")
    print(f"TRL (own gen.)   {trl_s:.3f} s/step  (each: {', '.join(f'{t:.2f}' for t in trl_times)})")
    print(f"speed            ours/TRL = {ours_s / trl_s:.3f} (target <= 0.5)")
    append_row(NAME, "Solver GRPO: SelfPlayTrainer vs TRL GRPOTrainer",
               "One row per run of `benchmarks/grpo_vs_trl.py`.", COLUMNS,
               [*run_facts(setup.device), f"{args.size}, ours on vLLM vs TRL's own generate", params,
                f"{args.episodes} x {args.generations}", args.max_new_tokens,
                args.steps - args.warmup, f"{ours_s:.3f}", f"{trl_s:.3f}", f"{ours_s / trl_s:.3f}",
                "not compared (vLLM runs in its own processes)", "", "", ""])
    print(result_line({"size": args.size, "engine": "vllm", "ours_s_per_step": ours_s,
                       "trl_s_per_step": trl_s, "speed_ratio": ours_s / trl_s}))


if __name__ == "__main__":
    main()

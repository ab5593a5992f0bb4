"""Peak memory of R-Zero training: one trained role, two roles on one base, two model copies.

Three layouts play the same R-Zero iterations (questioner and G solvers sampled from the
model, majority judge, every solver sample trained; questioner and solver updated with the
R-Zero preset, KL included). A random-weights questioner never writes a parseable question,
so the env is shown a dataset question in its place while the questioner's own sampled
tokens are what it trains on: the memory is that of real training.

- ``one_role``: one base, one LoRA adapter (solver); the questioner samples from the base.
- ``two_roles``: one base, two LoRA adapters (our default: ``HFBackend`` + peft).
- ``two_copies``: two full model copies, one adapter each (the original R-Zero layout,
  where questioner and solver are separate checkpoints).
- ``two_roles_ckpt``: ``two_roles`` with gradient checkpointing (``--model.gradient-checkpointing``).

Each layout runs in its own subprocess so peaks do not mix. The figure is the peak while
training, weights included: on CPU the high-water resident set (VmHWM, reset once the
models are loaded, so loading transients are left out) minus the resident set before
loading; on CUDA ``torch.cuda.max_memory_allocated`` (reset the same way). Targets: two_roles <= 1.15x one_role and <= 0.6x
two_copies. Run ``python benchmarks/memory.py [--size wide]`` (``wide``: Qwen3-0.6B's widths and
vocabulary, 4 layers, random weights, so that weights dominate as in real LoRA training).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import torch
from common import (
    FACT_COLUMNS,
    PeakMemory,
    add_model_arguments,
    append_row,
    count_params,
    current_rss_mb,
    model_dir,
    register_every_solver_mode,
    result_line,
    run_facts,
    run_json_subprocess,
)

from selfplay_gym.agents.adapters import LoraSettings
from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.scripted import DatasetQuestioner, MajorityJudge
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.schedules import Joint
from selfplay_gym.algorithms.trainer import SelfPlayTrainer, TrainConfig
from selfplay_gym.algorithms.update import UpdateConfig
from selfplay_gym.envs.tasks import ArithmeticTask
from selfplay_gym.envs.vector import SelfPlayVectorEnv

NAME = "memory"
LAYOUTS = ("one_role", "two_roles", "two_copies", "two_roles_ckpt")
COLUMNS = (*FACT_COLUMNS, "size", "params", "episodes x G", "memory", "1 role MB", "2 roles MB",
           "2 copies MB", "2 roles / 1 role", "2 roles / 2 copies", "2 roles checkpointed MB")


class Copies:
    """A Learner over several backends, each holding one adapter: routes calls by adapter name.

    The reference policy is the base model, the same in every copy, so the first one scores it.
    """

    def __init__(self, backends: dict[str, HFBackend]) -> None:
        self.backends = backends

    def adapter_parameters(self, adapter: str):
        return self.backends[adapter].adapter_parameters(adapter)

    def train_logprobs(self, adapter: str, prompt_ids, completion_ids, **kwargs):
        return self.backends[adapter].train_logprobs(adapter, prompt_ids, completion_ids, **kwargs)

    def logprobs(self, adapter: str, prompt_ids, completion_ids, **kwargs):
        return self.backends[adapter].logprobs(adapter, prompt_ids, completion_ids, **kwargs)

    def reference_logprobs(self, prompt_ids, completion_ids, **kwargs):
        return next(iter(self.backends.values())).reference_logprobs(prompt_ids, completion_ids, **kwargs)


class DatasetTextQuestioner(LLMPolicy):
    """Samples and trains like the model's questioner; the env sees a dataset question."""

    def __init__(self, policy: LLMPolicy, questions: DatasetQuestioner) -> None:
        super().__init__(policy.backend, {"questioner": policy.roles["questioner"]})
        self.questions = questions

    def generate(self, requests):
        sampled = super().generate(requests)
        texts = self.questions.generate(requests)
        return [dataclasses.replace(c, text=getattr(t, "text", t)) for c, t in zip(sampled, texts, strict=True)]

    def reseed(self, seed: int) -> None:
        self.questions.reseed(seed)


def build(layout: str, path: Path, args, output_dir: Path) -> SelfPlayTrainer:
    lora = LoraSettings(r=8, alpha=16)
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=args.max_new_tokens)

    def backend(adapters):
        return HFBackend(path, adapters=adapters, lora=lora, device=args.device,
                         gradient_checkpointing=layout == "two_roles_ckpt")

    if layout == "one_role":
        shared = backend(["solver"])
        roles = {"questioner": RoleConfig(None, sampling), "solver": RoleConfig("solver", sampling)}
        policies, learner, trained = LLMPolicy(shared, roles).roles_map(), shared, ("solver",)
    elif layout in ("two_roles", "two_roles_ckpt"):
        shared = backend(["questioner", "solver"])
        roles = {r: RoleConfig(r, sampling) for r in ("questioner", "solver")}
        policies, learner, trained = LLMPolicy(shared, roles).roles_map(), shared, ("questioner", "solver")
    else:
        copies = {r: backend([r]) for r in ("questioner", "solver")}
        policies = {r: LLMPolicy(b, {r: RoleConfig(r, sampling)}) for r, b in copies.items()}
        learner, trained = Copies(copies), ("questioner", "solver")
    questions = DatasetQuestioner(ArithmeticTask(levels=(1,)).problems(256, seed=0))
    policies["questioner"] = DatasetTextQuestioner(policies["questioner"], questions)
    venv = SelfPlayVectorEnv.make(register_every_solver_mode(), num_envs=args.episodes,
                                  num_solvers=args.generations, task=ArithmeticTask(levels=(1,)))
    batch = args.episodes * args.generations
    config = TrainConfig(iterations=args.iterations, output_dir=str(output_dir), save_every=0,
                         progress=False, update=UpdateConfig(minibatch_size=batch, micro_batch_size=batch))
    return SelfPlayTrainer(venv, policies | {"judge": MajorityJudge()}, learner, PRESETS["rzero"],
                           Joint(trained), config)


def measure(layout: str, path: Path, args) -> dict:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    before_load = current_rss_mb()
    with tempfile.TemporaryDirectory() as work:
        trainer = build(layout, path, args, Path(work))
        with PeakMemory(device) as peak:  # the peak is reset here: loading transients are left out
            history = trainer.train()
    trained = sorted({k.split("/")[1] for row in history for k in row if k.startswith("update/")})
    figures = {"layout": layout, "mb": peak.peak_mb - (0 if peak.cuda else before_load),
               "what": peak.what, "trained": trained, "device": device}
    print(json.dumps(figures))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser, "wide")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--device", default=None)
    parser.add_argument("--layout", choices=LAYOUTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = model_dir(args.size, args.tiny_dir)
    if args.layout:
        measure(args.layout, path, args)
        return

    forwarded = ["--size", args.size, "--episodes", str(args.episodes), "--generations",
                 str(args.generations), "--max-new-tokens", str(args.max_new_tokens),
                 "--iterations", str(args.iterations)] + (["--device", args.device] if args.device else [])
    forwarded += ["--tiny-dir", str(args.tiny_dir)] if args.tiny_dir else []
    runs = {layout: run_json_subprocess(Path(__file__), [*forwarded, "--layout", layout])
            for layout in LAYOUTS}
    mb = {layout: run["mb"] for layout, run in runs.items()}
    device = runs["one_role"]["device"]
    what = runs["one_role"]["what"] + ("" if device.startswith("cuda") else " during training minus RSS before loading")
    params = count_params(path)
    vs_one, vs_copies = mb["two_roles"] / mb["one_role"], mb["two_roles"] / mb["two_copies"]

    print(f"model            {args.size} ({params:,} parameters) on {device}; R-Zero "
          f"{args.episodes} x {args.generations}, {args.iterations} iterations, LoRA r=8")
    print(f"memory           {what}")
    for layout in LAYOUTS:
        print(f"  {layout:<14} {mb[layout]:8.1f} MB  (adapters updated: {runs[layout]['trained']})")
    print(f"2 roles / 1 role    {vs_one:.3f} (target <= 1.15)")
    print(f"2 roles / 2 copies  {vs_copies:.3f} (target <= 0.6)")
    print(f"checkpointed / not  {mb['two_roles_ckpt'] / mb['two_roles']:.3f}")
    append_row(NAME, "Peak memory by layout",
               "One row per run of `benchmarks/memory.py`: R-Zero training with one trained role, "
               "two roles as two LoRA adapters on one base, and two full model copies, each in "
               "its own process.",
               COLUMNS, [*run_facts(device), args.size, params, f"{args.episodes} x {args.generations}",
                         what, f"{mb['one_role']:.1f}", f"{mb['two_roles']:.1f}",
                         f"{mb['two_copies']:.1f}", f"{vs_one:.3f}", f"{vs_copies:.3f}",
                         f"{mb['two_roles_ckpt']:.1f}"])
    print(result_line({"size": args.size, "one_role_mb": mb["one_role"], "two_roles_mb": mb["two_roles"],
                       "two_copies_mb": mb["two_copies"], "roles_over_one": vs_one,
                       "roles_over_copies": vs_copies}))


if __name__ == "__main__":
    main()

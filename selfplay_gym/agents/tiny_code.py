"""The embedded model for the code domain: the tiny Qwen3 warm-started on the ``azr`` formats.

The arithmetic model (``agents.tiny``) never saw a Python block, so the ``azr`` mode gets a
model of its own, built by the same parts: scripted experts (``agents.experts_azr``) play AZR
episodes through the env, their valid proposals and right answers are the demonstrations, a
byte-level BPE is trained on them, and supervised steps stop at partial competence, measured
as greedy deduction accuracy on held-out template programs (``code_accuracy``). ``"tiny"``
names this model whenever the mode's ``warm_start`` is "code" (``build.resolve_model``).

>>> path = tiny_model_dir(TinyCodeConfig())  # shipped; any other config is built and cached
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast

from selfplay_gym.agents.experts import mode_experts
from selfplay_gym.agents.experts_azr import MESSAGE, draw_program, evaluate_own, input_for
from selfplay_gym.agents.tiny_config import fingerprint_of
from selfplay_gym.agents.tiny_demos import _Recorder
from selfplay_gym.agents.tiny_tokenizer import build_tokenizer, corpus_texts
from selfplay_gym.agents.tiny_train import generate_texts, make_model, train_warm_start
from selfplay_gym.envs.modes.azr_programs import last_block, same_value
from selfplay_gym.envs.modes.azr_prompts import fenced, solver_messages
from selfplay_gym.envs.sandbox import SandboxWarning
from selfplay_gym.envs.tasks.programs import TASK_TYPES, ProgramBuffer
from selfplay_gym.envs.vector import SelfPlayVectorEnv
from selfplay_gym.types import Messages

CODE_FORMAT_VERSION = 1
HELD_OUT_SEED, HELD_OUT_SIZE = 20_011, 200
"""``deduction_tasks(HELD_OUT_SIZE, HELD_OUT_SEED, families)`` is reported and never trained on."""


@dataclass
class TinyCodeConfig:
    """Everything that determines the code model; its fingerprint is the cache key."""

    seed: int = 0
    vocab_size: int = 4096
    hidden_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 32
    intermediate_size: int = 512
    max_position_embeddings: int = 1024
    families: tuple[str, ...] = ("slice_case",)
    """Program families the expert proposer writes (``experts_azr.SIMPLE_FAMILIES`` or
    ``code.FAMILIES``): a string forwards or backwards, then a case change. With CodeTask's
    ``slice_string`` (a step of 2 and a length modulus as well) 2000 steps reached 1.5%."""
    num_episodes: int = 1536
    """Episodes the experts play through the env: every format of both roles."""
    num_solver_examples: int = 12_000
    """Solver examples beside them, a third per task type, rendered by the mode's own prompt
    functions (``azr_prompts.solver_messages``): the skill. Played episodes give one distinct right answer
    each and cost a few sandbox runs; these cost microseconds."""
    num_solvers: int = 2
    num_inputs: int = 10
    """Induction inputs per proposal: the mode's default (AZR's), so the formats match."""
    solver_accuracy: float = 0.7
    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 20
    max_steps: int = 3000
    eval_every: int = 50
    validation_size: int = 100
    target_accuracy: float = 0.5
    """Stop at this greedy deduction accuracy: partial competence, room to improve."""
    PREFIX: ClassVar[str] = "tiny-code"

    def fingerprint(self) -> str:
        return fingerprint_of(self, CODE_FORMAT_VERSION)


def deduction_tasks(n: int, seed: int, families: Sequence[str]) -> list[tuple[str, str, str]]:
    """(program, input, output) of template programs, from the proposer's own generator."""
    rng, tasks = np.random.default_rng(seed), []
    for _ in range(n):
        program, args = draw_program(rng, families)
        given = ", ".join(repr(a) for a in args)
        tasks.append((program, given, evaluate_own(program, given)))
    return tasks


def deduction_prompts(tasks: Sequence[tuple[str, str, str]]) -> list[Messages]:
    """What an azr deduction solver is shown for each task (the mode's ``solver_messages``)."""
    return [solver_messages("deduction", {"program": program, "input": given})
            for program, given, _ in tasks]


def code_accuracy(model: Any, tokenizer: PreTrainedTokenizerFast,
                  tasks: Sequence[tuple[str, str, str]], prompts: Sequence[Messages]) -> float:
    """Share of deduction tasks whose greedy answer (last ```output block) is the output."""
    was_training = model.training
    model.eval()
    texts = generate_texts(model, tokenizer, prompts, max_new_tokens=32)
    model.train(was_training)
    hits = [same_value(last_block(t, "output"), out) for t, (_, _, out) in zip(texts, tasks, strict=True)]
    return sum(hits) / max(1, len(tasks))


def code_demonstrations(config: TinyCodeConfig, exclude: set[tuple[str, str]],
                        progress: bool = False) -> list[tuple[str, Messages, str]]:
    """(role, prompt, target): every valid proposal and every right answer, each once, from
    expert episodes in batches of 64; none that shows an ``exclude`` (program, input)."""
    experts = mode_experts("azr", problems=[], accuracy=config.solver_accuracy, seed=config.seed,
                           families=config.families, num_inputs=config.num_inputs)
    log: list = []
    recorders = {role: _Recorder(policy, log) for role, policy in experts.items()}
    venv = SelfPlayVectorEnv.make("azr", 64, num_solvers=config.num_solvers,
                                  num_inputs=config.num_inputs, task=ProgramBuffer(),
                                  isolation="none")
    rewards: dict[tuple[str, str], float] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SandboxWarning)  # the experts run our own templates
        for start in tqdm(range(0, config.num_episodes, 64), desc="azr demonstrations",
                          disable=not progress):
            for episode in venv.rollout(recorders, seed=config.seed + start).episodes:
                rewards |= {(episode.episode_id, a): r for a, r in episode.rewards.items()}
    demos, seen = [], set()
    for request, text in log:
        episode_id = request.info["episode_id"]
        reward = rewards.get((episode_id, request.agent), -1.0)
        right = reward > 0.5 if request.role == "solver" else reward > -1.0  # valid proposals
        key = (episode_id, request.role, text)
        if key in seen or not right or _task_of(request, text) in exclude:
            continue
        seen.add(key)
        demos.append((request.role, request.messages, text))
    return demos


def _task_of(request: Any, text: str) -> tuple[str | None, str | None]:
    """(program, input) of a proposal, or of the task a solver was shown."""
    source = text if request.role == "proposer" else request.messages[-1]["content"]
    return last_block(source, "python"), last_block(source, "input")


def solver_examples(n: int, seed: int, config: TinyCodeConfig,
                    exclude: set[tuple[str, str]]) -> list[tuple[Messages, str]]:
    """(prompt, target) for solvers of the three task types in turn: the prompt as the env
    renders it (``SOLVER_SYSTEM`` + ``solver_user``), the right block as the target."""
    rng, examples = np.random.default_rng(seed), []
    for k in range(n):
        task_type = TASK_TYPES[k % len(TASK_TYPES)]
        program, args = draw_program(rng, config.families)
        given = ", ".join(repr(a) for a in args)
        if (program.rstrip(), given) in exclude:
            continue
        fields = {"program": program, "input": given, "output": evaluate_own(program, given)}
        if task_type == "induction":
            inputs = list(dict.fromkeys(input_for("s", rng) for _ in range(3 * config.num_inputs)))
            inputs = inputs[: config.num_inputs]
            half = len(inputs) // 2
            fields |= {"message": MESSAGE, "given_inputs": inputs[:half],
                       "given_outputs": [evaluate_own(program, i) for i in inputs[:half]]}
        target = {"deduction": fenced("output", fields["output"]), "abduction": fenced("input", given),
                  "induction": fenced("python", program.rstrip())}[task_type]
        examples.append((solver_messages(task_type, fields), target))
    return examples


def build_code_model(config: TinyCodeConfig, directory: Path, progress: bool) -> dict[str, Any]:
    """Demonstrations, tokenizer, model, warm start, evaluation, all saved into ``directory``."""
    start = time.perf_counter()
    validation = deduction_tasks(config.validation_size, config.seed + 10_007, config.families)
    held_out = deduction_tasks(HELD_OUT_SIZE, HELD_OUT_SEED, config.families)
    unseen = {(p.rstrip(), i) for p, i, _ in [*validation, *held_out]}
    demos = code_demonstrations(config, unseen, progress)
    extra = solver_examples(config.num_solver_examples, config.seed + 1, config, unseen)
    examples = [(messages, text) for _, messages, text in demos] + extra
    tokenizer = build_tokenizer(corpus_texts(examples), config.vocab_size)
    tokenizer.model_max_length = config.max_position_embeddings
    model = make_model(config, tokenizer).to("cuda" if torch.cuda.is_available() else "cpu")
    prompts = deduction_prompts(validation)
    history = train_warm_start(
        model, tokenizer, examples, validation, config, progress,
        evaluate=lambda m, t: code_accuracy(m, t, validation, prompts))
    roles: dict[str, int] = {}
    for role, _, _ in demos:
        roles[role] = roles.get(role, 0) + 1
    roles["solver (rendered)"] = len(extra)
    info = {"config": dataclasses.asdict(config), "fingerprint": config.fingerprint(),
            "parameters": model.num_parameters(), "examples": roles,
            "held_out_deduction_accuracy": code_accuracy(model, tokenizer, held_out,
                                                         deduction_prompts(held_out)),
            "validation_accuracy": history[-1]["validation_accuracy"],
            "steps": history[-1]["step"], "history": history}
    model.to("cpu").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    info["build_seconds"] = round(time.perf_counter() - start, 2)
    (directory / "build.json").write_text(json.dumps(info, indent=2))
    return info

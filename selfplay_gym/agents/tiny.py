"""The offline default model: a tiny Qwen3 and its tokenizer, built locally and cached on disk.

No hub is reachable where this project is built and tested, so the default model is made here:
a byte-level BPE tokenizer trained on the warm-start corpus, a ~1M-parameter Qwen3 from a
config, and a short supervised warm start on demonstrations that scripted experts play
*through the R-Zero env* (this module hard-codes no prompt or answer format). It stops once the
Solver is partly competent (``target_accuracy``), so that self-play has room to improve.

>>> path = tiny_model_dir()  # built once (about a minute on 2 CPU cores), then cached
>>> model = AutoModelForCausalLM.from_pretrained(path)
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

from selfplay_gym.agents.scripted import (
    QUESTION_TEMPLATE,
    DatasetQuestioner,
    MajorityJudge,
    NoisySolver,
)
from selfplay_gym.envs.env import SelfPlayReasoningEnv
from selfplay_gym.envs.tasks import ArithmeticTask, Problem, solve
from selfplay_gym.envs.vector import SelfPlayVectorEnv
from selfplay_gym.envs.verify import extract_answer
from selfplay_gym.types import Completion, Messages, Policy, Request

FORMAT_VERSION = 1
"""Bump when the build changes in a way the config does not show; it is part of the cache key."""

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
HELD_OUT_SIZE = 200
_SPECIAL = re.compile("|".join(re.escape(t) for t in (PAD, IM_START, IM_END)))


@dataclass
class TinyModelConfig:
    """Everything that determines the built model; its fingerprint is the cache key."""

    seed: int = 0
    """Seeds the data, the initial weights and the batch order: one seed, one model."""
    vocab_size: int = 1024
    """BPE vocabulary; large enough to merge each mode's system prompt into a few tokens."""
    hidden_size: int = 128
    num_layers: int = 4
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 32
    intermediate_size: int = 384
    max_position_embeddings: int = 1024
    """The context: long enough for any R-Zero prompt plus a reasoning trace."""
    levels: tuple[int, ...] = (1,)
    """Arithmetic levels the warm start demonstrates (1: two-digit + and -)."""
    num_episodes: int = 6000
    """R-Zero episodes the scripted experts play; about one solver example each."""
    num_solvers: int = 4
    """Solvers per demonstration episode: how many answers the judge learns to read."""
    solver_accuracy: float = 0.7
    """The noisy experts' accuracy: realistic disagreement for the judge to see."""
    format_share: float = 0.2
    """Chance that an episode's questioner and judge turns are kept (the solver's always are)."""
    batch_size: int = 64
    learning_rate: float = 3e-3
    warmup_steps: int = 20
    weight_decay: float = 0.01
    max_steps: int = 600
    """The step budget; the build time grows only through the number of steps taken."""
    eval_every: int = 25
    """Steps between validation checks (step-based, so the stopping point is deterministic)."""
    validation_size: int = 300
    target_accuracy: float = 0.65
    """Stop once validation greedy accuracy reaches this: partial competence, room to improve."""

    def fingerprint(self) -> str:
        fields = {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


# --- tokenizer ---------------------------------------------------------------------------------
def build_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE that merges whole prompt phrases but never a digit with anything.

    No whitespace split, so a system prompt can become one token; digits are split off first,
    so numbers stay per-digit. The byte alphabet makes any Unicode text encodable.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    pieces = (piece for text in texts for piece in _SPECIAL.split(text) if piece)
    tokenizer.train_from_iterator(pieces, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        eos_token=IM_END,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
    )


def render_prompt(tokenizer: PreTrainedTokenizerFast, messages: Messages) -> str:
    """The chat prompt as text, ending where the assistant's answer starts."""
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
    )


# --- demonstrations, played through the env ------------------------------------------------------
class _Recorder:
    """Plays a policy and keeps what each request showed and what the policy answered."""

    def __init__(self, policy: Policy, log: list[tuple[Request, str]]):
        self.policy, self.log = policy, log

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        completions = self.policy.generate(requests)
        self.log.extend((r, c.text) for r, c in zip(requests, completions, strict=True))
        return completions


def training_problems(
    n: int, seed: int, levels: Sequence[int], exclude: Collection[str] = ()
) -> list[Problem]:
    """``n`` problems that are never in the held-out set (nor in ``exclude``)."""
    task = ArithmeticTask(levels=tuple(levels))
    banned = {p.question for p in task.held_out(HELD_OUT_SIZE)} | set(exclude)
    drawn = task.problems(2 * n + 100, seed=seed)
    problems = [p for p in drawn if p.question not in banned][:n]
    if len(problems) < n:
        raise ValueError(f"only {len(problems)} of {n} problems left after excluding {len(banned)}")
    return problems


def role_demonstrations(
    num_episodes: int,
    seed: int,
    levels: Sequence[int] = (1,),
    *,
    num_solvers: int = 4,
    solver_accuracy: float = 0.7,
    format_share: float = 0.2,
    exclude: Collection[str] = (),
) -> list[tuple[str, Messages, str]]:
    """(role, prompt, target) from R-Zero episodes that scripted experts play through the env.

    Every distinct correct solver answer is kept (wrong ones only shape what the judge sees);
    an episode's questioner and judge turns are kept with chance ``format_share``, enough to
    learn their formats while the solver examples dominate.
    """
    task = ArithmeticTask(levels=tuple(levels))
    log: list[tuple[Request, str]] = []
    problems = training_problems(num_episodes, seed, levels, exclude)
    policies = {
        "questioner": DatasetQuestioner(problems, seed=seed),
        "solver": NoisySolver(solve, accuracy=solver_accuracy, seed=seed),
        "judge": MajorityJudge(),
    }
    recorders = {role: _Recorder(policy, log) for role, policy in policies.items()}
    venvs: dict[int, SelfPlayVectorEnv] = {}  # one per batch size: envs are slow to build
    for start in range(0, num_episodes, 64):
        size = min(64, num_episodes - start)
        if size not in venvs:
            venvs[size] = SelfPlayVectorEnv.make(
                "rzero", num_envs=size, num_solvers=num_solvers, task=task
            )
        venvs[size].rollout(recorders, seed=seed + start)
    rng = np.random.default_rng(seed)
    demonstrations, seen = [], set()
    for request, text in log:
        if request.role == "solver":
            key = (request.info["episode_id"], text)
            if key in seen or extract_answer(text) != solve(request.info["question"]):
                continue
            seen.add(key)
        elif rng.random() >= format_share:
            continue
        demonstrations.append((request.role, request.messages, text))
    return demonstrations


def warm_start_examples(
    num_episodes: int, seed: int, levels: Sequence[int] = (1,), **options: Any
) -> list[tuple[Messages, str]]:
    """(chat prompt, target text) pairs for supervised warm start; see ``role_demonstrations``."""
    demos = role_demonstrations(num_episodes, seed, levels, **options)
    return [(messages, text) for _, messages, text in demos]


def solver_prompts(questions: Iterable[str]) -> list[Messages]:
    """What an R-Zero solver is shown for each question, read from the env itself."""
    env = SelfPlayReasoningEnv("rzero", num_solvers=1)
    prompts = []
    for question in questions:
        env.reset(seed=0)
        env.step(QUESTION_TEMPLATE.format(question=question, answer=solve(question) or "0"))
        prompts.append(env.observe(env.agent_selection)["messages"])
    return prompts


# --- model, batches, evaluation --------------------------------------------------------------------
def _make_model(config: TinyModelConfig, tokenizer: PreTrainedTokenizerFast) -> Qwen3ForCausalLM:
    torch.manual_seed(config.seed)
    model = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        head_dim=config.head_dim,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    ))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def _encode(tokenizer: PreTrainedTokenizerFast, examples: Sequence[tuple[Messages, str]]):
    """(input ids, labels) per example: the loss sees the target and its ``<|im_end|>`` only."""
    encoded = []
    for messages, target in examples:
        prompt = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False).input_ids
        answer = tokenizer(target + IM_END, add_special_tokens=False).input_ids
        encoded.append((prompt + answer, [-100] * len(prompt) + answer))
    return encoded


def _batches(encoded: list, batch_size: int, pad_id: int, seed: int) -> Iterator[dict]:
    """Endless right-padded batches in a seeded order, reshuffled every epoch.

    Examples are sorted by length within windows of 16 batches, so that short solver prompts
    are not padded to a judge prompt's length: about half the compute per step.
    """
    generator = torch.Generator().manual_seed(seed)
    window = 16 * batch_size
    while True:
        order = torch.randperm(len(encoded), generator=generator).tolist()
        batches = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start : start + window], key=lambda i: len(encoded[i][0]))
            batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
        for index in torch.randperm(len(batches), generator=generator).tolist():
            ids, labels = zip(*(encoded[i] for i in batches[index]), strict=True)
            yield {
                "input_ids": _right_pad(ids, pad_id),
                "labels": _right_pad(labels, -100),
                "attention_mask": _right_pad([[1] * len(row) for row in ids], 0),
            }


def _right_pad(rows: Sequence[list[int]], value: int) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows])


@torch.no_grad()
def generate_texts(
    model: Any, tokenizer: PreTrainedTokenizerFast, prompts: Sequence[Messages], *,
    batch_size: int = 64, max_new_tokens: int = 16, **sampling: Any,
) -> list[str]:
    """Completions for chat prompts, batched with left padding; greedy unless told to sample."""
    tokenizer.padding_side = "left"
    texts = []
    for start in range(0, len(prompts), batch_size):
        chunk = [render_prompt(tokenizer, m) for m in prompts[start : start + batch_size]]
        inputs = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        inputs = inputs.to(model.device)
        output = model.generate(**inputs, max_new_tokens=max_new_tokens,
                                do_sample=bool(sampling), **sampling)
        new = output[:, inputs.input_ids.shape[1]:]
        texts.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    return texts


def greedy_solver_accuracy(
    model: Any, tokenizer: PreTrainedTokenizerFast, problems: Sequence[Problem], *,
    batch_size: int = 64,
) -> float:
    """Share of problems whose greedy R-Zero solver answer, ``\\boxed{}``, is exactly right."""
    was_training = model.training
    model.eval()
    prompts = solver_prompts(p.question for p in problems)
    texts = generate_texts(model, tokenizer, prompts, batch_size=batch_size)
    model.train(was_training)
    return sum(extract_answer(t) == p.answer for t, p in zip(texts, problems, strict=True)) / len(problems)


# --- training and the cache -----------------------------------------------------------------
def _learning_rate(step: int, config: TinyModelConfig) -> float:
    """Linear warmup, then cosine decay to a tenth over ``max_steps``."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_warm_start(
    model: Any, tokenizer: PreTrainedTokenizerFast, examples: Sequence[tuple[Messages, str]],
    validation: Sequence[Problem], config: TinyModelConfig, progress: bool = True,
) -> list[dict[str, float]]:
    """Supervised steps until validation accuracy reaches the target; returns the checks."""
    device = model.device
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  weight_decay=config.weight_decay)
    batches = _batches(_encode(tokenizer, examples), config.batch_size,
                       tokenizer.pad_token_id, config.seed)
    history: list[dict[str, float]] = []
    model.train()
    bar = tqdm(range(1, config.max_steps + 1), desc="tiny warm start", disable=not progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step - 1, config)
        batch = {k: v.to(device) for k, v in next(batches).items()}
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % config.eval_every == 0 or step == config.max_steps:
            accuracy = greedy_solver_accuracy(model, tokenizer, validation)
            history.append({"step": step, "loss": loss.item(), "validation_accuracy": accuracy})
            bar.set_postfix(loss=f"{loss.item():.3f}", val=f"{accuracy:.2f}")
            if accuracy >= config.target_accuracy:
                break
    bar.close()
    model.eval()
    return history


def _build(config: TinyModelConfig, directory: Path, progress: bool) -> dict[str, Any]:
    """Data, tokenizer, model, warm start, evaluation; saves everything into ``directory``."""
    started = time.perf_counter()
    held_out = ArithmeticTask(levels=config.levels).held_out(HELD_OUT_SIZE)
    validation = training_problems(config.validation_size, config.seed + 10_007, config.levels)
    demos = role_demonstrations(
        config.num_episodes, config.seed, config.levels, num_solvers=config.num_solvers,
        solver_accuracy=config.solver_accuracy, format_share=config.format_share,
        exclude={p.question for p in validation},
    )
    examples = [(messages, text) for _, messages, text in demos]
    tokenizer = build_tokenizer(_corpus(examples), config.vocab_size)
    model = _make_model(config, tokenizer)
    if torch.cuda.is_available():
        model.to("cuda")
    history = train_warm_start(model, tokenizer, examples, validation, config, progress)
    held_out_accuracy = greedy_solver_accuracy(model, tokenizer, held_out)
    model.to("cpu").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    info = {
        "config": dataclasses.asdict(config),
        "fingerprint": config.fingerprint(),
        "format_version": FORMAT_VERSION,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "build_seconds": round(time.perf_counter() - started, 2),
        "steps": history[-1]["step"],
        "validation_accuracy": history[-1]["validation_accuracy"],
        "held_out_accuracy": held_out_accuracy,
        "history": history,
        "examples": dict(collections.Counter(role for role, _, _ in demos)),
        "prompt_tokens": _prompt_token_stats(tokenizer, demos),
    }
    (directory / "build.json").write_text(json.dumps(info, indent=2))
    return info


def _corpus(examples: Sequence[tuple[Messages, str]]) -> Iterator[str]:
    """The tokenizer's training texts: each prompt as the chat template renders it, the target."""
    template = jinja2.Template(CHAT_TEMPLATE)
    for messages, target in examples:
        yield template.render(messages=messages, add_generation_prompt=True)
        yield target + IM_END


def _prompt_token_stats(tokenizer, demos) -> dict[str, dict[str, float]]:
    """Per role: mean and max tokens of the templated prompt and of the target."""
    lengths: dict[str, list[tuple[int, int]]] = collections.defaultdict(list)
    for role, messages, target in demos:
        prompt = render_prompt(tokenizer, messages)
        lengths[role].append((len(tokenizer(prompt).input_ids), len(tokenizer(target).input_ids)))
    return {
        role: {
            "prompt_mean": round(float(np.mean([p for p, _ in pairs])), 1),
            "prompt_max": max(p for p, _ in pairs),
            "target_mean": round(float(np.mean([t for _, t in pairs])), 1),
        }
        for role, pairs in sorted(lengths.items())
    }


def default_cache_dir() -> Path:
    """``$SELFPLAY_GYM_CACHE``, else ``$XDG_CACHE_HOME/selfplay-gym``, else ``~/.cache/...``."""
    if os.environ.get("SELFPLAY_GYM_CACHE"):
        return Path(os.environ["SELFPLAY_GYM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "selfplay-gym"


def tiny_model_dir(
    config: TinyModelConfig | None = None, *, cache_dir: str | Path | None = None,
    rebuild: bool = False, progress: bool = True,
) -> Path:
    """The directory of the built model and tokenizer (``from_pretrained`` loads it).

    Built on first use into a temporary directory that replaces the cache entry only once
    complete, so an interrupted build never leaves a half-written model behind.
    """
    config = config or TinyModelConfig()
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / f"tiny-{config.fingerprint()}"
    if (target / "build.json").is_file() and not rebuild:
        return target
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-building-", dir=root))
    try:
        _build(config, building, progress)
        if target.exists():
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-stale-", dir=root))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target

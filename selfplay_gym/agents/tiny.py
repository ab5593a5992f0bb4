"""The offline default model: a tiny Qwen3 and its tokenizer, built locally and cached on disk.

No hub is reachable where this project is built and tested, so the default model is made here:
a byte-level BPE tokenizer trained on the warm-start corpus, a ~0.6M-parameter Qwen3 from a
config, and a short supervised warm start on demonstrations that scripted experts play
*through the R-Zero env* (this module hard-codes no prompt or answer format). Training stops
once the Solver is partly competent (``target_accuracy``), so self-play has room to improve.

>>> path = tiny_model_dir()  # built once (one to two minutes on 2 CPU cores), then cached
>>> model = AutoModelForCausalLM.from_pretrained(path)
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
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

from selfplay_gym.agents.experts import mode_experts
from selfplay_gym.agents.scripted import QUESTION_TEMPLATE
from selfplay_gym.envs.curriculum import CurriculumTask, build_curriculum
from selfplay_gym.envs.env import SelfPlayReasoningEnv
from selfplay_gym.envs.tasks import ArithmeticTask, Problem, solve
from selfplay_gym.envs.vector import SelfPlayVectorEnv
from selfplay_gym.envs.verify import extract_answer
from selfplay_gym.types import Completion, Messages, Policy, Request

FORMAT_VERSION = 4
"""Bump when the build changes in a way the config does not show; it is part of the cache key."""

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
HELD_OUT_SIZE = 200
"""``ArithmeticTask(levels).held_out(HELD_OUT_SIZE)`` is reported and never trained on."""
_SPECIAL = re.compile("|".join(re.escape(t) for t in (PAD, IM_START, IM_END)))
Example = tuple[Messages, str]


@dataclass
class TinyModelConfig:
    """Everything that determines the built model; its fingerprint is the cache key."""

    seed: int = 0
    """Seeds the data, the initial weights and the batch order: one seed, one model."""
    vocab_size: int = 4096
    """BPE vocabulary cap; training stops earlier once every prompt phrase is one token
    (about 2,800 tokens for the four modes' prompts: their long fixed texts cost a few tokens)."""
    hidden_size: int = 128
    num_layers: int = 2
    """Two layers learnt faster per step and per second than four."""
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int = 32
    """vLLM's CPU attention takes head sizes of 32 and up (32, 64, 80, ...), so the embedded
    model runs on every engine; four heads of 32 cost what eight of 16 did."""
    intermediate_size: int = 512
    max_position_embeddings: int = 1024
    """The context: room for any R-Zero prompt plus a reasoning trace."""
    levels: tuple[int, ...] = (1,)
    """Arithmetic levels the warm start demonstrates (1: two-digit + and -)."""
    num_episodes: int = 15_000
    """R-Zero episodes the scripted experts play; about one solver example each."""
    modes: tuple[str, ...] = ("rzero", "aero", "darc", "alive")
    """Modes whose formats the model learns from expert episodes (R-Zero's carry the skill)."""
    other_mode_share: float = 0.05
    """Episodes of each mode other than R-Zero and ALIVE, as a share of ``num_episodes``."""
    alive_share: float = 0.5
    """ALIVE's episodes, as a share of ``num_episodes``: its solver must find two numbers in
    a story before it can add them, a skill its format alone does not teach."""
    num_solvers: int = 4
    """Solvers per demonstration episode: how many answers the judge learns to read."""
    solver_accuracy: float = 0.7
    """The noisy experts' accuracy: realistic disagreement for the judge to see."""
    format_share: float = 0.1
    """Chance that an episode's questioner and judge turns are kept (the solver's always are)."""
    batch_size: int = 32
    learning_rate: float = 1e-3
    """Constant after warmup: higher rates delayed the jump in accuracy in our sweeps."""
    warmup_steps: int = 20
    max_steps: int = 3000
    """The step budget; the build time depends on the config only through the steps taken."""
    eval_every: int = 25
    """Steps between validation checks (step-based, so the stopping point is deterministic)."""
    validation_size: int = 300
    target_accuracy: float = 0.6
    """Stop once validation greedy accuracy reaches this: partial competence, room to improve."""

    def fingerprint(self) -> str:
        fields = {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


# --- tokenizer ---------------------------------------------------------------------------------
def build_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE that merges whole prompt phrases but never a digit with anything.

    No whitespace split, so a system prompt can become one token; digits are split off first,
    so numbers stay per-digit. The byte alphabet keeps any Unicode text encodable.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    pieces = (piece for text in texts for piece in _SPECIAL.split(text) if piece)
    tokenizer.train_from_iterator(pieces, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, eos_token=IM_END, padding_side="left",
        chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False,
    )


def _corpus(examples: Sequence[Example]) -> Iterator[str]:
    """The tokenizer's training texts: each prompt as the chat template renders it, the target."""
    template = jinja2.Template(CHAT_TEMPLATE)
    for messages, target in examples:
        yield template.render(messages=messages, add_generation_prompt=True)
        yield target + IM_END


def render_prompt(tokenizer: PreTrainedTokenizerFast, messages: Messages) -> str:
    """The chat prompt as text, ending where the assistant's answer starts."""
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
    )


# --- demonstrations, played through the env ------------------------------------------------------
class _Recorder:
    """Plays a policy and keeps each request with the text the policy answered."""

    def __init__(self, policy: Policy, log: list[tuple[Request, str]]):
        self.policy, self.log = policy, log

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        completions = self.policy.generate(requests)
        self.log.extend((r, c.text) for r, c in zip(requests, completions, strict=True))
        return completions


def training_problems(
    n: int, seed: int, levels: Sequence[int], exclude: Collection[str] = ()
) -> list[Problem]:
    """``n`` problems, none in the held-out set nor in ``exclude``."""
    task = ArithmeticTask(levels=tuple(levels))
    banned = {p.question for p in task.held_out(HELD_OUT_SIZE)} | set(exclude)
    problems = [p for p in task.problems(2 * n + 100, seed=seed) if p.question not in banned]
    if len(problems) < n:
        raise ValueError(f"only {len(problems)} of {n} problems left after excluding {len(banned)}")
    return problems[:n]


SOLVING_ROLES = frozenset({"solver", "student", "teacher", "refiner", "reviser"})


def role_demonstrations(
    config: TinyModelConfig, exclude: Collection[str] = (), progress: bool = False
) -> list[tuple[str, Messages, str]]:
    """(role, prompt, target) from episodes that scripted experts (``agents.experts``) play
    through each mode's env.

    Solving turns are kept when right, once per distinct text (wrong ones only shape what the
    checking roles see): right means the exact value of an arithmetic question, else a reward
    above 0.5 (the experts' checkers are always right, so there the reward is the truth). Other
    turns are kept with chance ``format_share`` in R-Zero, always in the other modes: enough to
    learn their formats while R-Zero's solver examples, which carry the competence, dominate.
    """
    log: list[tuple[str, Request, str]] = []
    rewards: dict[tuple[str, str], float] = {}
    for mode in config.modes:
        mode_log: list[tuple[Request, str]] = []
        share = {"rzero": 1.0, "alive": config.alive_share}.get(mode, config.other_mode_share)
        n = round(config.num_episodes * share)
        problems = training_problems(n, config.seed + len(rewards), config.levels, exclude)
        stages = (1, 2) if mode == "darc" else (1,)
        options: dict[str, Any] = {}
        for stage in stages:
            experts = mode_experts(mode, problems=problems, accuracy=config.solver_accuracy,
                                   seed=config.seed, stage=stage)
            recorders = {role: _Recorder(policy, mode_log) for role, policy in experts.items()}
            episodes = _play(mode, n, config, recorders, options, progress)
            rewards |= {(e.episode_id, a): r for e in episodes for a, r in e.rewards.items()}
            if mode == "darc" and stage == 1:
                options = {"stage": 2, "curriculum": CurriculumTask(build_curriculum(episodes))}
        log += [(mode, request, text) for request, text in mode_log]
    rng, seen, demos = np.random.default_rng(config.seed), set(), []
    for mode, request, text in log:
        mode_share = config.format_share if mode == "rzero" else 1.0
        if request.role in SOLVING_ROLES:
            key = (request.info["episode_id"], request.role, text)
            truth = solve(request.info.get("question"))
            right = (extract_answer(text) == truth if truth is not None
                     else rewards.get((request.info["episode_id"], request.agent), 0.0) > 0.5)
            if key in seen or not (right or request.role == "teacher"):
                continue
            seen.add(key)
        elif rng.random() >= mode_share:
            continue
        demos.append((request.role, request.messages, text))
    return demos


def _play(mode, n, config, recorders, options, progress) -> list:
    """``n`` episodes of ``mode`` in batches of 64, envs reused (building one costs more than an
    episode); the episodes, finished."""
    venvs: dict[int, SelfPlayVectorEnv] = {}
    episodes = []
    size_options = {"num_solvers": config.num_solvers} | (
        {"num_samples": config.num_solvers} if mode == "darc" else {})
    task = ArithmeticTask(config.levels) if mode in ("rzero", "aero") else None
    for start in tqdm(range(0, n, 64), desc=f"{mode} demonstrations", disable=not progress):
        size = min(64, n - start)
        if size not in venvs:
            extra = {"task": task} if task is not None else {}
            venvs[size] = SelfPlayVectorEnv.make(mode, size, **size_options, **options, **extra)
        episodes += venvs[size].rollout(recorders, seed=config.seed + start).episodes
    return episodes


def warm_start_examples(
    num_episodes: int, seed: int, levels: Sequence[int] = (1,)
) -> list[Example]:
    """(chat prompt, target text) pairs for the supervised warm start, made by the env."""
    config = TinyModelConfig(seed=seed, levels=tuple(levels), num_episodes=num_episodes)
    return [(messages, text) for _, messages, text in role_demonstrations(config)]


def solver_prompts(questions: Iterable[str]) -> list[Messages]:
    """What an R-Zero solver is shown for each question, read from the env itself."""
    env, prompts = SelfPlayReasoningEnv("rzero", num_solvers=1), []
    for question in questions:
        env.reset(seed=0)
        env.step(QUESTION_TEMPLATE.format(question=question, answer=solve(question) or "0"))
        prompts.append(env.observe(env.agent_selection)["messages"])
    return prompts


# --- model, batches, evaluation ----------------------------------------------------------------
def _make_model(config: TinyModelConfig, tokenizer: PreTrainedTokenizerFast) -> Qwen3ForCausalLM:
    torch.manual_seed(config.seed)
    model = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size, num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads, num_key_value_heads=config.num_kv_heads,
        head_dim=config.head_dim, max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    ))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def _encode(tokenizer: PreTrainedTokenizerFast, examples: Sequence[Example]) -> list:
    """(input ids, labels) per example: the loss sees the target and its ``<|im_end|>`` only."""
    encoded = []
    for messages, target in examples:
        prompt = tokenizer(render_prompt(tokenizer, messages), add_special_tokens=False).input_ids
        answer = tokenizer(target + IM_END, add_special_tokens=False).input_ids
        encoded.append((prompt + answer, [-100] * len(prompt) + answer))
    return encoded


def _batches(encoded: list, batch_size: int, pad_id: int, seed: int) -> Iterator[list[dict]]:
    """Endless seeded batches, each split into one or two right-padded micro-batches.

    Roles are mixed at random in every batch: role-pure batches (length bucketing) made the
    accuracy swing and come about twice as late. Cutting a batch where padding costs least
    keeps short solver prompts from being padded to a judge prompt's length.
    """
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(len(encoded), generator=generator).tolist()
        for start in range(0, len(order) - batch_size + 1, batch_size):
            rows = sorted((encoded[i] for i in order[start : start + batch_size]),
                          key=lambda row: len(row[0]))
            yield [_pad(part, pad_id) for part in _cut(rows) if part]


def _cut(rows: list) -> tuple[list, list]:
    """Length-sorted rows in two runs, cut where padding costs least, if that saves a fifth."""
    n, lengths = len(rows), [len(ids) for ids, _ in rows]
    costs = [k * lengths[k - 1] + (n - k) * lengths[-1] for k in range(1, n)]
    best = int(np.argmin(costs)) if costs else 0
    cut = best + 1 if costs and costs[best] < 0.8 * n * lengths[-1] else n
    return rows[:cut], rows[cut:]


def _pad(rows: list, pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in rows)
    return {  # each [B, T]
        "input_ids": torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in rows]),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows]),
        "attention_mask": torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in rows]),
    }


@torch.no_grad()
def generate_texts(
    model: Any, tokenizer: PreTrainedTokenizerFast, prompts: Sequence[Messages], *,
    batch_size: int = 64, max_new_tokens: int = 16, **sampling: Any,
) -> list[str]:
    """Completions for chat prompts, batched with left padding; greedy unless given sampling
    arguments (``temperature=1.0``, ``top_p``, ...)."""
    texts = []
    for start in range(0, len(prompts), batch_size):
        chunk = [render_prompt(tokenizer, m) for m in prompts[start : start + batch_size]]
        inputs = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="left",
                           add_special_tokens=False).to(model.device)
        output = model.generate(**inputs, max_new_tokens=max_new_tokens,
                                do_sample=bool(sampling), **sampling)
        texts += tokenizer.batch_decode(output[:, inputs.input_ids.shape[1]:],
                                        skip_special_tokens=True)
    return texts


def greedy_solver_accuracy(
    model: Any, tokenizer: PreTrainedTokenizerFast, problems: Sequence[Problem], *,
    batch_size: int = 64,
) -> float:
    """Share of problems whose greedy R-Zero solver answer (its last ``\\boxed{}``) is exact."""
    was_training = model.training
    model.eval()
    prompts = solver_prompts(p.question for p in problems)
    texts = generate_texts(model, tokenizer, prompts, batch_size=batch_size, max_new_tokens=48)
    model.train(was_training)
    hits = [extract_answer(t) == p.answer for t, p in zip(texts, problems, strict=True)]
    return sum(hits) / len(problems)


# --- training, building, caching ---------------------------------------------------------------
def train_warm_start(
    model: Any, tokenizer: PreTrainedTokenizerFast, examples: Sequence[Example],
    validation: Sequence[Problem], config: TinyModelConfig, progress: bool = True,
) -> list[dict[str, float]]:
    """Supervised steps until validation accuracy reaches the target; returns the checks."""
    device, history = model.device, []
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                  betas=(0.9, 0.98), weight_decay=0.0)
    batches = _batches(_encode(tokenizer, examples), config.batch_size,
                       tokenizer.pad_token_id, config.seed)
    model.train()
    bar = tqdm(range(1, config.max_steps + 1), desc="warm start", disable=not progress)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * min(1.0, step / config.warmup_steps)
        parts = [{k: v.to(device) for k, v in part.items()} for part in next(batches)]
        targets = sum(int((part["labels"][:, 1:] != -100).sum()) for part in parts)
        optimizer.zero_grad(set_to_none=True)
        loss = 0.0
        for part in parts:  # a token mean over the whole batch: each part's sum / all targets
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                part_loss = model(**part, num_items_in_batch=targets).loss
            part_loss.backward()
            loss += part_loss.item()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % config.eval_every == 0 or step == config.max_steps:
            accuracy = greedy_solver_accuracy(model, tokenizer, validation)
            history.append({"step": step, "loss": round(loss, 4), "validation_accuracy": accuracy})
            bar.set_postfix(loss=f"{loss:.3f}", val=f"{accuracy:.2f}")
            if accuracy >= config.target_accuracy:
                break
    bar.close()
    model.eval()
    return history


def _build(config: TinyModelConfig, directory: Path, progress: bool) -> dict[str, Any]:
    """Demonstrations, tokenizer, model, warm start, evaluation, all saved into ``directory``."""
    clock = {"start": time.perf_counter()}
    validation = training_problems(config.validation_size, config.seed + 10_007, config.levels)
    demos = role_demonstrations(config, {p.question for p in validation}, progress)
    examples = [(messages, text) for _, messages, text in demos]
    tokenizer = build_tokenizer(_corpus(examples), config.vocab_size)
    tokenizer.model_max_length = config.max_position_embeddings
    model = _make_model(config, tokenizer).to("cuda" if torch.cuda.is_available() else "cpu")
    clock["data"] = time.perf_counter()
    history = train_warm_start(model, tokenizer, examples, validation, config, progress)
    clock["train"] = time.perf_counter()
    held_out = ArithmeticTask(levels=config.levels).held_out(HELD_OUT_SIZE)
    info = {
        "config": dataclasses.asdict(config),
        "fingerprint": config.fingerprint(),
        "parameters": model.num_parameters(),
        "device": model.device.type,
        "held_out_accuracy": greedy_solver_accuracy(model, tokenizer, held_out),
        "validation_accuracy": history[-1]["validation_accuracy"],
        "steps": history[-1]["step"],
        "history": history,
        "examples": dict(collections.Counter(role for role, _, _ in demos)),
        "prompt_tokens": _token_counts(tokenizer, demos),
    }
    model.to("cpu").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    info["seconds"] = {
        "demonstrations": round(clock["data"] - clock["start"], 2),
        "training": round(clock["train"] - clock["data"], 2),
    }
    info["build_seconds"] = round(time.perf_counter() - clock["start"], 2)
    (directory / "build.json").write_text(json.dumps(info, indent=2))
    return info


def _token_counts(tokenizer: PreTrainedTokenizerFast, demos: list) -> dict[str, dict[str, float]]:
    """Per role, the templated prompt's length in tokens: what each turn costs to read."""
    counts = collections.defaultdict(list)
    for role, messages, _ in demos:
        counts[role].append(len(tokenizer(render_prompt(tokenizer, messages)).input_ids))
    return {r: {"mean": round(float(np.mean(c)), 1), "max": max(c)} for r, c in counts.items()}


SHIPPED = Path(__file__).resolve().parent.parent / "assets"
"""Where the package keeps prebuilt models: ``assets/tiny-<fingerprint>/`` (``ship_tiny_model``)."""


def ship_tiny_model(config: TinyModelConfig | None = None) -> Path:
    """Build (or take from the cache) the model of ``config`` and copy it into ``SHIPPED``,
    replacing older shipped builds: ``python -m selfplay_gym.agents.tiny``."""
    source = tiny_model_dir(config, cache_dir=default_cache_dir())
    for old in SHIPPED.glob("tiny-*"):
        shutil.rmtree(old)
    SHIPPED.mkdir(exist_ok=True)
    return Path(shutil.copytree(source, SHIPPED / source.name))


def default_cache_dir() -> Path:
    """``$SELFPLAY_GYM_CACHE``, else ``$XDG_CACHE_HOME/selfplay-gym``, else ``~/.cache/...``."""
    if os.environ.get("SELFPLAY_GYM_CACHE"):
        return Path(os.environ["SELFPLAY_GYM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "selfplay-gym"


def tiny_model_dir(
    config: TinyModelConfig | None = None, *, cache_dir: str | Path | None = None,
    rebuild: bool = False, progress: bool = True,
) -> Path:
    """The directory of the built model and tokenizer, for ``from_pretrained``; built if absent.

    The package ships the default build (``SHIPPED``, 3 MB), so a fresh install needs no
    build; any other config is built once and cached. The build happens in a temporary
    directory that takes the cache entry's name only once complete, so an interrupted build
    never leaves a half-written model behind.
    """
    config = config or TinyModelConfig()
    name = f"tiny-{config.fingerprint()}"
    if cache_dir is None and not rebuild and (SHIPPED / name / "build.json").is_file():
        return SHIPPED / name
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / name
    if (target / "build.json").is_file() and not rebuild:
        return target
    root.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-building-", dir=root))
    building.chmod(0o755)  # mkdtemp's 0o700 would hide a shared cache from its other users
    try:
        _build(config, building, progress)
        if target.exists():  # a rebuild, or a concurrent build that finished first
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-stale-", dir=root))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(building, target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


if __name__ == "__main__":
    print(ship_tiny_model())

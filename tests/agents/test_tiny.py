"""The offline default model: its tokenizer, its env-made demonstrations, its cache, one build."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from selfplay_gym import SelfPlayReasoningEnv
from selfplay_gym.agents import tiny
from selfplay_gym.agents.tiny import (
    TinyModelConfig,
    build_tokenizer,
    generate_texts,
    greedy_solver_accuracy,
    tiny_model_dir,
    warm_start_examples,
)
from selfplay_gym.envs.modes import rzero
from selfplay_gym.envs.tasks import ArithmeticTask, solve
from selfplay_gym.envs.verify import extract_answer

SMALL = TinyModelConfig(
    hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=16,
    intermediate_size=64, num_episodes=64, batch_size=8, max_steps=4, eval_every=2,
    validation_size=16,
)
"""A config that builds in seconds: for the cache's behaviour, not for competence."""


def _env() -> SelfPlayReasoningEnv:
    env = SelfPlayReasoningEnv("rzero", num_solvers=1, task=ArithmeticTask(levels=(1,)))
    env.reset(seed=0)
    return env


def _solver_view(question: str):
    env = _env()
    env.step(f"<question>{question}</question>\n\\boxed{{{solve(question)}}}")
    return env.observe("solver_0")["messages"]


def _role(messages) -> str:
    """The R-Zero role a prompt belongs to ("other" for the other modes' prompts)."""
    if messages == _env().observe("questioner_0")["messages"]:
        return "questioner"
    system = messages[0]["content"]
    if system == rzero.SOLVER_SYSTEM and solve(messages[-1]["content"]) is not None:
        return "solver"
    return "judge" if system == rzero.JUDGE_SYSTEM else "other"


@pytest.fixture(scope="module")
def examples():
    return warm_start_examples(128, seed=0)


@pytest.fixture(scope="module")
def tokenizer(examples):
    texts = [m["content"] for messages, _ in examples for m in messages]
    return build_tokenizer(texts + [target for _, target in examples], vocab_size=512)


# --- tokenizer ---------------------------------------------------------------------------------
def test_digits_are_single_tokens(tokenizer):
    assert tokenizer.tokenize("37+48") == ["3", "7", "+", "4", "8"]
    assert len(tokenizer("\\boxed{12345}", add_special_tokens=False).input_ids) >= 7
    special = set(tokenizer.all_special_tokens)
    merged = [t for t in tokenizer.get_vocab() if t not in special and len(t) > 1]
    assert merged, "BPE learned no merges"
    assert not [t for t in merged if any(c.isdigit() for c in t)]


@pytest.mark.parametrize(
    "text", ["√π 中文 \\boxed{x}", "🙂 tab\tnew\nline  ", "", "  <question>1-2</question>"]
)
def test_any_text_round_trips(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False).input_ids
    assert tokenizer.decode(ids) == text


def test_prompt_phrases_merge(tokenizer, examples):
    solver = next(m for m, _ in examples if _role(m) == "solver")
    system = tokenizer(solver[0]["content"], add_special_tokens=False).input_ids
    assert len(system) <= 3


def test_chat_template(tokenizer):
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    )
    plain = tokenizer.apply_chat_template(messages, tokenize=False)
    assert plain == text.removesuffix("<|im_start|>assistant\n")


def test_special_tokens(tokenizer):
    assert tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.eos_token == "<|im_end|>"
    start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    ids = {tokenizer.pad_token_id, tokenizer.eos_token_id, start}
    assert len(ids) == 3 and None not in ids
    assert tokenizer("<|im_start|>", add_special_tokens=False).input_ids == [start]


# --- demonstrations ----------------------------------------------------------------------------
def test_solver_examples_are_what_the_env_shows_and_right(examples):
    solver = [(m, t) for m, t in examples if _role(m) == "solver"]
    # R-Zero's solver turns carry the skill; ALIVE's reading tasks are the next largest part
    assert len(solver) > 0.25 * len(examples)
    for messages, _ in solver[:10]:
        assert messages == _solver_view(messages[-1]["content"])
    for messages, target in solver:
        assert extract_answer(target) == solve(messages[-1]["content"])


def test_questioner_and_judge_formats_are_in_the_mix(examples):
    env = _env()
    questioner = [t for m, t in examples if _role(m) == "questioner"]
    judge = [t for m, t in examples if _role(m) == "judge"]
    assert questioner and judge
    assert all(env.mode.parse("questioner", t).valid for t in questioner)
    assert all(env.mode.parse("judge", t).valid for t in judge)


def test_every_modes_roles_are_demonstrated():
    roles = {role for role, _, _ in tiny.role_demonstrations(TinyModelConfig(num_episodes=200))}
    assert roles == {"questioner", "solver", "judge", "generator", "refiner", "student",
                     "teacher", "constructor", "reviewer"}


def test_examples_are_seeded(examples):
    assert warm_start_examples(128, seed=0) == examples
    assert warm_start_examples(128, seed=1) != examples


def test_training_never_sees_held_out_questions():
    held_out = {p.question for p in ArithmeticTask(levels=(1,)).held_out(200)}
    validation = [p.question for p in tiny.training_problems(50, seed=7, levels=(1,))]
    problems = tiny.training_problems(5000, seed=0, levels=(1,), exclude=validation)
    assert len(problems) == 5000
    assert not {p.question for p in problems} & (held_out | set(validation))


# --- the cache ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_dir(tmp_path_factory):
    return tiny_model_dir(SMALL, cache_dir=tmp_path_factory.mktemp("tiny-cache"), progress=False)


def test_fingerprint_is_the_config():
    assert SMALL.fingerprint() == dataclasses.replace(SMALL).fingerprint()
    for change in ({"seed": 1}, {"levels": (1, 2)}, {"learning_rate": 2e-3}):
        assert dataclasses.replace(SMALL, **change).fingerprint() != SMALL.fingerprint()


def test_small_build_saves_a_loadable_model(small_dir):
    assert small_dir.name == f"tiny-{SMALL.fingerprint()}"
    assert [p.name for p in small_dir.parent.iterdir()] == [small_dir.name]
    info = json.loads((small_dir / "build.json").read_text())
    assert info["config"] == json.loads(json.dumps(dataclasses.asdict(SMALL)))
    assert info["steps"] <= SMALL.max_steps
    assert {"questioner", "solver", "judge", "generator", "constructor"} <= set(info["prompt_tokens"])
    tokenizer = AutoTokenizer.from_pretrained(small_dir)
    model = AutoModelForCausalLM.from_pretrained(small_dir)
    assert sum(p.numel() for p in model.parameters()) == info["parameters"]
    problems = ArithmeticTask(levels=(1,)).problems(8, seed=3)
    assert 0.0 <= greedy_solver_accuracy(model, tokenizer, problems, batch_size=3) <= 1.0


def test_cached_dir_is_returned_without_building(small_dir, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("rebuilt a cached model")

    monkeypatch.setattr(tiny, "_build", no_build)
    assert tiny_model_dir(SMALL, cache_dir=small_dir.parent) == small_dir


def test_rebuild_replaces_the_dir_with_identical_weights(small_dir):
    weights = (small_dir / "model.safetensors").read_bytes()
    stamp = (small_dir / "build.json").stat().st_mtime_ns
    again = tiny_model_dir(SMALL, cache_dir=small_dir.parent, rebuild=True, progress=False)
    assert again == small_dir
    assert (again / "build.json").stat().st_mtime_ns != stamp
    assert (again / "model.safetensors").read_bytes() == weights
    assert [p.name for p in small_dir.parent.iterdir()] == [small_dir.name]


def test_interrupted_build_leaves_no_cache(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny, "train_warm_start", interrupted)
    with pytest.raises(KeyboardInterrupt):
        tiny_model_dir(SMALL, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SELFPLAY_GYM_CACHE", str(tmp_path / "explicit"))
    assert tiny.default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("SELFPLAY_GYM_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert tiny.default_cache_dir() == tmp_path / "xdg" / "selfplay-gym"


# --- the default build, once per session into the user cache (one to two minutes on 2 cores) ------
@pytest.mark.slow
def test_default_build(tiny_dir):
    path, cache = tiny_dir, tiny_dir.parent
    info = json.loads((path / "build.json").read_text())
    assert 0.55 <= info["held_out_accuracy"] <= 0.75
    assert info["validation_accuracy"] >= TinyModelConfig().target_accuracy

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    held_out = ArithmeticTask(levels=(1,)).held_out(200)
    assert greedy_solver_accuracy(model, tokenizer, held_out) == info["held_out_accuracy"]

    env = _env()
    torch.manual_seed(0)
    questions = generate_texts(
        model, tokenizer, [env.observe("questioner_0")["messages"]] * 32,
        max_new_tokens=32, temperature=1.0,
    )
    assert sum(env.mode.parse("questioner", q).valid for q in questions) >= 0.9 * 32

    stamp = (path / "build.json").stat().st_mtime_ns
    started = time.perf_counter()
    assert tiny_model_dir(cache_dir=cache, progress=False) == path
    assert time.perf_counter() - started < 1.0
    assert (path / "build.json").stat().st_mtime_ns == stamp


def test_the_package_ships_the_default_build():
    """Change TinyModelConfig, then ship the new build: ``python -m selfplay_gym.agents.tiny``."""
    from selfplay_gym.agents.tiny import SHIPPED

    shipped = SHIPPED / f"tiny-{TinyModelConfig().fingerprint()}"
    info = json.loads((shipped / "build.json").read_text())
    assert info["config"] == json.loads(json.dumps(dataclasses.asdict(TinyModelConfig())))
    assert tiny_model_dir(progress=False) == shipped

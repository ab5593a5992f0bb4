"""Session fixtures: a real tiny transformer saved to disk, built in seconds (no hub needed)."""

from __future__ import annotations

import os
import shutil

import pytest
import torch
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

from selfplay_gym.agents.tiny import build_tokenizer, tiny_model_dir
from selfplay_gym.envs.sandbox import isolation_problem

CORPUS = [
    "Reason step by step. 37+48 \\boxed{85} Generate one new question now. <question>12-7</question>",
    "hello world: the answer is \\boxed{42}. 0123456789 + - * ( )",
]


@pytest.fixture(scope="module")
def isolated():
    """The sandbox's namespaces must work here; on CI a machine without them fails the tests
    that use it instead of skipping them (the reason is shown either way)."""
    problem = isolation_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)


def save_random_model(path):
    """A randomly initialised 2-layer Qwen3 and a locally trained tokenizer, saved like a hub model."""
    tokenizer = build_tokenizer(CORPUS * 20, vocab_size=400)
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    Qwen3ForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    return save_random_model(tmp_path_factory.mktemp("random-qwen3"))


@pytest.fixture(scope="session")
def tiny_dir():
    """The embedded, warm-started tiny model, built once into the user cache (about 90 s)."""
    return tiny_model_dir(progress=False)


GEMMA_TEMPLATE = (  # Gemma-2's chat template: no system role, strictly alternating turns
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if message['role'] == 'assistant' %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)


def save_with_chat_template(path, template):
    """The embedded tiny model saved to ``path`` with another chat template (None: none at all)."""
    source = tiny_model_dir(progress=False)
    path.mkdir(parents=True)
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(source / name, path / name)
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def gemma_style_dir(tmp_path_factory):
    """The tiny model with Gemma's template, which raises on a system message."""
    return save_with_chat_template(tmp_path_factory.mktemp("gemma-style") / "model", GEMMA_TEMPLATE)


@pytest.fixture(scope="session")
def untemplated_dir(tmp_path_factory):
    """The tiny model with a tokenizer that has no chat template."""
    return save_with_chat_template(tmp_path_factory.mktemp("untemplated") / "model", None)

"""Prompt rendering on real tokenizers: a Gemma-style template that refuses a system role, a
tokenizer with no template, and a template given by the user (``--model.chat-template``)."""

from __future__ import annotations

import warnings

import pytest
import tyro

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.agents.tiny_tokenizer import CHAT_TEMPLATE
from selfplay_gym.config import RunConfig
from selfplay_gym.envs.env import SelfPlayReasoningEnv

SOLVER_PROMPT = (
    {"role": "system", "content": "Reason step by step."},
    {"role": "user", "content": "37+48"},
)
GREEDY = SamplingConfig(temperature=0, max_new_tokens=4)


def template_ids(backend: HFBackend, chat: list[dict]) -> list[int]:
    text = backend.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return backend.tokenizer(text, add_special_tokens=False)["input_ids"]


def warned(record, text: str) -> list[str]:
    return [str(w.message) for w in record if text in str(w.message)]


def test_a_template_that_refuses_a_system_role_gets_it_folded_into_the_first_user_turn(
    gemma_style_dir,
):
    backend = HFBackend(gemma_style_dir)
    env = SelfPlayReasoningEnv("rzero", num_solvers=1)
    env.reset(seed=0)
    mode_prompt = env.observe(env.agent_selection)["messages"]
    assert mode_prompt[0]["role"] == "system"  # a real mode's prompt: system, then user
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        [completion] = backend.generate([SOLVER_PROMPT], [None], GREEDY)
        backend.generate([mode_prompt, SOLVER_PROMPT], [None, None], GREEDY)
    assert warned(record, "refuses a system role") == [
        f"the chat template of {gemma_style_dir} refuses a system role (System role not "
        "supported), so the system prompt is folded into the first user turn"
    ]  # once, for three prompts in two calls
    folded = [{"role": "user", "content": "Reason step by step.\n\n37+48"}]
    assert completion.prompt_ids == template_ids(backend, folded)


def test_a_prompt_the_template_refuses_even_folded_names_the_option(gemma_style_dir):
    backend = HFBackend(gemma_style_dir)
    two_users = ({"role": "user", "content": "1+1"}, {"role": "user", "content": "2+2"})
    for prompt in (two_users, (SOLVER_PROMPT[0], *two_users)):
        with pytest.raises(ValueError, match=r"roles must alternate.*--model\.chat-template"):
            backend.encode_prompt(prompt, 4)


def test_a_tokenizer_without_a_template_warns_once_and_names_the_option(untemplated_dir):
    backend = HFBackend(untemplated_dir)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        [completion] = backend.generate([SOLVER_PROMPT], [None], GREEDY)
        backend.generate([SOLVER_PROMPT[1:]], [None], GREEDY)
    assert warned(record, "no chat template") == [
        f"{untemplated_dir} has no chat template, so prompts are plain 'role: content' lines; set "
        "one with --model.chat-template (a jinja string or a file; selfplay-gym serve "
        "--chat-template, HFBackend(chat_template=...))"
    ]
    plain = "system: Reason step by step.\nuser: 37+48\nassistant: "
    assert completion.prompt_ids == backend.tokenizer(plain, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("given", ["file", "inline"])
def test_a_chat_template_given_as_a_file_or_inline_replaces_the_missing_one(
    untemplated_dir, tmp_path, given
):
    path = tmp_path / "chat.jinja"
    path.write_text(CHAT_TEMPLATE)
    backend = HFBackend(untemplated_dir, chat_template=str(path) if given == "file" else CHAT_TEMPLATE)
    assert backend.tokenizer.chat_template == CHAT_TEMPLATE
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        [completion] = backend.generate([SOLVER_PROMPT], [None], GREEDY)
    assert not warned(record, "chat template")
    assert completion.prompt_ids == template_ids(backend, [dict(m) for m in SOLVER_PROMPT])


def test_a_chat_template_path_that_does_not_exist_is_named(untemplated_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a jinja template.*nor a file"):
        HFBackend(untemplated_dir, chat_template=str(tmp_path / "missing.jinja"))


def test_the_cli_takes_a_chat_template():
    cfg = tyro.cli(RunConfig, args=["--model.chat-template", "chat.jinja"])
    assert cfg.model.chat_template == "chat.jinja"
    assert RunConfig().model.chat_template is None

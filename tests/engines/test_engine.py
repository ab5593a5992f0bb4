"""The vLLM engine in this process (agents/vllm.py), for real: one engine on the embedded tiny
model, shared by the module. Log-probs against the transformers learner, adapter updates, stops,
and an engine that cannot start."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import randomise_adapter

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.agents.tiny import solver_prompts
from selfplay_gym.agents.vllm import EngineStartError, VLLMBackend

PROMPTS = solver_prompts(["37+48", "91-45", "12+79", "60-18"])
AGREEMENT = 1e-4
"""fp32 on CPU, |log p_vllm - log p_transformers| per sampled token. Measured on this model over
about 1,400 tokens per setting (adapter B scaled 0, 0.05, 0.3; with and without the adapter; T
1 and 0.7): mean 2e-7 to 1.2e-6, max 6e-6 to 2.6e-5."""


@pytest.fixture(scope="module")
def learner(tiny_dir):
    backend = HFBackend(tiny_dir, adapters=["solver"], device="cpu", seed=0)
    randomise_adapter(backend, "solver", seed=0, scale=0.05)
    return backend


@pytest.fixture(scope="module")
def engine(tiny_dir):
    backend = VLLMBackend.launch(tiny_dir, dtype="float32", max_lora_rank=8, max_loras=2)
    yield backend
    backend.close()


def max_gap(learner, completions, adapters, temperature) -> float:
    gaps = []
    for completion, adapter in zip(completions, adapters, strict=True):
        again = learner.logprobs(adapter, [completion.prompt_ids], [completion.completion_ids],
                                 temperature=temperature)[0]
        gaps.append(float((again - torch.tensor(completion.logprobs)).abs().max()))
    return max(gaps)


def test_sampled_logprobs_agree_with_the_learner_with_and_without_the_adapter(engine, learner, tmp_path):
    engine.sync_from(learner, ["solver"], tmp_path)
    adapters = ["solver", None] * 8
    prompts = [PROMPTS[i % 4] for i in range(16)]
    for temperature in (1.0, 0.7):
        completions = engine.generate(prompts, adapters, SamplingConfig(temperature, max_new_tokens=24))
        assert all(len(c.completion_ids) == len(c.logprobs) > 0 for c in completions)
        assert completions[0].prompt_ids == learner.encode_prompt(prompts[0], 24).ids
        assert max_gap(learner, completions, adapters, temperature) < AGREEMENT


def test_after_an_update_the_engine_samples_from_the_new_adapter_not_a_cached_one(engine, learner, tmp_path):
    greedy = SamplingConfig(0.0, max_new_tokens=16)
    engine.sync_from(learner, ["solver"], tmp_path)
    before = engine.generate(PROMPTS, ["solver"] * 4, greedy)
    randomise_adapter(learner, "solver", seed=1, scale=0.3)  # the update
    served = engine.sync_from(learner, ["solver"], tmp_path)
    assert engine.versions.require("solver").path == str(served[0].resolve())
    after = engine.generate(PROMPTS, ["solver"] * 4, greedy)
    expected = learner.generate(PROMPTS, ["solver"] * 4, greedy)
    assert [c.completion_ids for c in after] == [c.completion_ids for c in expected]
    assert [c.completion_ids for c in after] != [c.completion_ids for c in before]
    assert max_gap(learner, after, ["solver"] * 4, 1.0) < AGREEMENT


def test_completions_stop_at_the_end_of_turn_or_the_length_limit(engine):
    completions = engine.generate(PROMPTS * 4, [None] * 16, SamplingConfig(1.0, max_new_tokens=40))
    eos = engine.tokenizer.eos_token_id
    for c in completions:
        assert c.finish_reason in ("stop", "length")
        assert (c.completion_ids[-1] == eos) == (c.finish_reason == "stop")
        assert "<|im_end|>" not in c.text
    assert any(c.finish_reason == "stop" for c in completions)
    [short] = engine.generate(PROMPTS[:1], [None], SamplingConfig(1.0, max_new_tokens=2))
    assert short.finish_reason == "length" and len(short.completion_ids) == 2


def test_an_engine_that_cannot_start_says_why_and_what_to_change(tiny_dir):
    with pytest.raises(EngineStartError, match=r"(?s)did not start.*lower --rollout.engine-memory"):
        VLLMBackend.launch(tiny_dir, dtype="float32", gpu_memory_utilization=0.999)


def test_a_chat_template_option_and_a_refused_system_role_on_the_engine(untemplated_dir,
                                                                          gemma_style_dir):
    """One engine on a tokenizer without a template, given Gemma's (a file), which refuses a
    system role: the template is the engine's, and the system prompt goes into the user turn."""
    template = gemma_style_dir / "chat_template.jinja"
    backend = VLLMBackend.launch(untemplated_dir, dtype="float32", max_lora_rank=8, max_loras=1,
                                 chat_template=str(template))
    try:
        with pytest.warns(UserWarning, match="refuses a system role"):
            [completion] = backend.generate(PROMPTS[:1], [None], SamplingConfig(0, max_new_tokens=4))
    finally:
        backend.close()
    assert backend.tokenizer.chat_template == template.read_text()
    text = backend.tokenizer.decode(completion.prompt_ids)
    assert text.count("<start_of_turn>") == 2 and "<start_of_turn>user\n" in text
    assert PROMPTS[0][0]["content"].strip() in text  # the system prompt, folded

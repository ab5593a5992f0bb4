"""The transformers backend on a real (randomly initialised) tiny Qwen3 model and real peft adapters."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.scoring import completion_logprobs, pack
from selfplay_gym.types import Request

SOLVER_PROMPT = ({"role": "system", "content": "Reason step by step."}, {"role": "user", "content": "37+48"})
QUESTION_PROMPT = ({"role": "user", "content": "Generate one new question now."},)
SAMPLE = SamplingConfig(temperature=1.0, max_new_tokens=16)


def randomise_adapters(backend: HFBackend, seed: int = 0) -> None:
    """LoRA B starts at zero (adapter == base); give each adapter its own non-zero weights."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in backend.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)


@pytest.fixture
def backend(random_model_dir):
    backend = HFBackend(random_model_dir, adapters=["questioner", "solver"])
    randomise_adapters(backend)
    return backend


def test_loads_from_a_local_directory_like_a_hub_id(random_model_dir):
    backend = HFBackend(str(random_model_dir))
    assert backend.device.type == "cpu" and backend.dtype == torch.float32
    assert backend.tokenizer.padding_side == "left"


def test_a_missing_model_names_the_fix(tmp_path):
    with pytest.raises(OSError, match=f"model directory {tmp_path / 'nowhere'} does not exist"):
        HFBackend(tmp_path / "nowhere")


def test_sampling_logprobs_match_a_recomputation(backend):
    adapters = ["solver", "questioner", None, "solver"]
    prompts = [SOLVER_PROMPT, QUESTION_PROMPT, SOLVER_PROMPT, QUESTION_PROMPT]
    for sampling in (SAMPLE, SamplingConfig(temperature=0.7, top_p=0.9, top_k=20, max_new_tokens=16)):
        completions = backend.generate(prompts, adapters, sampling)
        for completion, adapter in zip(completions, adapters, strict=True):
            assert len(completion.logprobs) == len(completion.completion_ids) > 0
            again = backend.logprobs(
                adapter, [completion.prompt_ids], [completion.completion_ids],
                temperature=sampling.temperature,
            )[0]
            assert torch.allclose(again, torch.tensor(completion.logprobs), atol=1e-4)


def test_roles_with_different_adapters_score_the_same_text_differently_in_one_batch(backend):
    [completion] = backend.generate([SOLVER_PROMPT], ["solver"], SAMPLE)
    # One mixed batch: the same prompt and completion under both adapters.
    completions = backend.generate([SOLVER_PROMPT] * 2, ["solver", "questioner"], SamplingConfig(0, max_new_tokens=8))
    assert completions[0].completion_ids != completions[1].completion_ids or (
        completions[0].logprobs != completions[1].logprobs
    )
    solver = backend.logprobs("solver", [completion.prompt_ids], [completion.completion_ids])[0]
    questioner = backend.logprobs("questioner", [completion.prompt_ids], [completion.completion_ids])[0]
    assert not torch.allclose(solver, questioner, atol=1e-3)


def test_mixed_roles_are_generated_in_one_call(backend, monkeypatch):
    calls = []
    real = backend.model.generate

    def counting(*args, **kwargs):
        calls.append(kwargs.get("adapter_names"))
        return real(*args, **kwargs)

    monkeypatch.setattr(backend.model, "generate", counting)
    policy = LLMPolicy(backend, {"questioner": RoleConfig("questioner", SAMPLE), "solver": RoleConfig("solver", SAMPLE)})
    requests = [Request("questioner_0", "questioner", QUESTION_PROMPT)] + [
        Request(f"solver_{i}", "solver", SOLVER_PROMPT) for i in range(5)
    ]
    completions = policy.generate(requests)
    assert len(completions) == 6
    assert len(calls) == 1 and sorted(calls[0]) == ["questioner"] + ["solver"] * 5


def test_reference_logprobs_are_the_base_models(backend, random_model_dir):
    [completion] = backend.generate([SOLVER_PROMPT], ["solver"], SAMPLE)
    reference = backend.reference_logprobs([completion.prompt_ids], [completion.completion_ids])[0]
    base = AutoModelForCausalLM.from_pretrained(random_model_dir).eval()
    batch = pack([completion.prompt_ids], [completion.completion_ids], backend.tokenizer.pad_token_id)
    with torch.no_grad():
        logits = base(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                      position_ids=batch.position_ids).logits
    steps = len(completion.completion_ids)
    expected = torch.log_softmax(logits[0, -steps - 1 : -1], -1).gather(
        -1, torch.tensor(completion.completion_ids)[:, None]).squeeze(-1)
    assert torch.allclose(reference, expected, atol=1e-5)
    adapted = backend.logprobs("solver", [completion.prompt_ids], [completion.completion_ids])[0]
    assert not torch.allclose(reference, adapted, atol=1e-3)


def test_saved_adapters_reload_identically_and_open_in_peft(backend, random_model_dir, tmp_path):
    [completion] = backend.generate([SOLVER_PROMPT], ["solver"], SAMPLE)
    ids = ([completion.prompt_ids], [completion.completion_ids])
    before = backend.logprobs("solver", *ids)[0]
    path = backend.save_adapter("solver", tmp_path / "solver")
    params = backend.store.parameters("solver")
    with torch.no_grad():
        for p in params.values():
            p.zero_()
    assert not torch.allclose(backend.logprobs("solver", *ids)[0], before)
    backend.load_adapter("solver", path)
    assert torch.equal(backend.logprobs("solver", *ids)[0], before)
    assert all(backend.store.parameters("solver")[n] is p for n, p in params.items()), "loaded in place"

    fresh = HFBackend(random_model_dir)
    fresh.load_adapter("solver", path)
    assert torch.equal(fresh.logprobs("solver", *ids)[0], before)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(random_model_dir), str(path))
    assert isinstance(peft_model, PeftModel)


def base_storage(model: torch.nn.Module) -> tuple[int, int]:
    """(distinct storages, bytes) of every non-LoRA parameter."""
    seen: dict[int, int] = {}
    for name, param in model.named_parameters():
        if "lora_" not in name:
            seen[param.untyped_storage().data_ptr()] = param.untyped_storage().nbytes()
    return len(seen), sum(seen.values())


def test_base_weights_exist_once_whatever_the_number_of_roles(random_model_dir):
    backend = HFBackend(random_model_dir)
    one = base_storage(backend.model)
    for name in ("questioner", "solver", "judge", "refiner"):
        backend.add_adapter(name)
    assert base_storage(backend.model) == one
    lora_params = sum(p.numel() for n, p in backend.model.named_parameters() if "lora_" in n)
    base_params = sum(p.numel() for n, p in backend.model.named_parameters() if "lora_" not in n)
    assert lora_params < base_params


def test_adapter_parameters_are_found_by_name(backend):
    solver = backend.store.parameters("solver")
    questioner = backend.store.parameters("questioner")
    assert solver and questioner and not set(solver) & set(questioner)
    assert all(".solver." in n for n in solver)


def test_malformed_prompts_give_clear_errors_or_reported_truncation(backend):
    with pytest.raises(ValueError, match="no messages"):
        backend.generate([()], ["solver"], SAMPLE)
    with pytest.raises(ValueError, match="no adapter named 'critic'"):
        backend.generate([SOLVER_PROMPT], ["critic"], SAMPLE)
    with pytest.raises(ValueError, match="lower max_new_tokens"):
        backend.generate([SOLVER_PROMPT], ["solver"], SamplingConfig(max_new_tokens=10_000))
    huge = ({"role": "user", "content": "37+48 " * 2000},)
    with pytest.warns(UserWarning, match="cut to its last"):
        [completion] = backend.generate([huge], ["solver"], SAMPLE)
    assert completion.prompt_truncated > 0
    assert len(completion.prompt_ids) + SAMPLE.max_new_tokens <= backend.max_context


def test_llm_policy_validates_roles(backend):
    with pytest.raises(ValueError, match="at least one role"):
        LLMPolicy(backend, {})
    policy = LLMPolicy(backend, {"solver": "solver"})
    with pytest.raises(ValueError, match="not \\['judge'\\]"):
        policy.generate([Request("judge_0", "judge", SOLVER_PROMPT)])
    assert policy.roles_map() == {"solver": policy}


@pytest.mark.parametrize(
    "kwargs", [{"temperature": -1}, {"top_p": 0}, {"top_k": -1}, {"max_new_tokens": 0}]
)
def test_sampling_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        SamplingConfig(**kwargs)


def test_training_logprobs_and_entropy_match_a_full_log_softmax(backend):
    """Log-probs (values and gradients) and entropy equal a direct computation at any T; the
    entropy is a metric without gradients unless an entropy bonus asks for them."""
    prompt_ids = [backend.encode_prompt(SOLVER_PROMPT, max_new_tokens=16).ids]
    completion_ids = [backend.tokenizer.encode("47+30=77, 77+8=85. \\boxed{85}")]
    batch = pack(prompt_ids, completion_ids, backend.tokenizer.pad_token_id)
    backend.store.activate_for_training("solver")
    params = list(backend.adapter_parameters("solver").values())
    for temperature in (1.0, 0.7):
        logp, entropy = completion_logprobs(backend.model, batch, temperature, with_entropy=True)
        assert entropy is not None and not entropy.requires_grad
        (grad,) = torch.autograd.grad(logp.sum(), params[:1])
        logits = backend.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                               position_ids=batch.position_ids).logits[:, -batch.completion_ids.shape[1] - 1:-1]
        full = torch.log_softmax(logits / temperature, dim=-1)
        expected = full.gather(-1, batch.completion_ids[..., None]).squeeze(-1) * batch.completion_mask
        (expected_grad,) = torch.autograd.grad(expected.sum(), params[:1])
        assert torch.allclose(logp, expected, atol=1e-5)
        assert torch.allclose(grad, expected_grad, atol=1e-5)
        assert torch.allclose(entropy, -(full.exp() * full).sum(-1).detach(), atol=1e-5)
    _, entropy = completion_logprobs(backend.model, batch, 0.7, with_entropy=True, entropy_grad=True)
    assert entropy.requires_grad


def test_generation_stops_at_every_end_id_the_model_declares(random_model_dir, tmp_path):
    """Chat models list several end ids in generation_config (Qwen: <|im_end|> and
    <|endoftext|>); stopping on the tokenizer's eos alone runs on to max_new_tokens."""
    import json
    import shutil

    prompt = ({"role": "user", "content": "37+48"},)
    greedy = SamplingConfig(0.0, max_new_tokens=12)
    plain = HFBackend(random_model_dir)
    [free] = plain.generate([prompt], [None], greedy)
    second_end = free.completion_ids[3]  # a token the model emits: declare it an end of turn
    ends = [t for t in plain.end_ids if t != second_end]
    model_dir = Path(shutil.copytree(random_model_dir, tmp_path / "two-ends"))
    config = json.loads((model_dir / "generation_config.json").read_text())
    (model_dir / "generation_config.json").write_text(
        json.dumps(config | {"eos_token_id": [*ends, second_end]}))
    chat = HFBackend(model_dir)
    assert chat.end_ids == [*ends, second_end]
    [stopped] = chat.generate([prompt], [None], greedy)
    first = free.completion_ids.index(second_end)
    assert stopped.completion_ids == free.completion_ids[: first + 1]
    assert stopped.finish_reason == "stop"

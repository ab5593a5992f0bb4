"""The vLLM backend's engine-free parts: request building, option and output mapping, adapter
versions, against a fake engine with vLLM's ``LLM.generate`` signature. The real engine runs in
tests/engines (``make test-vllm``)."""

from __future__ import annotations

import sys
import warnings
from types import SimpleNamespace

import pytest

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.agents.vllm import (
    AdapterVersions,
    VLLMBackend,
    check_cpu_head_size,
    encode_chat,
    finish_reason,
    fit_context,
    flat_logprobs,
    head_size,
    require_vllm,
    sampling_params_kwargs,
)

PROMPT = (
    {"role": "system", "content": "Reason step by step."},
    {"role": "user", "content": "37+48"},
)
OTHER = ({"role": "user", "content": "Generate one new question now."},)


class FakeEngine:
    """Answers every prompt with tokens (5, EOS) and records what it was asked."""

    def __init__(self, eos: int):
        self.eos = eos
        self.calls: list[dict] = []
        self.removed: list[int] = []
        self.llm_engine = SimpleNamespace(remove_lora=self.removed.append)

    def generate(self, prompts, params, lora_request=None, use_tqdm=True):
        self.calls.append({"prompts": prompts, "params": params, "loras": lora_request})
        logprobs = [
            {5: SimpleNamespace(logprob=-0.5), 9: SimpleNamespace(logprob=-2.0)},
            {self.eos: SimpleNamespace(logprob=-0.25)},
        ]
        choice = SimpleNamespace(
            text="ok", token_ids=(5, self.eos), logprobs=logprobs, finish_reason="stop"
        )
        return [SimpleNamespace(outputs=[choice]) for _ in prompts]


@pytest.fixture
def hf(random_model_dir):
    return HFBackend(random_model_dir, adapters=["solver"])


@pytest.fixture
def fake(hf, tmp_path):
    engine = FakeEngine(hf.tokenizer.eos_token_id)
    hf.save_adapter("solver", tmp_path / "solver")
    backend = VLLMBackend(
        engine,
        hf.tokenizer,
        max_context=hf.max_context,
        sampling_params=dict,
        lora_request=SimpleNamespace,
        adapters={"solver": tmp_path / "solver"},
    )
    return backend, engine


def test_without_vllm_choosing_the_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'selfplay-gym\[vllm\]'.*make venv-vllm"):
        require_vllm()
    with pytest.raises(ImportError, match=r"selfplay-gym\[vllm\]"):
        VLLMBackend.launch("any-model")


def test_prompts_are_rendered_and_cut_exactly_as_hf_does(hf):
    long = ({"role": "user", "content": "37+48 " * 300},)
    for messages in (PROMPT, OTHER, long):
        for new_tokens in (16, 500):  # 500: even the short prompts are cut
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                expected = hf.encode_prompt(messages, new_tokens)
            ids, dropped = fit_context(
                encode_chat(hf.tokenizer, messages), hf.max_context, new_tokens
            )
            assert (ids, dropped) == (expected.ids, expected.truncated)
    assert hf.truncation_warnings >= 3
    hf.tokenizer.chat_template = None  # the plain "role: content" fallback
    assert encode_chat(hf.tokenizer, PROMPT) == hf.encode_prompt(PROMPT, 16).ids
    with pytest.raises(ValueError, match="no messages"):
        encode_chat(hf.tokenizer, ())
    with pytest.raises(ValueError, match="lower max_new_tokens"):
        fit_context([1, 2], max_context=8, max_new_tokens=8)


def test_a_template_that_refuses_a_system_role_is_folded_as_hf_folds_it(gemma_style_dir):
    hf = HFBackend(gemma_style_dir)
    backend = VLLMBackend(FakeEngine(hf.tokenizer.eos_token_id), hf.tokenizer,
                          max_context=hf.max_context, sampling_params=dict,
                          lora_request=SimpleNamespace)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fold's warning: tests/agents/test_prompts.py
        [(ids, _)], _, _ = backend.requests([PROMPT], [None], SamplingConfig(max_new_tokens=16))
        assert ids == hf.encode_prompt(PROMPT, 16).ids
    assert "<start_of_turn>user\nReason step by step.\n\n37+48" in hf.tokenizer.decode(ids)


def test_a_cut_prompt_is_reported(fake):
    backend, engine = fake
    long = ({"role": "user", "content": "37+48 " * 300},)
    with pytest.warns(UserWarning, match="cut to its last"):
        [completion] = backend.generate([long], [None], SamplingConfig(max_new_tokens=16))
    assert completion.prompt_truncated > 0
    assert len(engine.calls[0]["prompts"][0]["prompt_token_ids"]) == backend.max_context - 16


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        (SamplingConfig(), {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "max_tokens": 256}),
        (
            SamplingConfig(0.7, 0.9, 20, 32),
            {"temperature": 0.7, "top_p": 0.9, "top_k": 20, "max_tokens": 32},
        ),
        (
            SamplingConfig(0.0, 0.5, 7, 8),
            {"temperature": 0.0, "top_p": 1.0, "top_k": -1, "max_tokens": 8},
        ),
    ],
)
def test_sampling_config_maps_to_vllm_sampling_params(sampling, expected):
    kwargs = sampling_params_kwargs(sampling, stop_token_ids=[2])
    assert kwargs == expected | {
        "n": 1,
        "logprobs": 0,
        "stop_token_ids": [2],
        "skip_special_tokens": True,
    }


def test_per_position_logprob_dicts_become_a_flat_list():
    positions = [{4: SimpleNamespace(logprob=-1.5), 8: SimpleNamespace(logprob=-0.1)}, {2: -0.75}]
    assert flat_logprobs([4, 2], positions) == [-1.5, -0.75]
    with pytest.raises(ValueError, match="no log-probs"):
        flat_logprobs([4], None)
    with pytest.raises(ValueError, match="2 log-prob positions for 1 tokens"):
        flat_logprobs([4], positions)
    with pytest.raises(ValueError, match="lack the sampled token 3"):
        flat_logprobs([3, 2], positions)


def test_finish_reasons_map_and_an_abort_is_an_error():
    assert finish_reason("stop") == "stop" and finish_reason("length") == "length"
    for reason in ("abort", None):
        with pytest.raises(RuntimeError, match="expected 'stop' or 'length'"):
            finish_reason(reason)


def test_every_adapter_version_gets_a_fresh_id_and_name(tmp_path):
    versions = AdapterVersions()
    solver1, replaced = versions.register("solver", tmp_path / "a")
    questioner1, _ = versions.register("questioner", tmp_path / "b")
    solver2, replaced2 = versions.register("solver", tmp_path / "c")
    assert replaced is None and replaced2 == solver1
    assert len({solver1.lora_int_id, questioner1.lora_int_id, solver2.lora_int_id}) == 3
    assert min(solver1.lora_int_id, questioner1.lora_int_id) >= 1  # vLLM reserves 0
    assert (solver1.lora_name, solver2.lora_name) == ("solver@v1", "solver@v2")
    assert versions.require("solver").path == str(tmp_path / "c")
    assert versions.next_path(tmp_path, "solver") == tmp_path / "solver" / "v3"
    with pytest.raises(ValueError, match="no adapter named 'judge'.*load_adapter"):
        versions.require("judge")


def test_generate_builds_token_prompts_one_lora_request_each_and_maps_outputs(fake, hf):
    backend, engine = fake
    completions = backend.generate(
        [PROMPT, OTHER, PROMPT], ["solver", None, "solver"], SamplingConfig(0.7, max_new_tokens=8)
    )
    [call] = engine.calls
    assert [p["prompt_token_ids"] for p in call["prompts"]] == [
        hf.encode_prompt(m, 8).ids for m in (PROMPT, OTHER, PROMPT)
    ]
    assert call["params"]["temperature"] == 0.7 and call["params"]["stop_token_ids"] == [
        hf.tokenizer.eos_token_id
    ]
    solver, base, again = call["loras"]
    assert base is None and solver == again
    assert (solver.lora_name, solver.lora_int_id) == ("solver@v1", 1) and solver.lora_path.endswith(
        "solver"
    )
    eos = hf.tokenizer.eos_token_id
    assert completions[1].completion_ids == [5, eos] and completions[1].logprobs == [-0.5, -0.25]
    assert completions[0].prompt_ids == call["prompts"][0]["prompt_token_ids"]
    assert all(c.finish_reason == "stop" and c.text == "ok" for c in completions)
    assert backend.generate([], [], SamplingConfig()) == []


def test_unknown_adapters_and_mismatched_lists_are_refused(fake):
    backend, _ = fake
    with pytest.raises(ValueError, match="no adapter named 'critic'"):
        backend.generate([PROMPT], ["critic"], SamplingConfig())
    with pytest.raises(ValueError, match="1 prompts but 2 adapter names"):
        backend.generate([PROMPT], ["solver", None], SamplingConfig())
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        backend.load_adapter("solver", "/nonexistent")


def test_sync_saves_a_new_version_serves_it_and_frees_the_old_one(fake, hf, tmp_path):
    backend, engine = fake
    first_id = backend.versions.require("solver").lora_int_id
    root = tmp_path / "sync"
    for _ in range(3):
        backend.sync_from(hf, ["solver"], root)
    current = backend.versions.require("solver")
    assert current.version == 4 and current.path == str(root / "solver" / "v4")
    assert engine.removed == [first_id, first_id + 1, first_id + 2]
    assert sorted(p.name for p in (root / "solver").iterdir()) == ["v3", "v4"]  # keep=2
    backend.generate([PROMPT], ["solver"], SamplingConfig(max_new_tokens=4))
    assert engine.calls[-1]["loras"][0].lora_int_id == current.lora_int_id


def test_a_head_size_the_cpu_backend_refuses_is_named_before_any_engine_starts(random_model_dir, tiny_dir):
    assert head_size(random_model_dir) == 16 and head_size(tiny_dir) == 32
    with pytest.raises(ValueError, match=r"head size 16.*takes 32, 64, 80.*--rollout.engine hf"):
        check_cpu_head_size(random_model_dir)
    check_cpu_head_size(tiny_dir)
    assert head_size("Qwen/Qwen3-4B-Base") is None  # a hub id: vLLM itself checks it

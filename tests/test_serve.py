"""``selfplay-gym serve`` for real: a uvicorn server on 127.0.0.1 over the random tiny model, driven
by ``OpenAIBackend`` and by raw HTTP, its numbers checked against a local ``HFBackend``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import warnings

import pytest
import torch

httpx = pytest.importorskip("httpx", reason="the OpenAI backend needs httpx (a core dependency)")
pytest.importorskip(
    "fastapi", reason="serving needs the serve extra: pip install 'selfplay-gym[serve]'"
)
pytest.importorskip(
    "uvicorn", reason="serving needs the serve extra: pip install 'selfplay-gym[serve]'"
)

from selfplay_gym.agents.hf import HFBackend  # noqa: E402
from selfplay_gym.agents.openai_api import OpenAIBackend, ServerError  # noqa: E402
from selfplay_gym.agents.policy import SamplingConfig  # noqa: E402
from selfplay_gym.agents.tiny_tokenizer import CHAT_TEMPLATE  # noqa: E402
from selfplay_gym.serve import create_app, serve_in_thread  # noqa: E402
from selfplay_gym.serve.main import build_app, build_parser  # noqa: E402

ADAPTERS = ("solver", "questioner")
SOLVER_PROMPT = (
    {"role": "system", "content": "Reason step by step."},
    {"role": "user", "content": "37+48"},
)


def randomise(backend: HFBackend, seed: int) -> None:
    """LoRA B starts at zero (adapter == base); give every adapter its own weights."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in backend.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)


@pytest.fixture(scope="module")
def reference(random_model_dir):
    """The local twin of the server's model: same base, same adapters."""
    backend = HFBackend(random_model_dir, adapters=list(ADAPTERS))
    randomise(backend, seed=0)
    return backend


@pytest.fixture(scope="module")
def adapter_dirs(reference, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {name: reference.save_adapter(name, root / name) for name in ADAPTERS}


@pytest.fixture(scope="module")
def server(random_model_dir, adapter_dirs):
    backend = HFBackend(random_model_dir)
    for name, path in adapter_dirs.items():
        backend.load_adapter(name, path)
    app = create_app(backend, "tiny-base")
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture
def client(server):
    return OpenAIBackend(server[0], "tiny-base", timeout=60, max_retries=1, backoff=0.05)


def assert_logprobs_match(reference, completions, adapters, temperature):
    for completion, adapter in zip(completions, adapters, strict=True):
        assert len(completion.logprobs) == len(completion.completion_ids) > 0
        again = reference.logprobs(
            adapter, [completion.prompt_ids], [completion.completion_ids], temperature=temperature
        )[0]
        assert torch.allclose(again, torch.tensor(completion.logprobs), atol=1e-4)


def test_the_base_and_each_adapter_are_served_models(client):
    assert {"tiny-base", *ADAPTERS} <= set(client.models())


def test_a_concurrent_batch_over_two_adapters_is_batched_and_scores_like_hf(
    client, server, reference
):
    prompts = [({"role": "user", "content": f"{i}+{2 * i}"},) for i in range(16)]
    adapters = [ADAPTERS[i % 2] for i in range(16)]
    sampling = SamplingConfig(0.7, top_p=0.9, top_k=20, max_new_tokens=12)
    completions = client.generate(prompts, adapters, sampling)
    assert [c.prompt_ids for c in completions] == [
        reference.encode_prompt(p, 12).ids for p in prompts
    ]
    assert_logprobs_match(reference, completions, adapters, temperature=0.7)
    assert server[1].state.batcher.stats["largest_call"] > 1, (
        "concurrent requests share a generate call"
    )
    greedy = client.generate(
        [SOLVER_PROMPT] * 3, [None, "solver", None], SamplingConfig(0, max_new_tokens=8)
    )
    assert greedy[0].completion_ids == greedy[2].completion_ids  # one request with n=2, both greedy
    assert_logprobs_match(reference, greedy, [None, "solver", None], temperature=0)


def test_plain_completions_take_text_or_token_ids(server, reference):
    ids = reference.encode_prompt(SOLVER_PROMPT, 8).ids
    common = {
        "model": "questioner",
        "n": 2,
        "max_tokens": 8,
        "temperature": 0.5,
        "logprobs": 0,
        "return_token_ids": True,
    }
    choices = []
    for prompt, expected in (
        (ids, [ids]),
        ("37+48", [reference.tokenizer("37+48")["input_ids"]]),
        ([ids, ids[:5]], [ids, ids[:5]]),
    ):
        data = httpx.post(
            server[0] + "/completions", json=common | {"prompt": prompt}, timeout=60
        ).json()
        assert data["object"] == "text_completion", data
        assert [c["prompt_token_ids"] for c in data["choices"]] == [
            e for e in expected for _ in range(2)
        ]
        assert data["usage"]["completion_tokens"] == sum(
            len(c["token_ids"]) for c in data["choices"]
        )
        choices += data["choices"]
    for choice in choices:
        assert len(choice["logprobs"]["tokens"]) == len(choice["token_ids"])
        again = reference.logprobs(
            "questioner", [choice["prompt_token_ids"]], [choice["token_ids"]], temperature=0.5
        )[0]
        assert torch.allclose(again, torch.tensor(choice["logprobs"]["token_logprobs"]), atol=1e-4)


def test_a_reloaded_adapter_changes_the_servers_logprobs(client, reference, adapter_dirs, tmp_path):
    greedy = SamplingConfig(0, max_new_tokens=8)
    [before] = client.generate([SOLVER_PROMPT], ["solver"], greedy)
    randomise(reference, seed=1)  # "an update": new weights for every adapter
    try:
        client.sync_from(reference, ["solver"], tmp_path)  # save + POST /v1/load_lora_adapter
        client.load_adapter("judge", adapter_dirs["questioner"])  # a new name joins the models
        [after] = client.generate([SOLVER_PROMPT], ["solver"], greedy)
        assert after.logprobs != before.logprobs
        assert_logprobs_match(reference, [after], ["solver"], temperature=0)
        models = client.models()
        assert "judge@v1" in models and "solver@v1" in models
        client.sync_from(reference, ["solver"], tmp_path)  # the next version replaces it
        models = client.models()
        assert "solver@v2" in models and "solver@v1" not in models
    finally:  # put both sides back for the other tests
        client.load_adapter("solver", adapter_dirs["solver"])
        for name, path in adapter_dirs.items():
            reference.load_adapter(name, path)


def chat(**fields) -> dict:
    """A valid chat body with ``fields`` changed (None removes a field)."""
    body = {"model": "tiny-base", "messages": [{"role": "user", "content": "x"}]} | fields
    return {k: v for k, v in body.items() if v is not None}


CONTEXT = "leaves no room for a prompt in the model's context of 512 tokens; lower max_tokens"
MALFORMED = [
    ("chat/completions", chat(messages=None), 400, "messages: Field required"),
    ("chat/completions", chat(messages=[]), 400, "messages: List should have at least 1"),
    ("chat/completions", chat(model=None), 400, "model: Field required"),
    ("chat/completions", chat(temperature=-1), 400, "temperature: Input should be greater than"),
    ("chat/completions", chat(temperature="hot"), 400, "temperature: Input should be a valid num"),
    ("chat/completions", chat(model="critic"), 404, "The model `critic` does not exist"),
    (
        "chat/completions",
        chat(stream_options={"include_usage": True}),
        400,
        "stream_options: only allowed with stream=true",
    ),
    ("chat/completions", chat(top_logprobs=5), 400, "top_logprobs needs logprobs=true"),
    ("chat/completions", chat(max_tokens=10_000), 400, CONTEXT),
    (
        "chat/completions",
        chat(messages=[{"role": "user", "content": "1 " * 600}], max_tokens=16),
        400,
        "more than the model's context of 512 tokens",
    ),
    ("chat/completions", chat(n=0), 400, "n: Input should be greater than or equal to 1"),
    ("completions", {"model": "tiny-base", "prompt": [99_999]}, 400, "token ids must lie in"),
    ("completions", {"model": "tiny-base", "prompt": [[1, 2], "mixed"]}, 400, "prompt"),
    (
        "load_lora_adapter",
        {"lora_name": "solver", "lora_path": "/nonexistent"},
        400,
        "could not load adapter",
    ),
    (
        "load_lora_adapter",
        {"lora_name": "tiny-base", "lora_path": "/x"},
        400,
        "cannot name an adapter",
    ),
]


@pytest.mark.parametrize(("path", "body", "status", "reason"), MALFORMED)
def test_malformed_requests_are_refused_with_a_reason(server, path, body, status, reason):
    response = httpx.post(f"{server[0]}/{path}", json=body, timeout=30)
    assert response.status_code == status
    assert reason in response.json()["error"]["message"]


def test_a_body_that_is_not_json_is_refused(server):
    response = httpx.post(
        server[0] + "/chat/completions",
        content=b"{not json",
        timeout=30,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and "JSON" in response.json()["error"]["message"]


class KillAfterFirstAnswer(httpx.AsyncBaseTransport):
    """Real HTTP; once the first answer is in, the server process is killed."""

    def __init__(self, process: subprocess.Popen):
        self.inner = httpx.AsyncHTTPTransport()
        self.process = process

    async def handle_async_request(self, request):
        response = await self.inner.handle_async_request(request)
        await response.aread()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_server_killed_mid_batch_fails_the_batch_whole_with_one_clear_error(
    random_model_dir, tmp_path
):
    port = free_port()
    log = (tmp_path / "server.log").open("w")
    command = [
        sys.executable,
        "-m",
        "selfplay_gym.serve",
        "--model",
        str(random_model_dir),
        "--port",
        str(port),
        "--max-batch-size",
        "1",
        "--served-model-name",
        "tiny",
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start in 120 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        backend = OpenAIBackend(
            f"http://127.0.0.1:{port}/v1",
            "tiny",
            max_concurrency=2,
            max_retries=2,
            backoff=0.05,
            timeout=10,
            transport=KillAfterFirstAnswer(process),
        )
        prompts = [({"role": "user", "content": f"{i}*{i}"},) for i in range(8)]
        with pytest.raises(
            ServerError,
            match=r"request \d of 8 \(model 'tiny'\) failed after 3 attempts; "
            r"last error ConnectError.*running",
        ):
            backend.generate(prompts, [None] * 8, SamplingConfig(max_new_tokens=32))
        assert process.poll() is not None
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)
        log.close()


@pytest.mark.parametrize("model", ["gemma_style_dir", "untemplated_dir"])
def test_a_template_without_a_system_role_or_no_template_at_all_is_served(model, request, tmp_path):
    """Gemma's template gets the system prompt folded into the user turn (the warning is pinned
    in tests/agents/test_prompts.py); a tokenizer without one takes ``--chat-template FILE``."""
    model_dir = request.getfixturevalue(model)
    flags = ["--model", str(model_dir)]
    rendered = [{"role": "user", "content": "Reason step by step.\n\n37+48"}]
    if model == "untemplated_dir":
        (tmp_path / "chat.jinja").write_text(CHAT_TEMPLATE)
        flags += ["--chat-template", str(tmp_path / "chat.jinja")]
        rendered = list(SOLVER_PROMPT)
    body = {"model": str(model_dir), "messages": list(SOLVER_PROMPT), "max_tokens": 4,
            "temperature": 0, "return_token_ids": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = build_app(build_parser().parse_args(flags))
        with serve_in_thread(app) as url:
            response = httpx.post(url + "/chat/completions", json=body, timeout=60)
    assert response.status_code == 200, response.text
    tokenizer = app.state.backend.tokenizer
    text = tokenizer.apply_chat_template(rendered, tokenize=False, add_generation_prompt=True)
    assert response.json()["prompt_token_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"]

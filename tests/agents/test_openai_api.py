"""The OpenAI-compatible client against a scripted in-memory server (httpx.MockTransport).

Request shape, adapter names, grouping, bounded concurrency, retries, all-or-nothing batches
and the error for every kind of bad answer. tests/test_serve.py drives the same client
against the real ``selfplay-gym serve``.
"""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

httpx = pytest.importorskip("httpx", reason="the OpenAI backend needs httpx (a core dependency)")

from selfplay_gym.agents.openai_api import OpenAIBackend, ServerError  # noqa: E402
from selfplay_gym.agents.policy import SamplingConfig  # noqa: E402

P = ({"role": "user", "content": "37+48"},)
Q = ({"role": "user", "content": "12*9"},)
SAMPLE = SamplingConfig(0.7, top_p=0.9, max_new_tokens=8)


def answer(body: dict) -> dict:
    """A vLLM-style chat completion with token ids, as ``return_token_ids`` gives."""
    choices = [
        {
            "index": i,
            "message": {
                "role": "assistant",
                "content": f"{body['model']}:{body['messages'][-1]['content']}:{i}",
            },
            "logprobs": {
                "content": [
                    {"token": f"token_id:{10 + i}", "logprob": -0.5},
                    {"token": "token_id:2", "logprob": -0.25},
                ]
            },
            "finish_reason": "stop",
            "token_ids": [10 + i, 2],
        }
        for i in range(body.get("n", 1))
    ]
    return {"object": "chat.completion", "choices": choices, "prompt_token_ids": [1, 2, 3]}


class FakeServer:
    """Answers chat completions from the request; ``script`` items are served first, in order."""

    def __init__(self, delay: float = 0.0):
        self.requests: list[tuple[str, dict | None]] = []
        self.script: list = []
        self.delay = delay
        self.in_flight = self.most_in_flight = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.url.path, body))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if self.script:
                item = self.script.pop(0)
                if isinstance(item, Exception):
                    raise item
                return item(request, body) if callable(item) else item
            return httpx.Response(200, json=answer(body))
        finally:
            self.in_flight -= 1


def client(server: FakeServer, **kwargs) -> OpenAIBackend:
    options = {"backoff": 0.001, "max_retries": 3} | kwargs
    return OpenAIBackend(
        "http://127.0.0.1:1/v1", "base", transport=httpx.MockTransport(server), **options
    )


def test_adapters_are_model_names_and_identical_prompts_become_one_request_with_n():
    server = FakeServer()
    backend = client(server, adapter_models={"solver": "solver-v2"})
    completions = backend.generate([P, P, Q, P], ["solver", "solver", "solver", None], SAMPLE)
    bodies = [body for _, body in server.requests]
    assert [(b["model"], b["messages"][0]["content"], b["n"]) for b in bodies] == [
        ("solver-v2", "37+48", 2),
        ("solver-v2", "12*9", 1),
        ("base", "37+48", 1),
    ]
    assert all(path == "/v1/chat/completions" for path, _ in server.requests)
    assert bodies[0] | {"model": "", "messages": [], "n": 0} == {
        "model": "",
        "messages": [],
        "n": 0,
        "max_tokens": 8,
        "temperature": 0.7,
        "top_p": 0.9,
        "logprobs": True,
        "return_token_ids": True,
        "return_tokens_as_token_ids": True,
    }
    assert [c.text for c in completions] == [
        "solver-v2:37+48:0",
        "solver-v2:37+48:1",
        "solver-v2:12*9:0",
        "base:37+48:0",
    ]
    assert completions[1].completion_ids == [11, 2] and completions[1].logprobs == [-0.5, -0.25]
    assert completions[1].prompt_ids == [1, 2, 3] and completions[1].finish_reason == "stop"
    client(server).generate([P], [None], SamplingConfig(top_k=20))
    assert server.requests[-1][1]["top_k"] == 20


def test_requests_in_flight_are_bounded():
    server = FakeServer(delay=0.02)
    prompts = [({"role": "user", "content": str(i)},) for i in range(20)]
    completions = client(server, max_concurrency=4).generate(prompts, [None] * 20, SAMPLE)
    assert len(completions) == 20 and server.most_in_flight == 4


def test_connection_errors_timeouts_429_and_5xx_are_retried():
    server = FakeServer()
    server.script = [
        httpx.ConnectError("refused"),
        httpx.Response(503, text="warming up"),
        httpx.ReadTimeout("slow"),
        httpx.Response(429, json={"error": {"message": "busy"}}),
    ]
    [completion] = client(server, max_retries=4).generate([P], [None], SAMPLE)
    assert completion.text == "base:37+48:0" and len(server.requests) == 5


def test_a_batch_fails_whole_with_one_error_naming_the_request_and_cause():
    calls = []

    async def out_of_memory_on_12x9(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append(body["messages"][0]["content"])
        if body["messages"][0]["content"] == "12*9":
            return httpx.Response(500, json={"error": {"message": "CUDA out of memory"}})
        return httpx.Response(200, json=answer(body))

    backend = OpenAIBackend(
        "http://127.0.0.1:1/v1",
        "base",
        backoff=0.001,
        max_retries=2,
        transport=httpx.MockTransport(out_of_memory_on_12x9),
    )
    prompts = [P, P, Q, ({"role": "user", "content": "5-5"},)]
    with pytest.raises(
        ServerError,
        match=r"request 2 of 4 \(model 'solver'\) failed after 3 attempts; "
        r"last error HTTP 500: CUDA out of memory",
    ) as caught:
        backend.generate(prompts, ["solver"] * 4, SAMPLE)
    assert caught.value.request_index == 2 and calls.count("12*9") == 3


def test_refusals_are_not_retried_and_carry_the_servers_reason():
    server = FakeServer()
    server.script = [
        httpx.Response(404, json={"error": {"message": "The model `critic` does not exist"}})
    ]
    with pytest.raises(
        ServerError, match="refused with HTTP 404: The model `critic` does not exist"
    ) as caught:
        client(server).generate([P], ["critic"], SAMPLE)
    assert caught.value.status == 404 and len(server.requests) == 1


def _garbage(body: dict, **changes) -> httpx.Response:
    data = answer(body)
    for key, value in changes.items():
        if key == "data":
            data = value
        else:
            data["choices"][0][key] = value
    return httpx.Response(200, json=data)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (lambda r, b: httpx.Response(200, text="<html>proxy error</html>"), "not a JSON object"),
        (lambda r, b: _garbage(b, data={"result": "ok"}), "not a usable chat completion.*choices"),
        (lambda r, b: _garbage(b, data={"choices": []}), "expected 1 choices, got 0"),
        (lambda r, b: _garbage(b, finish_reason="abort"), "finish_reason 'abort'"),
        (lambda r, b: _garbage(b, logprobs=None), "no per-token log-probs"),
        (
            lambda r, b: _garbage(
                b, token_ids=None, logprobs={"content": [{"token": "a", "logprob": -1.0}]}
            ),
            "no token ids",
        ),
        (lambda r, b: _garbage(b, token_ids=[1, 2, 3]), "3 token ids but 2 log-probs"),
    ],
)
def test_garbage_answers_are_clear_errors(reply, message):
    server = FakeServer()
    server.script = [reply]
    with pytest.raises(ServerError, match=f"request 0 of 1.*{message}"):
        client(server).generate([P], [None], SAMPLE)


def test_text_only_use_needs_neither_ids_nor_logprobs():
    server = FakeServer()
    server.script = [
        lambda r, b: httpx.Response(
            200,
            json={
                "choices": [{"index": 0, "message": {"content": "85"}, "finish_reason": "length"}]
            },
        )
    ]
    [completion] = client(server, token_ids=False, logprobs=False).generate([P], [None], SAMPLE)
    assert (completion.text, completion.completion_ids, completion.logprobs) == ("85", [], [])
    assert (
        "return_token_ids" not in server.requests[0][1]
        and server.requests[0][1]["logprobs"] is False
    )


def test_a_server_that_is_down_is_reported_as_such():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    backend = OpenAIBackend(
        f"http://127.0.0.1:{port}", "base", max_retries=1, backoff=0.01, timeout=5
    )
    assert backend.base_urls == [f"http://127.0.0.1:{port}/v1"]
    with pytest.raises(
        ServerError, match=r"failed after 2 attempts; last error ConnectError.*running"
    ):
        backend.generate([P, Q], [None, None], SAMPLE)


def test_load_adapter_posts_vllms_body_under_a_new_versioned_name_each_time():
    server = FakeServer()
    already = {"error": {"message": "The lora adapter 'solver@v1' has already been loaded."}}
    server.script = [
        httpx.Response(400, json=already),  # left by an earlier run: replaced
        httpx.Response(200, text="Success"),
        httpx.Response(200, text="Success"),
    ]
    backend = client(server)
    backend.load_adapter("solver", "/runs/x/solver/v1")
    assert server.requests == [
        ("/v1/load_lora_adapter", {"lora_name": "solver@v1", "lora_path": "/runs/x/solver/v1"}),
        ("/v1/unload_lora_adapter", {"lora_name": "solver@v1"}),
        ("/v1/load_lora_adapter", {"lora_name": "solver@v1", "lora_path": "/runs/x/solver/v1"}),
    ]
    assert backend.served_name("solver") == "solver@v1"
    server.requests.clear()
    server.script = [httpx.Response(200, text="Success"), httpx.Response(404, text="gone")]
    backend.load_adapter("solver", "/runs/x/solver/v2")  # the old version is unloaded
    assert server.requests == [
        ("/v1/load_lora_adapter", {"lora_name": "solver@v2", "lora_path": "/runs/x/solver/v2"}),
        ("/v1/unload_lora_adapter", {"lora_name": "solver@v1"}),
    ]
    server.script = [httpx.Response(400, json={"error": {"message": "no adapter_config.json"}})]
    with pytest.raises(
        ServerError, match="loading adapter 'solver@v3' from /x was refused.*adapter_config"
    ):
        backend.load_adapter("solver", "/x")
    assert backend.served_name("solver") == "solver@v2"  # a failed load changes nothing


def test_models_are_listed_and_the_client_works_inside_a_running_event_loop():
    server = FakeServer()
    server.script = [
        httpx.Response(200, json={"object": "list", "data": [{"id": "base"}, {"id": "solver"}]})
    ]
    backend = client(server)
    assert backend.models() == ["base", "solver"] and server.requests[0] == ("/v1/models", None)

    async def from_a_notebook():
        return backend.generate([P], [None], SAMPLE)

    assert asyncio.run(from_a_notebook())[0].text == "base:37+48:0"
    with pytest.raises(ValueError, match="1 prompts but 2 adapter names"):
        backend.generate([P], [None, None], SAMPLE)
    with pytest.raises(ValueError, match="prompt 0 has no messages"):
        backend.generate([()], [None], SAMPLE)
    assert backend.generate([], [], SAMPLE) == []


class SavingLearner:
    """Stands in for HFBackend: ``save_adapter`` writes a directory and returns it."""

    def save_adapter(self, name, path):
        path.mkdir(parents=True)
        (path / "adapter_config.json").write_text("{}")
        return path


def test_sync_saves_numbered_versions_loads_each_and_keeps_the_last_two(tmp_path):
    server = FakeServer()
    server.script = [httpx.Response(200, text="Success")] * 10
    backend = client(server, adapter_models={"solver": "solver-live"})
    for _ in range(3):
        backend.sync_from(SavingLearner(), ["solver", "questioner"], tmp_path)
    loaded = [(path, body["lora_name"], body.get("lora_path")) for path, body in server.requests]
    assert loaded[-4:] == [
        ("/v1/load_lora_adapter", "solver-live@v3", str(tmp_path / "solver" / "v3")),
        ("/v1/unload_lora_adapter", "solver-live@v2", None),
        ("/v1/load_lora_adapter", "questioner@v3", str(tmp_path / "questioner" / "v3")),
        ("/v1/unload_lora_adapter", "questioner@v2", None),
    ]
    assert sorted(p.name for p in (tmp_path / "solver").iterdir()) == ["v2", "v3"]


def test_a_pool_spreads_requests_retries_on_the_next_server_and_loads_adapters_everywhere():
    seen = []

    async def pool(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        if request.url.host == "down":
            raise httpx.ConnectError("refused")
        body = json.loads(request.content)
        return (
            httpx.Response(200, json=answer(body))
            if "messages" in body
            else httpx.Response(200, text="ok")
        )

    backend = OpenAIBackend(
        ["http://a:8000", "http://down:8000/v1", "http://c:8000/v1"],
        "base",
        backoff=0.001,
        max_retries=1,
        transport=httpx.MockTransport(pool),
    )
    prompts = [({"role": "user", "content": str(i)},) for i in range(6)]
    assert len(backend.generate(prompts, [None] * 6, SAMPLE)) == 6
    assert seen.count("a") == 2 and seen.count("c") == 4  # down's two requests moved on to c
    seen.clear()
    with pytest.raises(ServerError, match="loading adapter 'solver@v1'.*http://down:8000/v1 running"):
        backend.load_adapter("solver", "/shared/solver/v2")
    assert seen == ["a", "down", "down"]

"""Streaming and abandoned requests on ``selfplay-gym serve --model tiny``, driven by the
official ``openai`` client: server-sent events for chat and completions match the answers
without streaming, and a client that disconnects stops its generation."""

from __future__ import annotations

import time

import pytest

from selfplay_gym.agents.openai_api import OpenAIBackend, ServerError
from selfplay_gym.agents.policy import SamplingConfig
from tests import serve_fixtures as served

server, client = served.server, served.client  # the fixtures: one server per module
USER, httpx, openai = served.USER, served.httpx, served.openai


def chat(client, **fields):
    return client.chat.completions.create(**({"model": "tiny", "messages": USER} | fields))


# --- 1: server-sent events ---------------------------------------------------------------------
def test_a_streamed_chat_answer_is_the_answer_token_by_token_with_usage_last(client):
    fields = {"temperature": 0, "max_tokens": 30, "logprobs": True, "top_logprobs": 2}
    whole = chat(client, **fields)
    chunks = list(chat(client, stream=True, stream_options={"include_usage": True}, **fields))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    *body, last = chunks
    assert last.choices == [] and last.usage == whole.usage
    assert all(c.usage is None for c in body)
    text = "".join(c.choices[0].delta.content or "" for c in body)
    assert text == whole.choices[0].message.content
    assert body[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    streamed = [e for c in body[1:] for e in c.choices[0].logprobs.content]
    assert [e.model_dump() for e in streamed] == [
        e.model_dump() for e in whole.choices[0].logprobs.content
    ]
    assert len(body) - 1 == whole.usage.completion_tokens  # one chunk per token after the role


def test_streamed_completions_match_unstreamed_ones_choice_by_choice(client):
    fields = {"model": "tiny", "prompt": "37+48", "n": 3, "max_tokens": 12, "seed": 5}
    whole = client.completions.create(**fields)
    texts = ["", "", ""]
    finish = [None, None, None]
    for chunk in client.completions.create(stream=True, **fields):
        for choice in chunk.choices:
            texts[choice.index] += choice.text
            finish[choice.index] = choice.finish_reason or finish[choice.index]
    assert texts == [c.text for c in whole.choices]
    assert finish == [c.finish_reason for c in whole.choices]


def test_a_stop_string_never_shows_in_a_stream_even_split_across_tokens(client):
    full = chat(client, temperature=0, max_tokens=40).choices[0].message.content
    stop = full[5:8]
    pieces = [
        c.choices[0].delta.content or ""
        for c in chat(client, temperature=0, max_tokens=40, stop=stop, stream=True)
        if c.choices
    ]
    assert "".join(pieces) == full[: full.index(stop)]
    assert not any(stop in "".join(pieces[: k + 1]) for k in range(len(pieces)))


def test_an_echoed_prompt_streams_first_with_its_logprobs(client):
    chunks = list(
        client.completions.create(
            model="tiny", prompt="37+48", echo=True, logprobs=1, max_tokens=3, stream=True
        )
    )
    head = chunks[0].choices[0]
    assert head.text == "37+48" and head.logprobs.token_logprobs[0] is None
    assert "".join(c.choices[0].text for c in chunks).startswith("37+48")
    scored = list(
        client.completions.create(
            model="tiny", prompt="37+48", echo=True, logprobs=1, max_tokens=0, stream=True
        )
    )
    assert [c.choices[0].text for c in scored] == ["37+48", ""]
    assert scored[-1].choices[0].finish_reason == "length"


def test_the_wire_format_is_server_sent_events_ending_in_done(server):
    body = {"model": "tiny", "prompt": "x", "max_tokens": 3, "stream": True}
    with httpx.stream("POST", server[0] + "/completions", json=body, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines) and lines[-1] == "data: [DONE]"


def test_a_prompt_refused_before_streaming_is_a_plain_400(client):
    with pytest.raises(openai.BadRequestError, match="more than the model's context"):
        chat(client, messages=[{"role": "user", "content": "1 " * 1100}], stream=True)


# --- 4: abandoned requests stop generating -----------------------------------------------------
LONG = {"n": 16, "max_tokens": 1000, "extra_body": {"ignore_eos": True}}
"""About half a minute of generation on two CPU cores, unless it is aborted."""


def wait_for_aborts(app, before: int, rows: int, within: float = 20.0) -> float:
    start = time.monotonic()
    while app.state.batcher.stats["aborted"] < before + rows:
        assert time.monotonic() - start < within, app.state.batcher.stats
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_client_that_times_out_has_its_generation_aborted(server, client):
    app = server[1]
    before = app.state.batcher.stats["aborted"]
    impatient = client.with_options(timeout=1.0)
    with pytest.raises(openai.APITimeoutError):
        chat(impatient, **LONG)
    wait_for_aborts(app, before, rows=16)
    start = time.monotonic()
    assert chat(client, max_tokens=4).choices
    assert time.monotonic() - start < 5, "a short request does not wait for abandoned work"


def test_a_stream_closed_by_its_client_has_its_generation_aborted(server, client):
    app = server[1]
    before = app.state.batcher.stats["aborted"]
    with chat(client, stream=True, **LONG) as events:
        for k, _ in enumerate(events):
            if k == 20:
                break  # leaving the block closes the connection
    wait_for_aborts(app, before, rows=16)


def test_openai_backend_stops_at_its_batch_deadline_naming_every_failed_attempt(server):
    """Each attempt times out after 1 s; without a deadline 21 attempts would take ~25 s."""
    app = server[1]
    before = app.state.batcher.stats["aborted"]
    backend = OpenAIBackend(
        server[0],
        "tiny",
        timeout=1.0,
        deadline=3.5,
        max_retries=20,
        backoff=0.05,
        extra_body={"ignore_eos": True},
    )
    prompts = [({"role": "user", "content": f"{i}+{i}"},) for i in range(2)]
    start = time.monotonic()
    with pytest.raises(ServerError) as caught:
        backend.generate(prompts, [None, None], SamplingConfig(max_new_tokens=1000))
    assert time.monotonic() - start < 6
    message = str(caught.value)
    assert "deadline of 3.5 s" in message
    for attempt in (1, 2):
        assert f"attempt {attempt}: ReadTimeout: no answer within 1 s" in message
    wait_for_aborts(app, before, rows=6)  # the server dropped every abandoned attempt

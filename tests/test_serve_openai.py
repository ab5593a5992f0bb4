"""``selfplay-gym serve --model tiny`` driven by the official ``openai`` client, as a user of
vLLM's server drives it: routes and errors, honoured and refused parameters, seeds, stop
strings, log-probs and echo. One server (the embedded tiny model) serves the whole module."""

from __future__ import annotations

import collections
import concurrent.futures

import pytest
import torch

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.serve.main import build_parser, model_source
from selfplay_gym.serve.protocol import REFUSED
from tests import serve_fixtures as served

server, client = served.server, served.client  # the fixtures: one server per module
USER, httpx, openai = served.USER, served.httpx, served.openai


@pytest.fixture(scope="module")
def local():
    """The served model, loaded here too, to check the server's numbers against."""
    return HFBackend(model_source("tiny"))


def forward(backend, ids):
    """Raw logits of the base model over ``ids``: [len(ids), V]."""
    with torch.inference_mode():
        return backend.model(input_ids=torch.tensor([ids])).logits[0].float()


def chat(client, **fields):
    return client.chat.completions.create(**({"model": "tiny", "messages": USER} | fields))


# --- 5: the embedded model under a short name ----------------------------------------------------
def test_the_embedded_model_is_the_default_and_is_served_as_tiny(client):
    assert build_parser().parse_args([]).model == "tiny"
    assert [m.id for m in client.models.list()] == ["tiny"]
    answer = chat(client, max_tokens=4, temperature=0)
    assert answer.model == "tiny" and answer.usage.completion_tokens >= 1


# --- 6: OpenAI's shapes everywhere ---------------------------------------------------------------
def test_a_served_model_can_be_retrieved_and_an_unknown_one_is_a_404(client):
    card = client.models.retrieve("tiny")
    assert (card.id, card.object) == ("tiny", "model")
    with pytest.raises(openai.NotFoundError, match="The model `critic` does not exist"):
        client.models.retrieve("critic")


@pytest.mark.parametrize(
    ("method", "path", "status", "kind", "reason"),
    [
        ("GET", "/nothing", 404, "NotFoundError", "no route /v1/nothing; this server has"),
        ("GET", "/chat/completions", 405, "MethodNotAllowedError", "GET is not allowed on"),
        ("POST", "/models", 405, "MethodNotAllowedError", "POST is not allowed on /v1/models"),
        ("POST", "/unload_lora_adapter", 404, "NotFoundError", "no adapter named 'x'"),
    ],
)
def test_unknown_routes_and_wrong_methods_answer_in_openais_error_shape(
    server, method, path, status, kind, reason
):
    response = httpx.request(method, server[0] + path, json={"lora_name": "x"}, timeout=30)
    assert response.status_code == status
    error = response.json()["error"]
    assert (error["type"], error["code"]) == (kind, status) and reason in error["message"]


def test_an_assistant_turn_with_null_content_is_accepted(client):
    messages = [*USER, {"role": "assistant", "content": None}, {"role": "user", "content": "2+2"}]
    assert chat(client, messages=messages, max_tokens=2).choices[0].message.role == "assistant"
    with pytest.raises(openai.BadRequestError, match="content is null in a 'user' message"):
        chat(client, messages=[{"role": "user", "content": None}])


def test_plain_completions_default_to_16_tokens_as_openai_and_vllm_do(client):
    answer = client.completions.create(model="tiny", prompt="What is 37+48?", temperature=0)
    assert (answer.usage.completion_tokens, answer.choices[0].finish_reason) == (16, "length")


# --- 2: every parameter honoured or refused by name --------------------------------------------
def sample(client, seed, **fields):
    answer = chat(client, temperature=1.0, max_tokens=24, seed=seed, **fields)
    return [c.message.content for c in answer.choices]


def test_a_seed_reproduces_a_sampled_answer_whatever_shares_its_batch(client):
    alone = sample(client, 7, n=2)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # the same request amid others
        crowd = [pool.submit(sample, client, s, n=2) for s in (7, 8, 9, 7, 10, 11, 7)]
        crowd = [f.result() for f in crowd]
    assert crowd[0] == crowd[3] == crowd[6] == alone
    assert sample(client, 7) == alone[:1]  # choice k draws from seed + k, as in vLLM
    assert len({tuple(answer) for answer in crowd}) > 2, "other seeds sample other answers"
    assert len(set(alone)) == 2, "the choices of one request differ"


def greedy_ids(client, **fields):
    extra = fields.pop("extra_body", {}) | {"return_token_ids": True}
    answer = chat(client, temperature=0, max_tokens=40, extra_body=extra, **fields)
    return answer.choices[0].model_extra["token_ids"], answer.choices[0]


def test_logit_bias_penalties_min_tokens_ignore_eos_and_stop_token_ids_are_honoured(client):
    plain, choice = greedy_ids(client)
    assert choice.finish_reason == "stop" and plain[-1] == 2 and len(plain) < 30  # EOS ends it
    forced, _ = greedy_ids(client, logit_bias={"50": 100})
    assert forced == [50] * 40
    banned, _ = greedy_ids(client, logit_bias={str(plain[0]): -100})
    assert banned[0] != plain[0]
    for penalty in ("frequency_penalty", "presence_penalty"):
        penalised, _ = greedy_ids(client, **{penalty: 2.0})
        most = max(collections.Counter(penalised).values())
        assert most < max(collections.Counter(plain).values()), penalty
    longer, _ = greedy_ids(client, extra_body={"min_tokens": 30})
    assert len(longer) >= 30 and 2 not in longer[:29]
    past_eos, choice = greedy_ids(client, extra_body={"ignore_eos": True})
    assert (len(past_eos), choice.finish_reason) == (40, "length") and past_eos[
        : len(plain)
    ] == plain
    cut, choice = greedy_ids(client, extra_body={"stop_token_ids": [plain[3]]})
    assert cut == plain[: plain.index(plain[3]) + 1]
    assert (choice.finish_reason, choice.model_extra["stop_reason"]) == ("stop", plain[3])


def test_penalties_and_bias_shift_the_distribution_that_is_sampled_and_reported(client, local):
    """vLLM's definitions: logits + bias - frequency * count - presence * [count > 0], over the
    answer's own tokens; the reported log-probs are of that distribution."""
    answer = chat(
        client,
        temperature=0,
        max_tokens=12,
        logprobs=True,
        frequency_penalty=0.5,
        presence_penalty=0.3,
        logit_bias={"50": 2.0},
        extra_body={"return_token_ids": True},
    )
    prompt, ids = answer.model_extra["prompt_token_ids"], answer.choices[0].model_extra["token_ids"]
    reported = [e.logprob for e in answer.choices[0].logprobs.content]
    logits = forward(local, prompt + ids)[len(prompt) - 1 : -1]  # [T, V]
    counts = torch.zeros(logits.shape[-1])
    for t, token in enumerate(ids):
        shifted = logits[t] - 0.5 * counts - 0.3 * (counts > 0).float()
        shifted[50] += 2.0
        assert int(shifted.argmax()) == token
        assert abs(float(torch.log_softmax(shifted, -1)[token]) - reported[t]) < 1e-4
        counts[token] += 1


@pytest.mark.parametrize("cut", [{}, {"top_p": 0.5}, {"extra_body": {"top_k": 3}}])
def test_sampled_tokens_follow_the_models_distribution_cut_by_top_k_and_top_p(client, local, cut):
    """256 first tokens at temperature 2.5 against the local model's distribution."""
    extra = cut.get("extra_body", {}) | {"return_token_ids": True}
    answer = chat(
        client,
        messages=[{"role": "user", "content": "Write a question"}],
        **{k: v for k, v in cut.items() if k != "extra_body"},
        extra_body=extra,
        n=256,
        max_tokens=1,
        temperature=2.5,
        seed=0,
    )
    logits = forward(local, answer.model_extra["prompt_token_ids"])[-1]
    probs, order = torch.softmax(logits / 2.5, -1).sort(descending=True)
    keep = len(probs)
    if "top_p" in cut:
        keep = int(((probs.cumsum(-1) - probs) < cut["top_p"]).sum())
    if "extra_body" in cut:
        keep = cut["extra_body"]["top_k"]
    allowed = probs[:keep] / probs[:keep].sum()
    counts = collections.Counter(c.model_extra["token_ids"][0] for c in answer.choices)
    assert set(counts) <= set(order[:keep].tolist())
    for token, p in zip(order[:3].tolist(), allowed[:3].tolist(), strict=True):
        assert abs(counts[token] / 256 - p) < 0.07, (token, counts[token], p)


REFUSED_VALUES = {name: {"type": "json_object"} for name in REFUSED} | {
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    "tool_choice": "required",
    "prompt_logprobs": 1,
    "best_of": 2,
    "use_beam_search": True,
}


def test_every_refused_parameter_of_a_request_is_named_at_once(client):
    with pytest.raises(openai.BadRequestError) as caught:
        chat(
            client,
            response_format={"type": "json_object"},
            tools=REFUSED_VALUES["tools"],
            extra_body={
                k: v for k, v in REFUSED_VALUES.items() if k not in ("response_format", "tools")
            },
        )
    error = caught.value.body
    assert error["param"] == ", ".join(REFUSED)
    for name, (_, why) in REFUSED.items():
        assert f"{name}: {why}" in error["message"]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_each_refused_parameter_is_a_400_naming_it_on_both_endpoints(client, name):
    with pytest.raises(openai.BadRequestError, match=f"unsupported parameters {name} "):
        chat(client, extra_body={name: REFUSED_VALUES[name]})
    with pytest.raises(openai.BadRequestError, match=f"unsupported parameters {name} "):
        client.completions.create(
            model="tiny", prompt="1+1", extra_body={name: REFUSED_VALUES[name]}
        )


def test_values_that_ask_for_nothing_are_accepted(client):
    answer = chat(
        client,
        max_tokens=2,
        response_format={"type": "text"},
        tool_choice="none",
        user="someone",
        extra_body={"best_of": 1, "skip_special_tokens": True, "repetition_penalty": 1.0},
    )
    assert answer.choices[0].finish_reason in ("stop", "length")


# --- 3: stop strings, alternatives' log-probs, echo ----------------------------------------------
def test_a_stop_string_cuts_the_text_before_it_on_both_endpoints(client):
    full = chat(client, temperature=0, max_tokens=40).choices[0].message.content
    stop = full[6:9]
    later = full[12:14]
    for stops in (stop, [later, stop]):  # the first to occur ends the text
        choice = chat(client, temperature=0, max_tokens=40, stop=stops).choices[0]
        assert choice.message.content == full[: full.index(stop)]
        assert (choice.finish_reason, choice.model_extra["stop_reason"]) == ("stop", stop)
    text = client.completions.create(model="tiny", prompt="37+48", temperature=0).choices[0].text
    cut = client.completions.create(model="tiny", prompt="37+48", temperature=0, stop=[text[4:6]])
    assert cut.choices[0].text == text[: text.index(text[4:6])]


def test_chat_top_logprobs_are_the_models_top_tokens_at_each_step(client, local):
    answer = chat(
        client,
        temperature=0,
        max_tokens=12,
        logprobs=True,
        top_logprobs=5,
        extra_body={"return_token_ids": True, "return_tokens_as_token_ids": True},
    )
    choice = answer.choices[0]
    ids = choice.model_extra["token_ids"]
    logits = forward(local, answer.model_extra["prompt_token_ids"] + ids)[-len(ids) - 1 : -1]
    top = torch.log_softmax(logits, -1).topk(5, dim=-1)  # [T, 5]
    for t, entry in enumerate(choice.logprobs.content):
        assert [a.token for a in entry.top_logprobs] == [f"token_id:{i}" for i in top.indices[t]]
        got = torch.tensor([a.logprob for a in entry.top_logprobs])
        assert torch.allclose(got, top.values[t], atol=1e-4)
        assert entry.token == entry.top_logprobs[0].token  # greedy: the sampled one is the top
    with pytest.raises(openai.BadRequestError, match="top_logprobs needs logprobs=true"):
        chat(client, top_logprobs=2)


@pytest.mark.parametrize("k", [1, 5])
def test_completions_logprobs_k_give_k_alternatives_plus_the_sampled_token(client, k):
    answer = client.completions.create(
        model="tiny", prompt="37+48", temperature=0.8, max_tokens=10, logprobs=k, seed=3
    )
    logprobs = answer.choices[0].logprobs
    assert len(logprobs.tokens) == answer.usage.completion_tokens == len(logprobs.top_logprobs)
    for token, logprob, top in zip(
        logprobs.tokens, logprobs.token_logprobs, logprobs.top_logprobs, strict=True
    ):
        assert k <= len(top) <= k + 1 and top[token] == logprob
        assert sorted(top.values(), reverse=True)[:k] == list(top.values())[:k]


def test_echo_with_logprobs_scores_the_prompt_as_evaluation_harnesses_need(client, local):
    prompt = "Reason step by step. 37+48"
    ids = local.tokenizer(prompt)["input_ids"]
    expected = local.logprobs(None, [ids[:1]], [ids[1:]], temperature=1.0)[0]  # the trainer's rule
    scored = client.completions.create(
        model="tiny", prompt=prompt, echo=True, logprobs=1, max_tokens=0, temperature=0
    )
    choice = scored.choices[0]
    assert choice.text == prompt and len(choice.logprobs.tokens) == len(ids)
    assert choice.logprobs.token_logprobs[0] is None and choice.logprobs.top_logprobs[0] is None
    assert torch.allclose(torch.tensor(choice.logprobs.token_logprobs[1:]), expected, atol=1e-4)
    assert choice.logprobs.text_offset[0] == 0
    plain = client.completions.create(model="tiny", prompt=prompt, temperature=0, max_tokens=6)
    both = client.completions.create(
        model="tiny", prompt=prompt, echo=True, logprobs=1, max_tokens=6, temperature=0
    )
    logprobs = both.choices[0].logprobs
    assert both.choices[0].text == prompt + plain.choices[0].text
    assert logprobs.token_logprobs[: len(ids)] == choice.logprobs.token_logprobs
    assert len(logprobs.tokens) == len(ids) + both.usage.completion_tokens
    assert logprobs.text_offset[len(ids)] == len(prompt)
    with pytest.raises(openai.BadRequestError, match="max_tokens=0 asks for nothing"):
        client.completions.create(model="tiny", prompt=prompt, max_tokens=0)

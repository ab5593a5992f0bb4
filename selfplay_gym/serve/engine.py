"""The model side of the server: prompts -> token ids -> rows -> one mixed-adapter decode.

Everything here runs on the server's single model thread (see batcher.py). Chat prompts go
through ``HFBackend.encode_prompt`` (agents/prompts.py, the rule the trainer uses), so the token ids the
server returns are exactly what the trainer would have built. A prompt that does not fit the
context is refused (the client cannot see a truncation warning) rather than cut. Each job is
answered the moment its last row ends (``Job.resolve``), while the others go on generating.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.prompts import EncodedPrompt
from selfplay_gym.agents.scoring import pack
from selfplay_gym.serve.batcher import Job
from selfplay_gym.serve.decoder import Row, RowSampling, decode


def encode(backend: HFBackend, prompt: Any, max_new_tokens: int) -> EncodedPrompt:
    """Chat messages (a tuple), text, or token ids -> prompt ids that fit with the completion."""
    if max_new_tokens >= backend.max_context:
        raise ValueError(
            f"max_tokens={max_new_tokens} leaves no room for a prompt in the model's context of "
            f"{backend.max_context} tokens; lower max_tokens"
        )
    if isinstance(prompt, tuple):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut prompt is refused below, not warned about
            encoded = backend.encode_prompt(prompt, max_new_tokens)
        ids, length = encoded.ids, len(encoded.ids) + encoded.truncated
    elif isinstance(prompt, str):
        ids = backend.tokenizer(prompt)["input_ids"]
        length = len(ids)
    else:
        ids, length = list(prompt), len(prompt)
        vocab = len(backend.tokenizer)
        if any(not 0 <= i < vocab for i in ids):
            raise ValueError(f"prompt token ids must lie in [0, {vocab})")
    if not ids:
        raise ValueError("the prompt is empty")
    if length + max_new_tokens > backend.max_context:
        raise ValueError(
            f"the prompt has {length} tokens and max_tokens is {max_new_tokens}, more than the "
            f"model's context of {backend.max_context} tokens; shorten the prompt or lower "
            "max_tokens"
        )
    return EncodedPrompt(list(ids), 0)


def check_sampling(backend: HFBackend, sampling: RowSampling) -> None:
    """What only the model can check: token ids in logit_bias and stop_token_ids."""
    vocab = backend.model.get_output_embeddings().weight.shape[0]
    for name, ids in (
        ("logit_bias", [i for i, _ in sampling.logit_bias]),
        ("stop_token_ids", sampling.stop_token_ids),
    ):
        if any(not 0 <= i < vocab for i in ids):
            raise ValueError(f"{name}: token ids must lie in [0, {vocab})")


@torch.inference_mode()
def prompt_logprobs(
    backend: HFBackend, adapter: str | None, ids: list[int], temperature: float, top: int
) -> list[tuple[float | None, list[tuple[int, float]]]]:
    """Each prompt token's log-prob given the tokens before it, with ``top`` alternatives, under
    the distribution generation reports (temperature-scaled); None for the first token."""
    batch = pack([ids[:1]], [ids[1:]], backend.tokenizer.pad_token_id).to(backend.device)
    with backend.store.using(adapter):
        backend.model.eval()
        logits = backend.model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
        ).logits[0, : len(ids) - 1]  # [P - 1, V]: column t predicts token t + 1
    logp = torch.log_softmax(logits.float() / (temperature or 1.0), dim=-1)
    picked = logp.gather(1, torch.tensor(ids[1:], device=logp.device)[:, None]).squeeze(1)
    tops = logp.topk(top, dim=-1) if top else None
    out: list[tuple[float | None, list[tuple[int, float]]]] = [(None, [])]
    for t, value in enumerate(picked.tolist()):
        alternatives = (
            list(zip(tops.indices[t].tolist(), tops.values[t].tolist(), strict=True)) if top else []
        )
        out.append((value, alternatives))
    return out


def job_rows(backend: HFBackend, job: Job) -> list[Row]:
    """One row per choice, prompt by prompt; choice k of a prompt is seeded ``seed + k``."""
    s = job.sampling
    check_sampling(backend, s)
    if job.adapter is not None:
        backend.store.require(job.adapter)
    rows = []
    for prompt in job.prompts:
        ids = encode(backend, prompt, max(s.max_tokens, 1)).ids
        echo = None
        if job.echo:
            echo = prompt_logprobs(backend, job.adapter, ids, s.temperature, s.top_logprobs)
        for k in range(job.n):
            row = Row(ids, s, seed=None if s.seed is None else s.seed + k, echo=echo)
            row.cancelled = lambda: job.cancelled
            if job.stream is not None:
                row.stream = _streamer(job.stream, len(rows))
            rows.append(row)
    return rows


def _streamer(stream, index: int):
    """Row callbacks -> the job's, which names the choice."""
    return lambda row, step: stream(index, row, step)


def run_jobs(
    backend: HFBackend, jobs: Sequence[Job], stats: dict[str, int] | None = None
) -> list[list[Row] | Exception]:
    """Jobs -> one decode over all their rows; a job's bad prompt fails it alone. ``stats``
    counts the rows aborted because their client had gone (``"aborted"``)."""
    results: list[list[Row] | Exception] = []
    rows: list[Row] = []
    adapters: list[str | None] = []
    owner: dict[int, int] = {}  # id(row) -> job
    left: list[int] = []  # rows still generating, per job
    for j, job in enumerate(jobs):
        try:
            mine = job_rows(backend, job)
        except ValueError as exc:
            mine = exc
        except Exception as exc:  # e.g. a chat template that rejects a role: still the request's
            mine = ValueError(f"could not encode the prompt: {type(exc).__name__}: {exc}")
        results.append(mine)
        if isinstance(mine, Exception):
            job.resolve(mine)
            left.append(0)
            continue
        job.admit()
        if job.sampling.max_tokens == 0:  # echo only: nothing to generate
            for row in mine:
                row.finish_reason = "length"
            job.resolve(mine)
        else:
            rows.extend(mine)
            adapters.extend([job.adapter] * len(mine))
            owner.update((id(row), j) for row in mine)
        left.append(len(mine) if job.sampling.max_tokens else 0)

    def finished(row: Row) -> None:
        if row.finish_reason == "abort" and stats is not None:
            stats["aborted"] = stats.get("aborted", 0) + 1
        j = owner[id(row)]
        left[j] -= 1
        if left[j] == 0:
            jobs[j].resolve(results[j])

    if rows:
        decode(backend, rows, adapters, finished)
    return results

"""The model side of the server: prompts -> token ids -> one mixed-adapter generate on HFBackend.

Everything here runs on the server's single model thread (see batcher.py). Chat prompts go
through ``HFBackend.encode_prompt`` (agents/prompts.py, the rule the trainer uses), so the token ids the
server returns are exactly what the trainer would have built. A prompt that does not fit the
context is refused (the client cannot see a truncation warning) rather than cut.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.prompts import EncodedPrompt
from selfplay_gym.serve.batcher import Job
from selfplay_gym.types import Completion


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


def run_jobs(backend: HFBackend, jobs: Sequence[Job]) -> list[list[Completion] | Exception]:
    """Jobs sharing one sampling config -> one generate call; a job's bad prompt fails it alone."""
    results: list[list[Completion] | Exception] = []
    prompts: list[EncodedPrompt] = []
    adapters: list[str | None] = []
    spans: list[tuple[int, int, int]] = []  # (job, first prompt, prompt count)
    for j, job in enumerate(jobs):
        try:
            encoded = [encode(backend, p, job.sampling.max_new_tokens) for p in job.prompts]
            if job.adapter is not None:
                backend.store.require(job.adapter)
        except ValueError as exc:
            results.append(exc)
            continue
        except Exception as exc:  # e.g. a chat template that rejects a role: still the request's
            results.append(ValueError(f"could not encode the prompt: {type(exc).__name__}: {exc}"))
            continue
        results.append([])
        spans.append((j, len(prompts), len(encoded)))
        prompts.extend(encoded)
        adapters.extend([job.adapter] * len(encoded))
    if prompts:
        completions = backend.generate_encoded(prompts, adapters, jobs[0].sampling)
        for j, first, count in spans:
            results[j] = completions[first : first + count]
    return results

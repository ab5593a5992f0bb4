"""The server's decoder: one ``generate`` call over rows that each sample their own way.

``HFBackend.generate`` samples a batch with one config and the global RNG. The server batches
requests that differ in everything, so each row here (one choice of one request) carries its
own settings, generator and state. ``model.generate`` still runs the forward passes (KV cache,
left padding, peft's mixed-adapter batch); ``_Choose``, a logits processor, picks every row's
token itself and forces it (every other logit -inf under greedy search), and ``_Finished``
ends each row on its own terms (EOS, stop token or string, max_tokens, a client gone).

Per row and step, in vLLM's order: logit_bias, presence and frequency penalties (over the
row's own output), min_tokens (end tokens masked), temperature. The reported log-probs are of
that distribution (vLLM's ``processed_logprobs``; with none of the first three, exactly what
``HFBackend`` records). Top-k then top-p cut it, and the row's generator draws the token:
seeded with the request's seed plus the choice index, so a seed reproduces a request whatever
else shares its batch, as in vLLM.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from selfplay_gym.agents.hf import BASE, HFBackend


@dataclass(frozen=True)
class RowSampling:
    """One request's sampling settings (OpenAI's and vLLM's names and meanings)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    """0: off."""
    max_tokens: int = 16
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()
    min_tokens: int = 0
    ignore_eos: bool = False
    stop: tuple[str, ...] = ()
    """Strings that end the completion; the text is cut before them."""
    stop_token_ids: tuple[int, ...] = ()
    top_logprobs: int = 0
    """Alternatives recorded per token."""


@dataclass(frozen=True)
class Step:
    """What one row gained in one step: its token, and the text that may be shown now."""

    token: int
    logprob: float
    top: list[tuple[int, float]]
    text: str
    finish_reason: str | None
    stop_reason: str | int | None = None


@dataclass(eq=False)
class Row:
    """One choice: its prompt and settings, and what it has generated so far."""

    prompt_ids: list[int]
    sampling: RowSampling
    seed: int | None = None
    stream: Callable[[Row, Step], None] | None = None
    """Called on the model thread after each token (server-sent events)."""
    cancelled: Callable[[], bool] = lambda: False
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[list[tuple[int, float]]] = field(default_factory=list)
    text: str = ""
    sent: int = 0
    """Characters of ``text`` already streamed."""
    finish_reason: str | None = None
    stop_reason: str | int | None = None
    generator: _Draws | None = None
    echo: list[tuple[float | None, list[tuple[int, float]]]] | None = None
    """With ``echo``: each prompt token's log-prob (None for the first) and alternatives."""


class _Draws:
    """A row's uniform numbers in [0, 1), from its own CPU generator."""

    def __init__(self, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def random_uniform(self) -> torch.Tensor:
        return torch.rand(1, generator=self.generator, dtype=torch.float64)


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters not to stream yet: half a UTF-8 character, or what could
    still become a stop string."""
    held = len(text) - len(text.rstrip("\ufffd"))
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), held, -1):
            if stop.startswith(text[-k:]):
                held = k
                break
    return held


class _Rows:
    """The state shared by the processor and the stopping criterion of one generate call."""

    def __init__(self, backend: HFBackend, rows: list[Row], on_finish: Callable[[Row], None]):
        self.rows, self.on_finish = rows, on_finish
        self.tokenizer, self.end_ids = backend.tokenizer, set(backend.end_ids)
        self.counts: torch.Tensor | None = None  # [B, V] output token counts, for penalties

    def finish(self, row: Row, reason: str, stop: str | int | None = None) -> None:
        row.finish_reason, row.stop_reason = reason, stop
        self.on_finish(row)

    def adjust(self, scores: torch.Tensor) -> torch.Tensor:
        """logit_bias, penalties and min_tokens applied to the raw logits [B, V]."""
        logits = scores
        if any(r.sampling.presence_penalty or r.sampling.frequency_penalty for r in self.rows):
            if self.counts is None:
                self.counts = torch.zeros_like(scores)
            presence = scores.new_tensor([r.sampling.presence_penalty for r in self.rows])
            frequency = scores.new_tensor([r.sampling.frequency_penalty for r in self.rows])
            logits = logits - frequency[:, None] * self.counts
            logits = logits - presence[:, None] * (self.counts > 0).float()
        for i, row in enumerate(self.rows):
            if row.sampling.logit_bias:
                ids, bias = zip(*row.sampling.logit_bias, strict=True)
                logits[i, list(ids)] += scores.new_tensor(bias)
            if len(row.tokens) < row.sampling.min_tokens:
                logits[i, sorted(self.end_ids | set(row.sampling.stop_token_ids))] = float("-inf")
        return logits

    def choose(self, scaled: torch.Tensor) -> torch.Tensor:
        """Each row's token [B] from its temperature-scaled logits [B, V]: argmax at
        temperature 0; else top-k and top-p (HF's semantics) cut the distribution, and one
        uniform number from the row's own generator (on the CPU, so a seed gives the same
        draws on any device) picks a token by inverse CDF. Vectorised over the rows."""
        chosen = scaled.argmax(-1)
        rows = [
            i
            for i, r in enumerate(self.rows)
            if r.finish_reason is None and r.sampling.temperature > 0
        ]
        if not rows:
            return chosen
        settings = [self.rows[i].sampling for i in rows]
        values, order = scaled[rows], None  # [S, V]
        vocab = values.shape[-1]
        if any(s.top_k or s.top_p < 1 for s in settings):
            values, order = values.sort(dim=-1, descending=True)
            top_k = values.new_tensor([s.top_k or vocab for s in settings])
            ranks = torch.arange(vocab, device=values.device)
            values = values.masked_fill(ranks[None, :] >= top_k[:, None], float("-inf"))
            probs = values.softmax(-1)
            top_p = values.new_tensor([s.top_p for s in settings])
            values = values.masked_fill(probs.cumsum(-1) - probs >= top_p[:, None], float("-inf"))
        cdf = values.softmax(-1).double().cumsum(-1)  # [S, V]
        draws = torch.cat([self._generator(i).random_uniform() for i in rows]).to(cdf.device)
        picked = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None], right=True)  # [S, 1]
        last = (cdf < cdf[:, -1:]).sum(-1, keepdim=True)  # the last token of positive mass
        picked = torch.minimum(picked, last)
        if order is not None:
            picked = order.gather(1, picked)
        chosen[rows] = picked.squeeze(1)
        return chosen

    def _generator(self, i: int) -> _Draws:
        row = self.rows[i]
        if row.generator is None:
            seed = row.seed if row.seed is not None else secrets.randbits(63)
            row.generator = _Draws(seed)
        return row.generator

    def record(self, row: Row, token: int, logprob: float, top: list[tuple[int, float]]) -> None:
        """Append a token, stream what may be shown, end the row if it should end. The row is
        complete before ``on_finish`` hears of it: the request may be answered at once."""
        s = row.sampling
        row.tokens.append(token)
        row.logprobs.append(logprob)
        row.top.append(top)
        reason, stop = None, None
        live_text = bool(s.stop) or row.stream is not None
        if live_text:
            row.text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        if token in self.end_ids and not s.ignore_eos:
            reason = "stop"
        elif token in s.stop_token_ids:
            reason, stop = "stop", token
        elif s.stop and len(row.tokens) >= s.min_tokens:
            start = max(0, row.sent - max(map(len, s.stop)))
            found = [(row.text.find(x, start), x) for x in s.stop if row.text.find(x, start) >= 0]
            if found:
                at, stop = min(found)
                row.text, reason = row.text[:at], "stop"
        if reason is None and len(row.tokens) >= s.max_tokens:
            reason = "length"
        if not live_text and reason is not None:
            row.text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        if row.stream is not None:
            held = 0 if reason else _held_back(row.text, s.stop)
            end = max(len(row.text) - held, row.sent)
            text, row.sent = row.text[row.sent : end], end
            row.stream(row, Step(token, logprob, top, text, reason, stop))
        if reason is not None:
            self.finish(row, reason, stop)


class _Choose(LogitsProcessor):
    def __init__(self, state: _Rows):
        self.state = state

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        state = self.state
        for row in state.rows:
            if row.finish_reason is None and row.cancelled():
                state.finish(row, "abort")
        logits = state.adjust(scores)
        temperature = scores.new_tensor([r.sampling.temperature or 1.0 for r in state.rows])
        scaled = logits / temperature[:, None]
        logp = torch.log_softmax(scaled, dim=-1)  # [B, V] the distribution reported
        chosen = state.choose(scaled)  # [B]
        picked = logp.gather(1, chosen[:, None]).squeeze(1).tolist()
        width = max(r.sampling.top_logprobs for r in state.rows)
        tops = logp.topk(width, dim=-1) if width else None
        top_values = tops.values.tolist() if tops is not None else None
        top_ids = tops.indices.tolist() if tops is not None else None
        tokens = chosen.tolist()
        for i, row in enumerate(state.rows):
            if row.finish_reason is not None:
                continue
            n = row.sampling.top_logprobs
            top = list(zip(top_ids[i][:n], top_values[i][:n], strict=True)) if n else []
            state.record(row, tokens[i], picked[i], top)
        if state.counts is not None:
            state.counts[torch.arange(len(tokens), device=scores.device), chosen] += 1
        forced = torch.full_like(scores, float("-inf"))
        forced[torch.arange(len(tokens), device=scores.device), chosen] = 0.0
        return forced


class _Finished(StoppingCriteria):
    def __init__(self, state: _Rows):
        self.state = state

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        done = [r.finish_reason is not None for r in self.state.rows]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def decode(
    backend: HFBackend,
    rows: Sequence[Row],
    adapters: Sequence[str | None],
    on_finish: Callable[[Row], None] = lambda row: None,
) -> None:
    """Generate every row to its end, in length-sorted generate calls of at most
    ``backend.generation_batch_size`` rows; ``on_finish`` hears of each row as it ends."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i].prompt_ids))
    for start in range(0, len(order), backend.generation_batch_size):
        chunk = order[start : start + backend.generation_batch_size]
        live = []
        for i in chunk:
            if rows[i].cancelled():
                rows[i].finish_reason = "abort"
                on_finish(rows[i])
            else:
                live.append(i)
        if live:
            _generate(backend, [rows[i] for i in live], [adapters[i] for i in live], on_finish)


@torch.inference_mode()
def _generate(backend, rows: list[Row], adapters: list[str | None], on_finish) -> None:
    pad = backend.tokenizer.pad_token_id
    width = max(len(r.prompt_ids) for r in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)  # [B, P]
    attention = torch.zeros_like(input_ids)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row.prompt_ids) :] = torch.tensor(row.prompt_ids)
        attention[i, width - len(row.prompt_ids) :] = 1
    state = _Rows(backend, rows, on_finish)
    kwargs = {}
    distinct = set(adapters)
    if backend.store.has_adapters and len(distinct) > 1:
        kwargs["adapter_names"] = [a or BASE for a in adapters]
    single = backend.store.using(distinct.pop()) if len(distinct) == 1 else contextlib.nullcontext()
    backend.model.eval()
    with single:
        backend.model.generate(
            input_ids=input_ids.to(backend.device),
            attention_mask=attention.to(backend.device),
            do_sample=False,
            max_new_tokens=max(r.sampling.max_tokens for r in rows),
            logits_processor=LogitsProcessorList([_Choose(state)]),
            stopping_criteria=StoppingCriteriaList([_Finished(state)]),
            pad_token_id=pad,
            eos_token_id=None,  # rows end in _Finished, each on its own terms
            **kwargs,
        )

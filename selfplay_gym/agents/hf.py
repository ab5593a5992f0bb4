"""The transformers backend: one base model in memory, one LoRA adapter per trained role.

Every role shares the base weights; peft adapters are the only per-role state. A batch whose
prompts belong to different roles is generated in one ``generate`` call (peft's mixed-adapter
``adapter_names``), length-bucketed into micro-batches. The reference policy for KL is the
same model with adapters disabled: no second copy of the weights.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from selfplay_gym.agents.adapters import AdapterStore, LoraSettings
from selfplay_gym.agents.loading import load_model_and_tokenizer
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.agents.prompts import (
    EncodedPrompt,
    encode_chat,
    end_token_ids,
    fit_context,
    read_chat_template,
)
from selfplay_gym.agents.scoring import completion_logprobs, pack, score_completions
from selfplay_gym.types import Completion, Messages

BASE = "__base__"
"""peft's name for "no adapter" in a mixed-adapter batch."""


def default_device_and_dtype(device: str | None, dtype: Any) -> tuple[torch.device, torch.dtype]:
    """CPU runs fp32; CUDA runs bf16 (the format the papers train in)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype is None:
        return dev, torch.bfloat16 if dev.type == "cuda" else torch.float32
    return dev, getattr(torch, dtype) if isinstance(dtype, str) else dtype


class _RecordLogprobs(LogitsProcessor):
    """Keeps log p(token) of each sampled token under the temperature-scaled distribution.

    It sits after temperature and before top-k/top-p, so the recorded numbers are what a
    recomputation with ``log_softmax(logits / T)`` gives (vLLM and TRL report the same).
    The chosen token is known only at the next call, so one step of log-softmax is kept.
    """

    def __init__(self) -> None:
        self.previous: torch.Tensor | None = None  # [B, V]
        self.steps: list[torch.Tensor] = []  # each [B]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.collect(input_ids[:, -1])
        self.previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def collect(self, chosen: torch.Tensor) -> None:
        if self.previous is not None:
            self.steps.append(self.previous.gather(1, chosen[:, None]).squeeze(1))
            self.previous = None


CHECKPOINTING_ABOVE = 1_000_000_000
"""Parameters above which gradient checkpointing is on by default: at 4B-8B the activations
of a 1024-token update dominate memory (docs/scaling.md); below 1B they rarely do."""


def use_gradient_checkpointing(model: Any, wanted: bool | None) -> bool:
    """Turn on the base model's gradient checkpointing when ``wanted`` (None: by size).

    Non-reentrant checkpointing recomputes each layer in the backward pass; with a frozen base it
    needs no input that requires grad, so only the LoRA adapters train, as without it. It acts
    in train mode only, i.e. in the update, never in generation or scoring.
    """
    size = sum(p.numel() for p in model.parameters())
    on = size > CHECKPOINTING_ABOVE if wanted is None else wanted
    if on:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise ValueError(f"{type(model).__name__} does not support gradient checkpointing; "
                             "run with --model.gradient-checkpointing False")
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.20's name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return on


class HFBackend:
    """Generation and scoring on a transformers model with one peft adapter per role.

    Args:
        model: a hub id, a local directory, or a loaded ``PreTrainedModel``.
        tokenizer: required when ``model`` is an object; loaded with it otherwise.
        adapters: LoRA adapters to create now (more with ``add_adapter``).
        lora: LoRA settings for new adapters.
        max_context: prompt + completion token limit (the model's own by default).
        generation_batch_size: prompts per ``generate`` call (length-bucketed).
        seed: adapters are initialised from (seed, adapter name), the same in every run.
        chat_template: a jinja chat template, or a file holding one, replacing the tokenizer's.
        gradient_checkpointing: recompute the base model's activations in the backward pass
            instead of keeping them (None: on above ``CHECKPOINTING_ABOVE`` parameters).
    """

    def __init__(
        self,
        model: str | Path | PreTrainedModel,
        tokenizer: Any = None,
        *,
        adapters: Sequence[str] = (),
        lora: LoraSettings | None = None,
        device: str | None = None,
        dtype: Any = None,
        max_context: int | None = None,
        generation_batch_size: int = 64,
        seed: int = 0,
        chat_template: str | None = None,
        gradient_checkpointing: bool | None = None,
    ):
        self.device, self.dtype = default_device_and_dtype(device, dtype)
        if isinstance(model, (str, Path)):
            model, tokenizer = load_model_and_tokenizer(model, self.device, self.dtype)
        elif tokenizer is None:
            raise ValueError("pass the tokenizer along with a loaded model: HFBackend(model, tokenizer)")
        tokenizer.padding_side = "left"
        if chat_template:
            tokenizer.chat_template = read_chat_template(chat_template)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.gradient_checkpointing = use_gradient_checkpointing(model, gradient_checkpointing)
        self.store = AdapterStore(model, lora or LoraSettings(), seed)
        for name in adapters:
            self.store.add(name)
        limit = getattr(model.config, "max_position_embeddings", None) or 4096
        self.max_context = max_context or limit
        self.generation_batch_size = generation_batch_size
        self.truncation_warnings = 0
        self.end_ids = end_token_ids(tokenizer, getattr(model, "generation_config", None))
        """Every id that ends a completion (``end_token_ids``)."""

    @property
    def model(self):
        return self.store.model

    def add_adapter(self, name: str, lora: LoraSettings | None = None) -> None:
        self.store.add(name, lora)

    def save_adapter(self, name: str, path: str | Path) -> Path:
        return self.store.save(name, path)

    def load_adapter(self, name: str, path: str | Path) -> None:
        self.store.load(name, path)

    def remove_adapter(self, name: str) -> None:
        self.store.remove(name)

    # --- tokenisation -----------------------------------------------------------------------
    def encode_prompt(self, messages: Messages, max_new_tokens: int) -> EncodedPrompt:
        """Chat template -> token ids, cut from the left to fit the context (and reported)."""
        full = encode_chat(self.tokenizer, messages)
        ids, dropped = fit_context(full, self.max_context, max_new_tokens)
        if dropped:
            self.truncation_warnings += 1
            warnings.warn(
                f"prompt of {len(full)} tokens cut to its last {len(ids)} to fit the context "
                f"({self.max_context} tokens with max_new_tokens={max_new_tokens})",
                stacklevel=3,
            )
        return EncodedPrompt(ids, dropped)

    # --- generation -------------------------------------------------------------------------
    def generate(
        self, prompts: Sequence[Messages], adapters: Sequence[str | None], sampling: SamplingConfig
    ) -> list[Completion]:
        """One completion per prompt; prompts may use different adapters (None = base)."""
        if len(prompts) != len(adapters):
            raise ValueError(f"{len(prompts)} prompts but {len(adapters)} adapter names")
        for name in set(adapters) - {None}:
            self.store.require(name)
        cache: dict[tuple, EncodedPrompt] = {}
        encoded = []
        for messages in prompts:
            key = tuple((m["role"], m["content"]) for m in messages)
            if key not in cache:
                cache[key] = self.encode_prompt(messages, sampling.max_new_tokens)
            encoded.append(cache[key])
        return self.generate_encoded(encoded, adapters, sampling)

    def generate_encoded(
        self, prompts: Sequence[EncodedPrompt], adapters: Sequence[str | None], sampling: SamplingConfig
    ) -> list[Completion]:
        """``generate`` from prompt token ids: length-bucketed micro-batches, order kept."""
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i].ids))
        out: list[Completion | None] = [None] * len(prompts)
        for start in range(0, len(order), self.generation_batch_size):
            chunk = order[start : start + self.generation_batch_size]
            results = self._generate_batch([prompts[i] for i in chunk], [adapters[i] for i in chunk], sampling)
            for i, completion in zip(chunk, results, strict=True):
                out[i] = completion
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _generate_batch(self, prompts: list[EncodedPrompt], adapters: list[str | None], sampling: SamplingConfig):
        pad = self.tokenizer.pad_token_id
        ends = self.end_ids
        width = max(len(p.ids) for p in prompts)
        input_ids = torch.full((len(prompts), width), pad, dtype=torch.long)  # [B, P]
        attention = torch.zeros_like(input_ids)
        for row, prompt in enumerate(prompts):
            input_ids[row, width - len(prompt.ids) :] = torch.tensor(prompt.ids)
            attention[row, width - len(prompt.ids) :] = 1
        recorder = _RecordLogprobs()
        greedy = sampling.temperature == 0
        processors = [] if greedy else [TemperatureLogitsWarper(sampling.temperature)]
        processors.append(recorder)
        if not greedy and sampling.top_k:
            processors.append(TopKLogitsWarper(sampling.top_k))
        if not greedy and sampling.top_p < 1:
            processors.append(TopPLogitsWarper(sampling.top_p))
        kwargs: dict[str, Any] = {}
        distinct = set(adapters)
        if self.store.has_adapters and len(distinct) > 1:
            kwargs["adapter_names"] = [a or BASE for a in adapters]
        if not greedy:  # our processors do the warping; switch off the model's own defaults
            kwargs.update(temperature=1.0, top_k=0, top_p=1.0)
        # One adapter for the whole batch: select it rather than pass adapter_names, whose
        # per-layer sub-batch split in peft costs more than the LoRA matmuls themselves.
        single = self.store.using(distinct.pop()) if len(distinct) == 1 else contextlib.nullcontext()
        self.model.eval()
        with single:
            sequences = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention.to(self.device),
                do_sample=not greedy,
                max_new_tokens=sampling.max_new_tokens,
                logits_processor=LogitsProcessorList(processors),
                pad_token_id=pad,
                eos_token_id=ends,
                **kwargs,
            )  # [B, P + T]
        new = sequences[:, width:]
        recorder.collect(new[:, -1])
        logprobs = torch.stack(recorder.steps, dim=1).cpu() if recorder.steps else None  # [B, T]
        return [self._completion(p, new[row].tolist(), logprobs, row, ends) for row, p in enumerate(prompts)]

    def _completion(self, prompt: EncodedPrompt, tokens: list[int], logprobs, row: int, ends) -> Completion:
        end = next((i for i, token in enumerate(tokens) if token in ends), None)
        stop = end is not None
        length = end + 1 if stop else len(tokens)
        ids = tokens[:length]
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        values = logprobs[row, :length].tolist() if logprobs is not None else []
        return Completion(
            text=text,
            prompt_ids=list(prompt.ids),
            completion_ids=ids,
            logprobs=values,
            finish_reason="stop" if stop else "length",
            prompt_truncated=prompt.truncated,
        )

    # --- scoring ----------------------------------------------------------------------------
    def logprobs(
        self,
        adapter: str | None,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        *,
        temperature: float = 1.0,
        batch_size: int = 16,
    ) -> list[torch.Tensor]:
        """Per-token log-probs of given completions under ``adapter`` (None = base), no grad."""
        with torch.inference_mode(), self.store.using(adapter):
            self.model.eval()
            return score_completions(
                self.model, prompt_ids, completion_ids, temperature=temperature,
                batch_size=batch_size, pad_id=self.tokenizer.pad_token_id, device=self.device,
            )

    def reference_logprobs(self, prompt_ids, completion_ids, **kwargs: Any) -> list[torch.Tensor]:
        """Log-probs under the reference policy: the base model, adapters disabled."""
        return self.logprobs(None, prompt_ids, completion_ids, **kwargs)

    # --- training ---------------------------------------------------------------------------
    def adapter_parameters(self, adapter: str) -> dict[str, torch.nn.Parameter]:
        """The adapter's parameters by name: build one optimizer per adapter from these."""
        return self.store.parameters(adapter)

    def train_logprobs(
        self,
        adapter: str,
        prompt_ids: Sequence[Sequence[int]],
        completion_ids: Sequence[Sequence[int]],
        *,
        temperature: float = 1.0,
        with_entropy: bool = False,
        entropy_grad: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Differentiable log-probs [B, T] under ``adapter``, the completion mask [B, T], entropy.

        Only ``adapter``'s parameters require grad here, whatever peft's ``set_adapter`` did.
        The entropy is differentiable only with ``entropy_grad`` (an entropy bonus needs it).
        """
        self.store.activate_for_training(adapter)
        self.model.train()
        batch = pack(prompt_ids, completion_ids, self.tokenizer.pad_token_id).to(self.device)
        logp, entropy = completion_logprobs(self.model, batch, temperature, with_entropy, entropy_grad)
        return logp, batch.completion_mask, entropy

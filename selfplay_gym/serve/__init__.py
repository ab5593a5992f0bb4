"""``selfplay-gym serve``: an OpenAI-compatible HTTP server over the transformers backend.

Generation for the OpenAI backend (agents/openai_api.py) on a machine without vLLM, and a
reference implementation of the token-id extras that client reads. The parts: protocol.py
(request bodies, refused fields), batcher.py (micro-batching on one model thread), engine.py
(prompts -> token ids -> rows), decoder.py (one generate call, each row sampling its own way),
responses.py and streaming.py (JSON answers, server-sent events), app.py (routes), main.py
(command line, background thread).
"""

from __future__ import annotations

from typing import Any

from selfplay_gym.serve.main import main, serve_in_thread

__all__ = ["create_app", "main", "serve_in_thread"]


def __getattr__(name: str) -> Any:
    if name == "create_app":  # imports fastapi: only on use
        from selfplay_gym.serve.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

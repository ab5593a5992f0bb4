"""Running the server: ``selfplay-gym serve`` (argparse + uvicorn) and a background thread.

fastapi and uvicorn are imported only here, inside the functions, so the package imports
without them and the command can say how to install them.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

INSTALL_HINT = "pip install 'selfplay-gym[serve]'"
TINY = "tiny"
"""The embedded model's short name, as ``train`` and ``eval`` spell it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="selfplay-gym serve",
        description="An OpenAI-compatible server over the transformers backend: one model name "
        "for the base model, one per LoRA adapter.",
    )
    parser.add_argument(
        "--model",
        default=TINY,
        help=f'local directory or hub id of the base model; "{TINY}" (the default): the embedded '
        'model, served as "tiny"',
    )
    parser.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve the LoRA adapter saved in DIR as model NAME (repeatable)",
    )
    parser.add_argument(
        "--served-model-name", default=None, help="the base model's name (default: --model)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="no authentication: keep it on loopback"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if available)"
    )
    parser.add_argument("--dtype", default=None, help="float32, bfloat16 (default: by device)")
    parser.add_argument(
        "--chat-template",
        default=None,
        help="a jinja chat template or a file holding one, for a model whose tokenizer has none",
    )
    parser.add_argument(
        "--batch-window-ms",
        type=float,
        default=5.0,
        help="how long to wait for concurrent requests to join a batch",
    )
    parser.add_argument("--max-batch-size", type=int, default=64, help="prompts per batch")
    parser.add_argument("--log-level", default="warning")
    return parser


def model_source(model: str) -> str:
    """What ``HFBackend`` loads for ``--model``: "tiny" is the embedded model's directory."""
    from selfplay_gym.agents.tiny import EMBEDDED, embedded_model_dir

    return str(embedded_model_dir(model)) if model in EMBEDDED else model


def build_app(args: argparse.Namespace) -> Any:
    from selfplay_gym.agents.hf import HFBackend
    from selfplay_gym.serve.app import create_app

    backend = HFBackend(
        model_source(args.model),
        device=args.device,
        dtype=args.dtype,
        generation_batch_size=args.max_batch_size,
        chat_template=args.chat_template,
    )
    for spec in args.adapter:
        name, _, path = spec.partition("=")
        if not name or not path:
            raise SystemExit(
                f"--adapter {spec!r}: write NAME=DIR, e.g. --adapter solver=runs/x/adapters/solver"
            )
        backend.load_adapter(name, path)
    return create_app(
        backend,
        args.served_model_name or args.model,  # "tiny", not the embedded model's directory
        window_s=args.batch_window_ms / 1000,
        max_batch=args.max_batch_size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise SystemExit(
            f"selfplay-gym serve needs fastapi and uvicorn ({exc}): {INSTALL_HINT}"
        ) from exc
    try:
        app = build_app(args)
    except (OSError, ValueError) as exc:  # a missing model or adapter: the message says the fix
        raise SystemExit(f"selfplay-gym serve: {exc}") from exc
    with contextlib.suppress(ValueError):
        if not ipaddress.ip_address(args.host).is_loopback:
            print(f"warning: serving on {args.host} without authentication", file=sys.stderr)
    base, adapters = args.served_model_name or args.model, app.state.backend.store.names
    print(
        f"serving {base!r} and adapters {adapters} at http://{args.host}:{args.port}/v1", flush=True
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


@contextlib.contextmanager
def serve_in_thread(
    app: Any, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` from a background thread; yields the API root (``http://host:port/v1``).

    The socket is bound before the thread starts, so ``port=0`` picks a free port without a race.
    """
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server thread did not start; see the log above")
            time.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()

"""The ``selfplay-gym`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from selfplay_gym import __version__
from selfplay_gym.envs.registry import mode_class, modes


def list_modes() -> None:
    """One line per mode: name, roles, and the first line of its module's docstring."""
    for name in modes():
        cls = mode_class(name)
        doc = (sys.modules[cls.__module__].__doc__ or cls.__doc__ or "").strip()
        print(f"{name:10s} roles={','.join(cls.roles)}  {doc.splitlines()[0] if doc else ''}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="selfplay-gym", description=__doc__)
    parser.add_argument("--version", action="version", version=f"selfplay-gym {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("modes", help="list the registered self-play modes")
    args = parser.parse_args(argv)
    if args.command == "modes":
        list_modes()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

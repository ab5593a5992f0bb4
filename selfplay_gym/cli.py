"""The ``selfplay-gym`` command: ``demo``, ``train``, ``eval``, ``serve``, ``modes``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from selfplay_gym import __version__
from selfplay_gym.envs.registry import mode_class, modes


def list_modes() -> None:
    """One line per mode: name, roles, and the first line of its module's docstring."""
    for name in modes():
        cls = mode_class(name)
        doc = (sys.modules[cls.__module__].__doc__ or cls.__doc__ or "").strip()
        print(f"{name:10s} roles={','.join(cls.roles)}  {doc.splitlines()[0] if doc else ''}")


def train(argv: Sequence[str]) -> int:
    """``selfplay-gym train [--config run.yaml] [--resume] [flags]``: flags override the file;
    ``--resume`` without ``--config`` starts from the run's own record in its output dir."""
    import tyro

    from selfplay_gym.algorithms.distributed import world
    from selfplay_gym.build import train_from_config
    from selfplay_gym.config import RunConfig, load_config

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    pre.add_argument("--resume", action="store_true")
    pre.add_argument("--overwrite", action="store_true")
    pre.add_argument("--debug", action="store_true", help="full tracebacks for errors")
    known, rest = pre.parse_known_args(list(argv))
    if os.getcwd() not in sys.path:  # --mode my_mode:MyMode finds my_mode.py here, as python -m does
        sys.path.insert(0, os.getcwd())
    try:
        if known.config:
            default = load_config(known.config)
        else:
            default = _recorded(rest) if known.resume else RunConfig()
    except (ValueError, FileNotFoundError) as exc:
        return _user_error(exc)
    cfg = tyro.cli(RunConfig, args=rest, default=default, prog="selfplay-gym train",
                   description="Train self-play roles (also: --config FILE, --resume, --overwrite).")
    try:
        history = train_from_config(cfg, resume=known.resume, overwrite=known.overwrite)
    except (ValueError, FileNotFoundError) as exc:
        if known.debug:
            raise
        return _user_error(exc)
    if not world().is_main:  # under accelerate launch rank 0 reports
        return 0
    if history:
        last = {k: v for k, v in history[-1].items() if k.startswith(("reward/", "time/iteration"))}
        print(json.dumps(last, indent=1))
    print(f"metrics, episode log and checkpoints in {cfg.train.output_dir}")
    print("plots: " + ", ".join(str(f) for f in _plot(cfg.train.output_dir)))
    return 0


def _recorded(rest: Sequence[str]):
    """The RunConfig of the run ``--resume`` continues, from its ``run_config.json`` (flags
    parsed over it still win); the defaults where it has none."""
    from selfplay_gym.config import RunConfig
    from selfplay_gym.run_record import RUN_RECORD, recorded_config

    where = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    where.add_argument("--train.output-dir", "--train.output_dir", dest="output_dir",
                       default=RunConfig().train.output_dir)
    output_dir = where.parse_known_args(list(rest))[0].output_dir
    cfg = recorded_config(output_dir)
    if cfg is None:
        print(f"resume: {output_dir} has no {RUN_RECORD}; the defaults and flags make the config",
              file=sys.stderr)
        return RunConfig()
    print(f"resume: settings from {Path(output_dir) / RUN_RECORD} (flags given here win)")
    return cfg


def _plot(output_dir: str) -> list[Path]:
    """learning_curves.png (held-out accuracy, rewards) and self_consistency.png per run folder."""
    from selfplay_gym.plots import plot_run

    root = Path(output_dir)
    folders = [d for d in (root, *sorted(root.glob("stage[0-9]*"))) if (d / "metrics.jsonl").exists()]
    return [figure for folder in folders for figure in plot_run(folder)]


def _user_error(exc: Exception) -> int:
    """A mistake the user can fix: one line naming it, exit status 2 (--debug: the traceback)."""
    print(f"error: {exc}", file=sys.stderr)
    return 2


def demo(argv: Sequence[str]) -> int:
    """``selfplay-gym demo``: R-Zero self-play on the tiny model, held-out accuracy before/after."""
    import tyro

    from selfplay_gym.demo import DemoConfig, run_demo

    run_demo(tyro.cli(DemoConfig, args=list(argv), prog="selfplay-gym demo"))
    return 0


def serve(argv: Sequence[str]) -> int:
    """``selfplay-gym serve --model DIR [--adapter name=DIR ...]``: an OpenAI-compatible server."""
    from selfplay_gym.serve import main as serve_main

    return serve_main(argv)


COMMANDS = {"demo": demo, "train": train, "serve": serve}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="selfplay-gym", description=__doc__)
    parser.add_argument("--version", action="version", version=f"selfplay-gym {__version__}")
    parser.add_argument("command", choices=["demo", "train", "eval", "serve", "modes"])
    args = parser.parse_args(argv[:1])
    if args.command == "modes":
        list_modes()
        return 0
    if args.command == "eval":
        from selfplay_gym.eval.cli import main as eval_main

        return eval_main(argv[1:])
    return COMMANDS[args.command](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())

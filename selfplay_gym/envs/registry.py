"""The mode registry: names map to Mode classes, given directly or as lazy ``"module:Class"``.

Lazy entry points (Gymnasium's habit) keep ``import selfplay_gym`` cheap: a mode's module is
imported the first time someone asks for it.
"""

from __future__ import annotations

import importlib
from typing import Any

from selfplay_gym.envs.mode import Mode

_REGISTRY: dict[str, type[Mode] | str] = {
    "rzero": "selfplay_gym.envs.modes.rzero:RZeroMode",
    "aero": "selfplay_gym.envs.modes.aero:AeroMode",
    "alive": "selfplay_gym.envs.modes.alive:AliveMode",
    "darc": "selfplay_gym.envs.modes.darc:DarcMode",
}


def register_mode(name: str, mode: type[Mode] | str, *, overwrite: bool = False) -> None:
    """Make ``SelfPlayReasoningEnv(mode=name)`` use ``mode`` (a Mode subclass or "pkg.mod:Class")."""
    if not isinstance(name, str) or not name:
        raise ValueError("register_mode needs a non-empty string name")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"mode {name!r} is already registered; pass overwrite=True to replace it")
    if isinstance(mode, str):
        if ":" not in mode:
            raise ValueError(f"entry point {mode!r} must look like 'package.module:ClassName'")
    elif not (isinstance(mode, type) and issubclass(mode, Mode)):
        raise TypeError(
            f"register_mode({name!r}, ...) needs a Mode subclass or a 'module:Class' string, "
            f"got {mode!r}"
        )
    _REGISTRY[name] = mode


def modes() -> list[str]:
    """The names of every registered mode, sorted."""
    return sorted(_REGISTRY)


def mode_class(name: str) -> type[Mode]:
    """Resolve a registered name to its Mode class, importing it on first use."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown mode {name!r}; registered modes are {modes()}. "
            f"Add your own with selfplay_gym.register_mode({name!r}, YourMode)."
        )
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        module_name, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), attr)
        if not (isinstance(entry, type) and issubclass(entry, Mode)):
            raise TypeError(f"entry point for mode {name!r} is not a Mode subclass: {entry!r}")
        _REGISTRY[name] = entry
    return entry


def make_mode(name: str | Mode, **options: Any) -> Mode:
    """A configured Mode instance from a registered name (or an instance, passed through)."""
    if isinstance(name, Mode):
        if options:
            raise TypeError("options go to the Mode's constructor when you pass a Mode instance")
        return name
    return mode_class(name).from_options(**options)

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
    "azr": "selfplay_gym.envs.modes.azr:AzrMode",
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
    """Resolve a registered name to its Mode class, importing it on first use.

    An unregistered ``"package.module:ClassName"`` (``--mode my_pkg.my_mode:MyMode``) is
    registered under that string first, so a mode of one's own needs no registering code."""
    if name not in _REGISTRY and isinstance(name, str) and ":" in name:
        _REGISTRY[name] = name
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown mode {name!r}; registered modes are {modes()}. "
            f"Add your own with selfplay_gym.register_mode({name!r}, YourMode), or name its "
            f"class as package.module:ClassName."
        )
    entry = _REGISTRY[name]
    if isinstance(entry, str):
        try:
            entry = _import_entry(name, entry)
        except ValueError:
            if _REGISTRY[name] == name:  # registered just now from the name: forget it again
                del _REGISTRY[name]
            raise
        _REGISTRY[name] = entry
    return entry


def _import_entry(name: str, entry: str) -> type[Mode]:
    """The class a ``"module:Class"`` entry names, or a ValueError saying what is missing."""
    module_name, _, attr = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"mode {name!r}: cannot import module {module_name!r} ({exc}); install "
                         "its package or put its folder on PYTHONPATH") from exc
    if not hasattr(module, attr):
        raise ValueError(f"mode {name!r}: module {module_name!r} has no attribute {attr!r}")
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Mode)):
        raise ValueError(f"entry point for mode {name!r} is not a Mode subclass: {cls!r}")
    return cls


def make_mode(name: str | Mode, **options: Any) -> Mode:
    """A configured Mode instance from a registered name (or an instance, passed through)."""
    if isinstance(name, Mode):
        if options:
            raise TypeError("options go to the Mode's constructor when you pass a Mode instance")
        return name
    return mode_class(name).from_options(**options)

"""PettingZoo conformance for any self-play env, with the text-space warnings allow-listed.

Run it on your own mode: ``api_warnings(lambda: SelfPlayReasoningEnv(MyMode()))`` must be [].
Warnings are failures unless allow-listed (Gymnasium's habit); the four below are what any text
observation and action space raise in PettingZoo's ``api_test`` (../shared/STYLE.md part 3).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from pettingzoo.test import api_test

ALLOWED_WARNINGS = (
    "Observation is not a NumPy array",
    "Observation space for each agent probably should be gymnasium.spaces.box or gymnasium.spaces.discrete",
    "Action space for each agent probably should be gymnasium.spaces.box or gymnasium.spaces.discrete",
    "render()",
)


def api_warnings(make_env: Callable[[], Any], num_cycles: int = 100) -> list[str]:
    """Run PettingZoo's ``api_test``; return the warnings outside the allow-list (none is a pass)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api_test(make_env(), num_cycles=num_cycles)
    return [str(w.message) for w in caught if not str(w.message).startswith(ALLOWED_WARNINGS)]

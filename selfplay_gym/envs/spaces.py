"""Text spaces that tell the truth about what a language model reads and writes.

Gymnasium's ``Text`` checks every character against a small charset; a model writes any
Unicode, so ``AnyText.contains`` checks type and length only. It still samples printable
characters, which makes PettingZoo's random-action tests a free parser fuzz test.

The observation is ``{"messages": (message, ...)}``: PettingZoo's ``api_test`` rejects a bare
string observation and a list-valued sequence, and recurses only into a key named
"observation", so the chat lives under "messages" as a tuple.
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np
from gymnasium import spaces

from selfplay_gym.types import Messages

SAMPLE_CHARSET = string.printable + "×÷√π∑∞αβγ—“”…中文"
"""What ``sample()`` draws from: printable ASCII plus a little of the Unicode models write."""

MAX_SAMPLE_LENGTH = 64
"""Random actions stay short; hostile long inputs are the fuzz tests' job."""


class AnyText(spaces.Text):
    """A text space that accepts any ``str`` of allowed length, whatever its characters."""

    def __init__(self, max_length: int, *, min_length: int = 0, seed: Any = None):
        super().__init__(max_length, min_length=min_length, charset=SAMPLE_CHARSET, seed=seed)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        high = min(self.max_length, max(self.min_length, MAX_SAMPLE_LENGTH))
        length = int(self.np_random.integers(self.min_length, high + 1))
        chars = self.np_random.choice(np.array(list(SAMPLE_CHARSET)), size=length)
        return "".join(chars.tolist())

    def __repr__(self) -> str:
        return f"AnyText({self.min_length}, {self.max_length})"


def message_space(max_chars: int) -> spaces.Dict:
    """``Dict({"messages": Sequence(Dict({"role", "content"}))})`` for chat observations."""
    message = spaces.Dict({"role": AnyText(32), "content": AnyText(max_chars)})
    return spaces.Dict({"messages": spaces.Sequence(message, stack=False)})


def observation(messages: Messages) -> dict[str, Messages]:
    """Wrap a chat prompt as an observation of ``message_space``."""
    return {"messages": tuple({"role": m["role"], "content": m["content"]} for m in messages)}

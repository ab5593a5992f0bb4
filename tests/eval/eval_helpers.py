"""Helpers for the evaluation tests: the benchmark fixture files and a scripted backend."""

from __future__ import annotations

from pathlib import Path

from selfplay_gym.types import Completion

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def fixture_path(name: str) -> Path:
    """tests/fixtures/benchmarks/<name>.<ext>, whatever the format."""
    found = sorted(FIXTURES.glob(f"{name}.*"))
    assert len(found) == 1, f"expected one fixture for {name}, found {found}"
    return found[0]


class ScriptedBackend:
    """A Backend that answers each prompt with ``reply(prompt_text, call_index)``; logs calls."""

    def __init__(self, reply):
        self.reply = reply
        self.calls: list[list[str]] = []

    def generate(self, prompts, adapters, sampling):
        texts = [messages[-1]["content"] for messages in prompts]
        self.calls.append(texts)
        return [Completion(text=self.reply(text, i)) for i, text in enumerate(texts)]

    @property
    def prompts(self) -> list[str]:
        return [p for call in self.calls for p in call]

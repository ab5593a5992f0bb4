"""Versioned adapter names: every weight update of a role's adapter is a new name and id.

Shared by the engines other than the learner (agents/vllm.py in-process, agents/openai_api.py
against a server), which load each new version and drop the one it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class AdapterVersion:
    """One saved state of a role's adapter, as an engine knows it (a name and id per version)."""

    adapter: str
    version: int
    lora_int_id: int
    path: str

    @property
    def lora_name(self) -> str:
        return f"{self.adapter}@v{self.version}"


class AdapterVersions:
    """Which version of each adapter is current; every new version gets a fresh name and id.

    vLLM caches LoRA weights by id, and keys its prefix cache by adapter name, so reusing
    either would serve the old weights or their stale KV cache (vllm-project/vllm#42125).
    """

    def __init__(self) -> None:
        self.current: dict[str, AdapterVersion] = {}
        self._next_id = 1

    def register(
        self, adapter: str, path: str | Path
    ) -> tuple[AdapterVersion, AdapterVersion | None]:
        """Make ``path`` the adapter's current version: (new version, the one it replaces)."""
        previous = self.current.get(adapter)
        version = AdapterVersion(
            adapter, previous.version + 1 if previous else 1, self._next_id, str(path)
        )
        self._next_id += 1
        self.current[adapter] = version
        return version, previous

    def require(self, adapter: str) -> AdapterVersion:
        if adapter not in self.current:
            raise ValueError(
                f"no adapter named {adapter!r} is loaded; loaded: {sorted(self.current)}. Save it "
                f"from the trainer and call backend.load_adapter({adapter!r}, path) or sync_from()"
            )
        return self.current[adapter]

    def next_path(self, root: str | Path, adapter: str) -> Path:
        previous = self.current.get(adapter)
        return Path(root) / adapter / f"v{previous.version + 1 if previous else 1}"

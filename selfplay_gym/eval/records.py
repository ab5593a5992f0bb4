"""``records.jsonl``: one line per finished question, the unit an interrupted run resumes from.

A line is appended (and flushed) as soon as a question's samples are generated and checked,
so a crash loses at most the batch in flight. A last line cut mid-write is dropped on reading.
``settings.json`` beside it pins what generated the records: resuming with other settings
(another model, adapter, temperature, sample count or length limit) is refused.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RECORDS = "records.jsonl"
SETTINGS = "settings.json"
PINNED = ("model", "adapter", "samples", "temperature", "top_p", "top_k", "max_new_tokens")
"""Settings that change what is generated, hence must match to reuse records."""

Key = tuple[str, str]


def read_records(path: str | Path) -> dict[Key, dict[str, Any]]:
    """Finished questions by (benchmark, id); a later line for the same key wins."""
    path = Path(path)
    if not path.exists():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):  # interrupted mid-line: keep whole lines only
        data = data[: data.rfind(b"\n") + 1]
        path.write_bytes(data)
    records: dict[Key, dict[str, Any]] = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            warnings.warn(
                f"{path}:{number} is not JSON; that question will be redone", stacklevel=2
            )
            continue
        records[(record["benchmark"], record["id"])] = record
    return records


def append_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append whole lines and push them to disk before returning."""
    lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(lines)
        handle.flush()
        os.fsync(handle.fileno())


def pin_settings(directory: str | Path, settings: Mapping[str, Any]) -> None:
    """Write ``settings.json``, or check that the existing one agrees on ``PINNED`` keys."""
    path = Path(directory) / SETTINGS
    if path.exists() and (Path(directory) / RECORDS).exists():
        old = json.loads(path.read_text())
        changed = {
            k: (old.get(k), settings.get(k)) for k in PINNED if old.get(k) != settings.get(k)
        }
        if changed:
            detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise ValueError(
                f"{directory} holds records generated with other settings ({detail}); "
                "use another output directory, or delete it to start over"
            )
    path.write_text(json.dumps(dict(settings), indent=1) + "\n")

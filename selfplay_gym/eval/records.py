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

from selfplay_gym.types import json_line

RECORDS = "records.jsonl"
SETTINGS = "settings.json"
PINNED = ("model", "adapter", "samples", "temperature", "top_p", "top_k", "max_new_tokens")
"""Settings that change what is generated, hence must match to reuse records."""

Key = tuple[str, str]

KEY_FIELDS = {"benchmark": str, "id": str}
"""What every line needs: the question it records."""
RESUME_FIELDS = {
    **KEY_FIELDS,
    "prompt": str,
    "answer_type": str,
    "correct": list,
    "extracted": list,
    "methods": list,
    "finish_reasons": list,
}
"""What a resumed evaluation reads from a line to reuse it."""


def _check_record(record: Any, fields: Mapping[str, type], where: str) -> None:
    """A ValueError naming ``where`` and the field unless ``record`` has ``fields``' types."""
    fix = (
        "records.jsonl holds what selfplay-gym eval wrote; delete that line to redo its "
        "question, or use another --output-dir"
    )
    if not isinstance(record, dict):
        raise ValueError(f"{where}: {json.dumps(record)[:40]} is not a record (an object); {fix}")
    for field, kind in fields.items():
        if field not in record:
            raise ValueError(f"{where}: the record has no field {field!r}; {fix}")
        if not isinstance(record[field], kind):
            raise ValueError(
                f"{where}: field {field!r} is {json.dumps(record[field])[:40]}, not a "
                f"{'string' if kind is str else 'list'}; {fix}"
            )


def read_records(
    path: str | Path, fields: Mapping[str, type] = KEY_FIELDS
) -> dict[Key, dict[str, Any]]:
    """Finished questions by (benchmark, id); a later line for the same key wins.

    A line that is JSON but lacks one of ``fields`` (or has another type there) is a
    ValueError naming the line and the field; one that is not JSON is skipped with a warning.
    """
    path = Path(path)
    if not path.exists():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):  # interrupted mid-line: keep whole lines only
        data = data[: data.rfind(b"\n") + 1]
        path.write_bytes(data)
    records: dict[Key, dict[str, Any]] = {}
    # split at "\n" only: splitlines() also breaks at "\x85" or "\u2028" inside a sample's text
    for number, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            warnings.warn(
                f"{path}:{number} is not JSON; that question will be redone", stacklevel=2
            )
            continue
        _check_record(record, fields, f"{path}, line {number}")
        records[(record["benchmark"], record["id"])] = record
    return records


def append_records(path: str | Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Append whole lines and push them to disk before returning."""
    lines = "".join(json_line(r) for r in records)  # a lone surrogate in a sample is escaped
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

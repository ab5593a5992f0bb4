"""Rows of a benchmark through ``datasets``: from the hub, or from a local file or directory.

A local copy goes through the same ``datasets.load_dataset`` call as the hub (with the packaged
``json``/``parquet``/``csv``/``arrow`` builders, which resolve without the network), so an
offline run and a test fixture read rows exactly as a hub download would.

A local JSON file is first read line by line here, because ``datasets`` reports a broken line,
text that is not UTF-8 or a lone surrogate as a bare ``DatasetGenerationError``: each of those
is a ``ValueError`` naming the file, the line and the field, and what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMATS: dict[str, str] = {
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".arrow": "arrow",
}
"""File extension -> ``datasets`` packaged builder."""

_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number"}


def _surrogate_field(value: Any, name: str = "") -> str | None:
    """The first field (``problem``, ``options[2]``) whose text holds a lone surrogate, or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return name
        return None
    if isinstance(value, dict):
        children = [(f"{name}.{k}" if name else str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        children = [(f"{name}[{i}]", v) for i, v in enumerate(value)]
    else:
        return None
    for child, inner in children:
        found = _surrogate_field(inner, child)
        if found is not None:
            return found
    return None


def _check_row(row: Any, where: str) -> dict[str, Any]:
    """``row`` if it is a JSON object whose text all encodes, else a ValueError naming ``where``."""
    if not isinstance(row, dict):
        raise ValueError(
            f"{where}: a JSON {_JSON_TYPES.get(type(row), json.dumps(row))} where a row must be "
            'one JSON object, such as {"problem": "1+1", "answer": "2"}'
        )
    field = _surrogate_field(row)
    if field is not None:
        raise ValueError(
            f"{where}, field {field!r}: the text holds a lone surrogate (an escape such as "
            "\\ud800 without its pair), which is not a character; replace it with the character "
            "meant, or delete it"
        )
    return row


def json_rows(path: str | Path) -> list[tuple[int | None, dict[str, Any]]]:
    """The rows of a JSON lines file, or of a ``.json`` array, each with its line number.

    Rows of an array have no line number (None). A line that is not JSON, a row that is not an
    object, text that is not UTF-8 or holds a lone surrogate: a ValueError naming the line.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ValueError(
            f"{path}, line {line}: not UTF-8 text ({exc.reason} at byte {column} of the line); "
            "save the file as UTF-8"
        ) from None
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno}); "
                "fix it: a .json file is one array of row objects, or one object per line"
            ) from None
        return [(None, _check_row(row, f"{path}, row {i}")) for i, row in enumerate(document, 1)]
    rows = []
    for number, line in enumerate(text.split("\n"), 1):  # "\u2028" may sit inside a value
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"{path}, line {number}: not valid JSON ({exc.msg}, column {exc.colno}); fix "
                "or delete the line: each line holds one JSON object"
            ) from None
        rows.append((number, _check_row(row, f"{path}, line {number}")))
    return rows


def row_location(path: str | Path, index: int) -> str:
    """Where row ``index`` (from 0) of local data is, for messages: file, row and line."""
    path = Path(path)
    place = f"{path}, row {index + 1}"
    builder = FORMATS.get(path.suffix.lower()) if path.is_file() else None
    if builder == "json":
        lines = [line for line, _ in json_rows(path)]
        if index < len(lines) and lines[index] is not None:
            return f"{place} (line {lines[index]})"
    if builder == "csv":
        return f"{place} (after the header)"
    return place


def _no_rows(where: Path) -> ValueError:
    return ValueError(
        f"{where} holds no rows; write the benchmark's rows into it "
        "(a .jsonl file: one JSON object per line)"
    )


def _read(where: Path, load: Callable[[], Any]) -> Any:
    """``load()``'s rows; ``datasets``' bare errors and no rows at all as ValueErrors."""
    import datasets

    try:
        rows = load()
    except datasets.exceptions.DatasetGenerationError as exc:
        cause = exc.__cause__ or exc
        raise ValueError(
            f"{where}: datasets cannot read it ({type(cause).__name__}: {cause}); fix the "
            "data, or convert it to JSON lines, whose errors name the line"
        ) from exc
    except StopIteration:  # datasets' word for empty data files
        raise _no_rows(where) from None
    except ValueError as exc:  # and for a CSV of a header only
        if "corresponds to no data" in str(exc):
            raise _no_rows(where) from None
        raise
    if len(rows) == 0:
        raise _no_rows(where)
    return rows


def _pick_split(dataset: Any, split: str, where: str) -> Any:
    """One split of a ``DatasetDict``: ``split`` if present, else its only split."""
    import datasets

    if isinstance(dataset, datasets.Dataset):
        return dataset
    if split in dataset:
        return dataset[split]
    if len(dataset) == 1:
        return next(iter(dataset.values()))
    raise ValueError(f"{where} has splits {sorted(dataset)}, none named {split!r}")


def load_local(path: str | Path, split: str = "test") -> Any:
    """A ``datasets.Dataset`` from a data file, a folder of data files or a ``save_to_disk`` dir."""
    import datasets

    path = Path(path)
    if path.is_file():
        builder = FORMATS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"unsupported data file {path}: use one of {sorted(FORMATS)}")
        # json_rows reads every line first: datasets would not say which one is broken
        if path.stat().st_size == 0 or (builder == "json" and not json_rows(path)):
            raise _no_rows(path)
        return _read(
            path, lambda: datasets.load_dataset(builder, data_files=str(path), split="train")
        )
    if path.is_dir():
        saved = any((path / name).exists() for name in ("dataset_dict.json", "state.json"))
        load = datasets.load_from_disk if saved else datasets.load_dataset
        return _read(path, lambda: _pick_split(load(str(path)), split, str(path)))
    raise FileNotFoundError(
        f"no data file or directory at {path}; give a .jsonl/.json/.parquet/.csv file or a "
        "directory written by datasets' save_to_disk"
    )


def load_hub(hub_id: str, config: str | None, split: str) -> Any:
    """``datasets.load_dataset(hub_id, config, split=split)``, with the offline fix in the error."""
    import datasets

    try:
        return datasets.load_dataset(hub_id, config, split=split)
    except Exception as exc:  # network, gating, missing cache: all need the same advice
        raise OSError(
            f"could not load {hub_id!r} (config {config!r}, split {split!r}) from the hub: {exc}\n"
            "Download it where the hub is reachable (gated sets such as Idavidrein/gpqa need "
            "`huggingface-cli login` and accepted terms) and pass the file with "
            "--data NAME=PATH, or set HF_HUB_OFFLINE=1 to read the local hub cache."
        ) from exc

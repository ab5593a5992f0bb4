"""Rows of a benchmark through ``datasets``: from the hub, or from a local file or directory.

A local copy goes through the same ``datasets.load_dataset`` call as the hub (with the packaged
``json``/``parquet``/``csv``/``arrow`` builders, which resolve without the network), so an
offline run and a test fixture read rows exactly as a hub download would.
"""

from __future__ import annotations

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
        return datasets.load_dataset(builder, data_files=str(path), split="train")
    if path.is_dir():
        if any((path / name).exists() for name in ("dataset_dict.json", "state.json")):
            return _pick_split(datasets.load_from_disk(str(path)), split, str(path))
        return _pick_split(datasets.load_dataset(str(path)), split, str(path))
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

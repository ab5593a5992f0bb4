"""Documents for the corpus-grounded modes (DARC, ALIVE), read from local files only.

Loaded through ``datasets`` so a large corpus stays memory-mapped Arrow on disk: only the
row indices that pass the length filter are held in memory, and a document's text is read
when it is drawn. The packaged ``text``/``json``/``parquet``/``csv`` builders resolve locally,
so nothing here touches the network.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfplay_gym.envs.tasks.base import TaskItem

FORMATS: dict[str, str] = {".txt": "text", ".json": "json", ".jsonl": "json",
                           ".parquet": "parquet", ".csv": "csv"}
"""File extension -> ``datasets`` builder. A ``.txt`` file holds one document per line."""


def _as_paths(data_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[str]:
    if isinstance(data_files, (str, os.PathLike)):
        return [os.fspath(data_files)]
    return [os.fspath(p) for p in data_files]


def _builder_for(paths: list[str]) -> str:
    """The one ``datasets`` builder all files share, chosen from their extensions."""
    builders = set()
    for path in paths:
        suffix = Path(path).suffix.lower()
        if suffix not in FORMATS:
            raise ValueError(
                f"unsupported corpus file {path!r}: supported extensions are {sorted(FORMATS)}"
            )
        builders.add(FORMATS[suffix])
    if len(builders) > 1:
        raise ValueError(f"corpus files mix formats {sorted(builders)}; use one format: {paths}")
    return builders.pop()


def _resolve(paths: list[str]) -> list[str]:
    """The files ``paths`` name (globs expanded, sorted), or FileNotFoundError naming the gap."""
    files: list[str] = []
    for path in paths:
        found = sorted(glob.glob(path)) if glob.has_magic(path) else [path]
        found = [f for f in found if Path(f).is_file()]
        if not found:
            raise FileNotFoundError(f"corpus file not found: {path}")
        files.extend(found)
    return files


@dataclass
class CorpusSource:
    """Documents from local ``.txt``/``.json``/``.jsonl``/``.parquet``/``.csv`` files; a ``TaskSource``.

    Documents are stripped, kept if at least ``min_chars`` long, and cut at ``max_chars``
    (DARC cuts at 30k). Each sample also draws a difficulty level for the mode to ask for.
    """

    data_files: str | list[str]
    text_field: str = "text"
    min_chars: int = 1
    max_chars: int = 30_000
    difficulties: tuple[int, ...] = (1, 2, 3)
    domain: str = "reading comprehension and reasoning over a document"
    name: str = "corpus"
    builder: str | None = None
    """The ``datasets`` builder (text, json, parquet, csv); None: from the files' extensions."""
    _dataset: Any = field(default=None, init=False, repr=False, compare=False)
    _rows: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._paths = _as_paths(self.data_files)
        if not self._paths:
            raise ValueError("data_files is empty: give at least one corpus file")
        self._builder = self.builder or _builder_for(self._paths)
        if not 1 <= self.min_chars <= self.max_chars:
            raise ValueError(
                f"need 1 <= min_chars <= max_chars (empty documents are always dropped), "
                f"got min_chars={self.min_chars}, max_chars={self.max_chars}"
            )
        self.difficulties = tuple(self.difficulties)
        if not self.difficulties or any(
            isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.difficulties
        ):
            raise ValueError(
                f"difficulties must be a non-empty tuple of positive ints, got {self.difficulties}"
            )

    def _load(self) -> np.ndarray:
        """Reads the files on first use and remembers which rows are long enough."""
        if self._rows is not None:
            return self._rows
        import datasets
        import pyarrow.compute as pc

        files = _resolve(self._paths)
        if all(Path(f).stat().st_size == 0 for f in files):
            raise ValueError(f"corpus files are empty: {files}")
        try:
            dataset = datasets.load_dataset(self._builder, data_files=files, split="train")
        except (datasets.exceptions.DatasetGenerationError, StopIteration) as e:
            raise ValueError(f"could not read corpus {files}: {e.__cause__ or e}") from e
        columns = list(dataset.column_names)
        if self.text_field not in columns:
            raise ValueError(
                f"text field {self.text_field!r} not found in {self._paths}; columns: {columns}"
            )
        feature = dataset.features[self.text_field]
        if getattr(feature, "dtype", None) not in ("string", "large_string"):
            raise ValueError(f"text field {self.text_field!r} holds {feature}, not text")
        texts = dataset.data.column(self.text_field)
        lengths = pc.fill_null(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0)
        keep = np.asarray(pc.greater_equal(lengths, self.min_chars), dtype=bool)
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            raise ValueError(
                f"no documents left in {self._paths} after filtering "
                f"(min_chars={self.min_chars}, field {self.text_field!r})"
            )
        self._dataset, self._rows = dataset, rows
        return rows

    def __len__(self) -> int:
        return int(self._load().size)

    def document(self, index: int) -> str:
        """Document ``index`` (0-based among those kept), stripped and cut at ``max_chars``."""
        rows = self._load()
        if not -rows.size <= index < rows.size:
            raise IndexError(f"document index {index} out of range for {rows.size} documents")
        text = self._dataset[int(rows[index])][self.text_field]
        return text.strip()[: self.max_chars]

    def sample(self, rng: np.random.Generator) -> TaskItem:
        index = int(rng.integers(len(self)))
        difficulty = self.difficulties[int(rng.integers(len(self.difficulties)))]
        return TaskItem(
            task_id=f"doc-{index}-d{difficulty}",
            domain=self.domain,
            difficulty=difficulty,
            document=self.document(index),
        )

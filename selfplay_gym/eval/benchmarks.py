"""The benchmarks the papers report, as registered specs: hub id, config, split, row -> item.

Hub ids, configs and splits follow the evaluation code that R-Zero and DARC ship
(``evaluation/datasets_loader.py``, ``eval_mmlupro.py``, ``eval_supergpqa.py``,
``eval_bbeh.py``); MATH-500 is the same 500 problems as their simple-evals CSV. Column names
are those of the hub datasets as those scripts read them; ``columns`` in each spec lists them.

================  ===============================  ============  =====  ========================
name              hub id                           config        split  columns read
================  ===============================  ============  =====  ========================
math500           HuggingFaceH4/MATH-500           -             test   unique_id problem answer
gsm8k             openai/gsm8k                     main          test   question answer(#### x)
amc23             zwhe99/amc23                     -             test   id question answer(float)
aime24            HuggingFaceH4/aime_2024          -             train  id problem answer
aime25            yentinglin/aime_2025             default       train  id problem answer
minerva           zwhe99/simplerl-minerva-math     -             test   problem answer
olympiadbench     zwhe99/simplerl-OlympiadBench    -             test   id question final_answer[0]
mmlu_pro          TIGER-Lab/MMLU-Pro               -             test   question_id question
                                                                        options answer(letter)
supergpqa         m-a-p/SuperGPQA                  -             train  uuid question options
                                                                        answer_letter
gpqa_diamond      Idavidrein/gpqa (gated)          gpqa_diamond  train  Record ID, Question,
                                                                        Correct Answer,
                                                                        Incorrect Answer 1..3
bbeh              MrLight/bbeh-eval                -             train  question answer task
================  ===============================  ============  =====  ========================

R-Zero scores MMLU-Pro, SuperGPQA and BBEH on 1000 rows drawn at random (unseeded);
``load_benchmark(..., subsample=1000, seed=...)`` draws such a subset reproducibly. The code
benchmarks (humaneval, mbpp, livecodebench) are specs of ``code_benchmarks``, loaded alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from selfplay_gym.eval.items import (
    LETTERS,
    EvalItem,
    choice_item,
    math_item,
    shuffled_choices,
    text_item,
)
from selfplay_gym.eval.sources import load_hub, load_local, row_location

RowFn = Callable[[Mapping[str, Any], int, int], EvalItem]
"""``fn(row, index, seed) -> EvalItem``; ``seed`` only matters where options are shuffled."""

MATH_BENCHMARKS = ("math500", "gsm8k", "amc23", "aime24", "aime25", "minerva", "olympiadbench")
GENERAL_BENCHMARKS = ("mmlu_pro", "supergpqa", "gpqa_diamond", "bbeh")


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives on the hub and how one of its rows becomes an ``EvalItem``."""

    name: str
    hub_id: str
    config: str | None
    split: str
    row_to_item: RowFn
    columns: tuple[str, ...]
    """Columns every row must have (an id column, when read, is optional)."""
    domain: str  # "math", "general" or "code"
    notes: str = ""


class RowError(ValueError):
    """A row field that cannot make an item; ``items_from_rows`` adds the file, row and line."""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _text(row: Mapping[str, Any], column: str) -> str:
    """A question: text that is not blank."""
    value = row.get(column)
    if value is None:
        raise RowError(f"field {column!r} is null or missing; give every row its question")
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"field {column!r} is {_short(value)}; it must be the question as text")
    return value


def _answer_text(row: Mapping[str, Any], column: str, what: str = "reference answer") -> str:
    """An answer as text: first element of a list, ``27.0`` -> ``"27"``; never empty."""
    value = row.get(column)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None:
        raise RowError(f"field {column!r} is null or missing; give every row its {what}")
    if isinstance(value, (dict, list, tuple)) or not str(value).strip():
        raise RowError(f"field {column!r} is {_short(value)}; it must be the {what} as text")
    return str(value).strip()


def _options(row: Mapping[str, Any], column: str = "options") -> list[str]:
    """Option texts in letter order: a list of 2 to 26 texts (a string is not a list)."""
    value = row.get(column)
    if not isinstance(value, (list, tuple)):
        raise RowError(
            f"field {column!r} is {_short(value)}; options must be a list of the option "
            'texts in letter order, such as ["Paris", "Rome", "Oslo"]'
        )
    if not 2 <= len(value) <= len(LETTERS):
        raise RowError(f"field {column!r} has {len(value)} options; give 2 to {len(LETTERS)}")
    for i, option in enumerate(value):
        if option is None or isinstance(option, (dict, list, tuple)):
            raise RowError(f"field {column!r}: option {i + 1} is {_short(option)}; give its text")
    return [str(option) for option in value]


def _row_id(row: Mapping[str, Any], column: str | None, index: int) -> str:
    value = row.get(column) if column else None
    return str(value) if value not in (None, "") else str(index)


def _math(question: str, answer: str, id_column: str | None = None) -> RowFn:
    def convert(row: Mapping[str, Any], index: int, seed: int) -> EvalItem:
        return math_item(
            _row_id(row, id_column, index), _text(row, question), _answer_text(row, answer)
        )

    return convert


def _gsm8k(row: Mapping[str, Any], index: int, seed: int) -> EvalItem:
    """GSM8K's answer column is the worked solution ending in ``#### <number>``."""
    solution = _answer_text(row, "answer")
    final = solution.rsplit("####", 1)[1].strip().replace(",", "") if "####" in solution else ""
    if not final:
        raise RowError(
            f"field 'answer' has no '#### <number>' line ({_short(solution)}); end it with one"
        )
    return math_item(str(index), _text(row, "question"), final)


def _lettered(letter_column: str, id_column: str) -> RowFn:
    """MMLU-Pro / SuperGPQA: an ``options`` list and the correct letter in its own column."""

    def convert(row: Mapping[str, Any], index: int, seed: int) -> EvalItem:
        options = _options(row)
        letter = _answer_text(row, letter_column).upper()
        if letter not in LETTERS[: len(options)]:
            raise RowError(
                f"field {letter_column!r} is {letter!r}, which names none of the "
                f"{len(options)} options; give a letter A to {LETTERS[len(options) - 1]}"
            )
        return choice_item(_row_id(row, id_column, index), _text(row, "question"), options, letter)

    return convert


def _gpqa(row: Mapping[str, Any], index: int, seed: int) -> EvalItem:
    """GPQA keeps the right answer in ``Correct Answer``: shuffle it in, fixed by (seed, id)."""
    row_id = _row_id(row, "Record ID", index)
    wrong = [_answer_text(row, f"Incorrect Answer {i}", "wrong option") for i in (1, 2, 3)]
    choices, letter = shuffled_choices(
        _answer_text(row, "Correct Answer"), wrong, key=row_id, seed=seed
    )
    return choice_item(row_id, _text(row, "Question"), choices, letter)


def _bbeh(row: Mapping[str, Any], index: int, seed: int) -> EvalItem:
    task = row.get("task")
    return text_item(
        f"{task}-{index}" if task else str(index),
        _text(row, "question"),
        _answer_text(row, "answer"),
    )


_B = BenchmarkSpec
# fmt: off
_SPECS = [
    _B("math500", "HuggingFaceH4/MATH-500", None, "test", _math("problem", "answer", "unique_id"),
       ("problem", "answer"), "math"),
    _B("gsm8k", "openai/gsm8k", "main", "test", _gsm8k, ("question", "answer"), "math",
       "answer = text after '####', commas removed; id = row index"),
    _B("amc23", "zwhe99/amc23", None, "test", _math("question", "answer", "id"),
       ("question", "answer"), "math", "answer is a float on the hub (27.0 -> '27')"),
    _B("aime24", "HuggingFaceH4/aime_2024", None, "train", _math("problem", "answer", "id"),
       ("problem", "answer"), "math"),
    _B("aime25", "yentinglin/aime_2025", "default", "train", _math("problem", "answer", "id"),
       ("problem", "answer"), "math"),
    _B("minerva", "zwhe99/simplerl-minerva-math", None, "test", _math("problem", "answer"),
       ("problem", "answer"), "math"),
    _B("olympiadbench", "zwhe99/simplerl-OlympiadBench", None, "test",
       _math("question", "final_answer", "id"), ("question", "final_answer"), "math",
       "final_answer is a list; its first element is the reference, as in R-Zero"),
    _B("mmlu_pro", "TIGER-Lab/MMLU-Pro", None, "test", _lettered("answer", "question_id"),
       ("question", "options", "answer"), "general", "R-Zero: 1000 random rows"),
    _B("supergpqa", "m-a-p/SuperGPQA", None, "train", _lettered("answer_letter", "uuid"),
       ("question", "options", "answer_letter"), "general", "R-Zero: 1000 random rows"),
    _B("gpqa_diamond", "Idavidrein/gpqa", "gpqa_diamond", "train", _gpqa,
       ("Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2",
        "Incorrect Answer 3"), "general", "gated; options shuffled by (seed, Record ID)"),
    _B("bbeh", "MrLight/bbeh-eval", None, "train", _bbeh, ("question", "answer"), "general",
       "BBEH's fuzzy text match; R-Zero: 1000 random rows"),
]
# fmt: on

BENCHMARKS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in _SPECS}


def register_benchmark(spec: BenchmarkSpec) -> None:
    """Add a benchmark (a new name only: specs are shared, so none is replaced)."""
    from selfplay_gym.eval.code_benchmarks import CODE_BENCHMARKS

    if spec.name in BENCHMARKS or spec.name in CODE_BENCHMARKS:
        raise ValueError(f"benchmark {spec.name!r} is registered already")
    BENCHMARKS[spec.name] = spec


def benchmark_spec(name: str) -> BenchmarkSpec:
    """A registered benchmark, or a code one (``code_benchmarks``: their items run programs)."""
    from selfplay_gym.eval.code_benchmarks import CODE_BENCHMARKS  # it imports this module

    spec = BENCHMARKS.get(name) or CODE_BENCHMARKS.get(name)
    if spec is None:
        known = ", ".join([*BENCHMARKS, *CODE_BENCHMARKS])
        raise KeyError(f"unknown benchmark {name!r}; known: {known}")
    return spec


def items_from_rows(
    spec: BenchmarkSpec,
    rows: Any,
    *,
    seed: int = 0,
    indices: Sequence[int] | None = None,
    locate: Callable[[int], str] | None = None,
) -> list[EvalItem]:
    """Every row converted; ``indices`` are the rows' places in the full set (ids use them).

    Missing columns are named up front; a repeated id gets ``#index`` so ids stay unique. A
    field no item can be made of is a ValueError starting with ``locate(index)`` (the file,
    row and line of local data; by default the benchmark and row).
    """
    columns = set(rows.column_names) if hasattr(rows, "column_names") else set().union(*rows)
    missing = [c for c in spec.columns if c not in columns]
    if missing:
        raise ValueError(f"{spec.name}: columns {missing} missing; the data has {sorted(columns)}")
    indices = range(len(rows)) if indices is None else indices
    items, seen = [], set()
    for index, row in zip(indices, rows, strict=True):
        try:
            item = spec.row_to_item(row, index, seed)
        except RowError as exc:
            where = locate(index) if locate else f"{spec.name}, row {index + 1}"
            raise ValueError(f"{where}: {exc}") from None
        if item.id in seen:
            item = replace(item, id=f"{item.id}#{index}")
        seen.add(item.id)
        items.append(item)
    return items


def load_benchmark(
    name: str,
    data: str | Path | None = None,
    *,
    subsample: int | None = None,
    seed: int = 0,
) -> list[EvalItem]:
    """A benchmark's items, from the hub or from ``data`` (a local file or directory).

    ``subsample`` keeps that many rows drawn without replacement by ``seed`` (in dataset
    order), as R-Zero does for the large general benchmarks; ``seed`` also fixes GPQA's
    option order.
    """
    spec = benchmark_spec(name)
    rows = (
        load_hub(spec.hub_id, spec.config, spec.split)
        if data is None
        else load_local(data, spec.split)
    )
    indices = None
    if subsample is not None and subsample < len(rows):
        draw = np.random.default_rng(seed).choice(len(rows), subsample, replace=False)
        indices = np.sort(draw).tolist()
        rows = rows.select(indices)
    locate = None if data is None else functools.partial(row_location, data)
    return items_from_rows(spec, rows, seed=seed, indices=indices, locate=locate)

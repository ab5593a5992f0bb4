"""Corpus sources: local files only, clear errors, length limits and seeded sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selfplay_gym.envs.tasks import CorpusSource, TaskItem, TaskSource


def write_txt(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_txt_file_gives_one_document_per_nonblank_line(tmp_path: Path) -> None:
    path = write_txt(tmp_path / "docs.txt", ["first doc", "", "  second doc  ", "   ", "third"])
    corpus = CorpusSource(path)
    assert len(corpus) == 3
    assert [corpus.document(i) for i in range(3)] == ["first doc", "second doc", "third"]
    assert corpus.document(-1) == "third"
    with pytest.raises(IndexError):
        corpus.document(3)


def test_jsonl_file_with_a_custom_field(tmp_path: Path) -> None:
    rows = [{"body": "alpha", "id": 1}, {"body": "beta", "id": 2}]
    corpus = CorpusSource(write_jsonl(tmp_path / "docs.jsonl", rows), text_field="body")
    assert len(corpus) == 2
    assert corpus.document(1) == "beta"


def test_json_array_file_and_path_objects(tmp_path: Path) -> None:
    path = tmp_path / "docs.json"
    path.write_text(json.dumps([{"text": "one"}, {"text": "two"}]), encoding="utf-8")
    corpus = CorpusSource(path)  # type: ignore[arg-type]
    assert [corpus.document(i) for i in range(len(corpus))] == ["one", "two"]


def test_several_files_are_read_together(tmp_path: Path) -> None:
    a = write_txt(tmp_path / "a.txt", ["a1", "a2"])
    b = write_txt(tmp_path / "b.txt", ["b1"])
    assert len(CorpusSource([a, b])) == 3
    assert len(CorpusSource(str(tmp_path / "*.txt"))) == 3


def test_missing_field_lists_the_columns_found(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", [{"body": "alpha", "id": 1}])
    corpus = CorpusSource(path)
    with pytest.raises(ValueError, match=r"'text' not found.*\['body', 'id'\]"):
        len(corpus)


def test_non_text_field_is_rejected(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "docs.jsonl", [{"body": "alpha", "id": 1}])
    with pytest.raises(ValueError, match="not text"):
        len(CorpusSource(path, text_field="id"))


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.txt")
    corpus = CorpusSource(missing)  # loading is lazy: nothing is read yet
    with pytest.raises(FileNotFoundError, match="nowhere.txt"):
        len(corpus)
    with pytest.raises(FileNotFoundError, match="nothing-"):
        len(CorpusSource(str(tmp_path / "nothing-*.txt")))


@pytest.mark.parametrize("name", ["docs.xml", "docs"])
def test_unsupported_extension_names_the_supported_ones(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=r"\.csv.*\.jsonl.*\.parquet.*\.txt"):
        CorpusSource(str(tmp_path / name))


def test_parquet_and_csv_files_and_an_explicit_builder(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["alpha", "beta"]}), tmp_path / "docs.parquet")
    assert CorpusSource(str(tmp_path / "docs.parquet")).document(1) == "beta"
    (tmp_path / "docs.csv").write_text("text,id\ngamma,1\n")
    assert CorpusSource(str(tmp_path / "docs.csv")).document(0) == "gamma"
    (tmp_path / "docs.data").write_text('{"text": "delta"}\n')
    assert CorpusSource(str(tmp_path / "docs.data"), builder="json").document(0) == "delta"


def test_mixed_formats_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mix formats"):
        CorpusSource([str(tmp_path / "a.txt"), str(tmp_path / "b.jsonl")])


def test_max_chars_truncates(tmp_path: Path) -> None:
    corpus = CorpusSource(write_txt(tmp_path / "docs.txt", ["x" * 50, "short"]), max_chars=10)
    assert corpus.document(0) == "x" * 10
    assert corpus.document(1) == "short"


def test_default_max_chars_is_darcs_30k(tmp_path: Path) -> None:
    corpus = CorpusSource(write_txt(tmp_path / "docs.txt", ["y" * 31_000]))
    assert len(corpus.document(0)) == 30_000


def test_min_chars_filters_short_documents(tmp_path: Path) -> None:
    path = write_txt(tmp_path / "docs.txt", ["tiny", "a longer document", "  pad  "])
    corpus = CorpusSource(path, min_chars=5)
    assert len(corpus) == 1
    assert corpus.document(0) == "a longer document"


def test_nothing_left_after_filtering_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no documents left"):
        len(CorpusSource(write_txt(tmp_path / "docs.txt", ["a", "b"]), min_chars=2))
    with pytest.raises(ValueError, match="no documents left"):
        len(CorpusSource(write_txt(tmp_path / "blank.txt", ["", "  "])))


def test_empty_files_say_so(tmp_path: Path) -> None:
    for name in ("empty.txt", "empty.jsonl"):
        (tmp_path / name).write_text("", encoding="utf-8")
        with pytest.raises(ValueError, match="empty"):
            len(CorpusSource(str(tmp_path / name)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_chars": 0},
        {"min_chars": 10, "max_chars": 5},
        {"difficulties": ()},
        {"difficulties": (0,)},
    ],
)
def test_bad_settings_raise(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CorpusSource(str(tmp_path / "docs.txt"), **kwargs)  # type: ignore[arg-type]


def test_sample_is_deterministic_with_a_seeded_generator(tmp_path: Path) -> None:
    docs = [f"document number {i}" for i in range(20)]
    corpus = CorpusSource(write_txt(tmp_path / "docs.txt", docs), difficulties=(1, 2, 3))
    assert isinstance(corpus, TaskSource)
    first = [corpus.sample(np.random.default_rng(11)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    run_a = [corpus.sample(rng_a) for _ in range(30)]
    assert run_a == [corpus.sample(rng_b) for _ in range(30)]
    assert len({item.task_id for item in run_a}) > 5
    assert {item.difficulty for item in run_a} == {1, 2, 3}


def test_sample_fields(tmp_path: Path) -> None:
    corpus = CorpusSource(write_txt(tmp_path / "docs.txt", ["only one"]), difficulties=(4,))
    item = corpus.sample(np.random.default_rng(0))
    assert isinstance(item, TaskItem)
    assert item == TaskItem(
        task_id="doc-0-d4", domain=corpus.domain, difficulty=4, document="only one", reference=None
    )
    assert json.loads(json.dumps(item.to_dict()))["document"] == "only one"


def test_a_rewritten_file_is_read_fresh(tmp_path: Path) -> None:
    path = tmp_path / "docs.txt"
    write_txt(path, ["old text"])
    assert CorpusSource(str(path)).document(0) == "old text"
    write_txt(path, ["new text, longer", "and a second line"])
    corpus = CorpusSource(str(path))
    assert len(corpus) == 2
    assert corpus.document(0) == "new text, longer"

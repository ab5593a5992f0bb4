"""Malformed local data: each mistake is a ValueError naming the file, the row or line, the field.

Each file is written here, as a user would have it; once these were a bare
``DatasetGenerationError``, ``StopIteration`` or ``AttributeError``, or loaded silently wrong.
"""

from __future__ import annotations

import pytest
from eval_helpers import ScriptedBackend

from selfplay_gym.eval.benchmarks import load_benchmark
from selfplay_gym.eval.items import math_item
from selfplay_gym.eval.runner import evaluate

MATH_ROW = '{"problem": "1+1", "answer": "2"}\n'
CHOICE_ROW = '{"question": "Capital of France?", "options": ["Paris", "Rome"], "answer": "A"}\n'

# (benchmark, file name, content, what the message says after the file's path)
# fmt: off
BAD_FILES = [
    ("math500", "broken.jsonl", MATH_ROW + '{"problem": "2+2", "answer": \n',
     ", line 2: not valid JSON (Expecting value, column 30); fix or delete the line"),
    ("math500", "surrogate.jsonl", MATH_ROW + '{"problem": "x \\ud800", "answer": "4"}\n',
     ", line 2, field 'problem': the text holds a lone surrogate"),
    ("mmlu_pro", "surrogate.jsonl",
     '{"question": "q", "options": ["Paris", "\\udc00"], "answer": "A"}\n',
     ", line 1, field 'options[1]': the text holds a lone surrogate"),
    ("math500", "latin1.jsonl", MATH_ROW + '{"problem": "caf\xe9", "answer": "1"}\n',
     ", line 2: not UTF-8 text (invalid continuation byte at byte 17 of the line)"),
    ("math500", "array.jsonl", MATH_ROW + '["2+2", "4"]\n',
     ", line 2: a JSON array where a row must be one JSON object"),
    ("math500", "empty.jsonl", "", " holds no rows; write the benchmark's rows into it"),
    ("math500", "blank.jsonl", "\n\n", " holds no rows"),
    ("math500", "null_problem.jsonl", MATH_ROW + '{"problem": null, "answer": "4"}\n',
     ", row 2 (line 2): field 'problem' is null or missing; give every row its question"),
    ("math500", "null_answer.jsonl", MATH_ROW + '{"problem": "2+2", "answer": null}\n',
     ", row 2 (line 2): field 'answer' is null or missing; give every row its reference answer"),
    ("math500", "gap.jsonl", MATH_ROW + '\n{"problem": "2+2"}\n',  # a blank line: row 2 is line 3
     ", row 2 (line 3): field 'answer' is null or missing"),
    ("mmlu_pro", "options.jsonl", CHOICE_ROW + '{"question": "q", "options": "abcd", "answer": "B"}\n',
     ", row 2 (line 2): field 'options' is 'abcd'; options must be a list of the option texts"),
    ("mmlu_pro", "letter.jsonl", '{"question": "q", "options": ["x", "y"], "answer": "C"}\n',
     ", row 1 (line 1): field 'answer' is 'C', which names none of the 2 options; give a letter"),
    ("math500", "array.json", '[\n {"problem": "1+1", "answer": "2"},\n {"problem": "2+2"}\n]\n',
     ", row 2: field 'answer' is null or missing"),
    ("gpqa_diamond", "gpqa.csv",
     "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\nq,1,2,3,\n",
     ", row 1 (after the header): field 'Incorrect Answer 3' is null or missing"),
    ("gpqa_diamond", "header.csv",
     "Question,Correct Answer,Incorrect Answer 1,Incorrect Answer 2,Incorrect Answer 3\n",
     " holds no rows"),
]
# fmt: on


@pytest.mark.parametrize(
    ("name", "filename", "content", "message"), BAD_FILES, ids=[f"{r[0]}-{r[1]}" for r in BAD_FILES]
)
def test_a_malformed_data_file_names_its_row_and_field(tmp_path, name, filename, content, message):
    path = tmp_path / filename
    path.write_bytes(content.encode("latin-1" if "latin1" in filename else "utf-8"))
    with pytest.raises(ValueError) as error:
        load_benchmark(name, path)
    assert str(error.value).startswith(f"{path}{message}")


def test_a_subsampled_row_is_named_by_its_place_in_the_file(tmp_path):
    path = tmp_path / "late.jsonl"
    path.write_text(MATH_ROW * 5 + '{"problem": "2+2", "answer": null}\n')
    with pytest.raises(ValueError, match=r"late.jsonl, row 6 \(line 6\): field 'answer'"):
        load_benchmark("math500", path, subsample=6)


def test_answers_that_are_numbers_or_lists_still_load(tmp_path):
    path = tmp_path / "numbers.jsonl"
    path.write_text(
        '{"problem": "3*9", "answer": 27.0}\n{"problem": "x", "answer": ["$1$", "1"]}\n'
    )
    assert [item.answer for item in load_benchmark("math500", path)] == ["27", "$1$"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"benchmark": "b", "question": "q"}', "line 2: the record has no field 'id'"),
        ('{"benchmark": "b", "id": 7}', "line 2: field 'id' is 7, not a string"),
        ('["b", "q"]', 'line 2: ["b", "q"] is not a record (an object)'),
    ],
)
def test_a_records_line_of_the_wrong_shape_names_its_line_and_field(tmp_path, line, message):
    """Once ``KeyError: 'id'`` on resuming."""
    items = {"b": [math_item("q", "1+1?", "2")]}
    backend = ScriptedBackend(lambda prompt, index: "\\boxed{2}")
    evaluate(backend, items, output_dir=tmp_path, progress=False)
    with open(tmp_path / "records.jsonl", "a") as handle:
        handle.write(line + "\n")
    with pytest.raises(ValueError) as error:
        evaluate(backend, items, output_dir=tmp_path, progress=False)
    assert str(error.value).startswith(f"{tmp_path / 'records.jsonl'}, {message}")
    assert "delete that line to redo its question, or use another --output-dir" in str(error.value)


def test_a_resumed_record_lacking_what_resuming_reads_is_named(tmp_path):
    items = {"b": [math_item("q", "1+1?", "2")]}
    (tmp_path / "records.jsonl").write_text('{"benchmark": "b", "id": "q", "prompt": "1+1?"}\n')
    with pytest.raises(
        ValueError, match=r"records.jsonl, line 1: the record has no field 'answer_type'"
    ):
        evaluate(ScriptedBackend(lambda p, i: ""), items, output_dir=tmp_path, progress=False)

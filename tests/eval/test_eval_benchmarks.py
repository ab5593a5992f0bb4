"""Every benchmark loader on a fixture with its real schema, read through datasets like the hub."""

from __future__ import annotations

import datasets
import pytest
from eval_helpers import FIXTURES, fixture_path

from selfplay_gym.eval.benchmarks import (
    BENCHMARKS,
    GENERAL_BENCHMARKS,
    MATH_BENCHMARKS,
    benchmark_spec,
    load_benchmark,
)
from selfplay_gym.eval.items import CHOICE_INSTRUCTION, MATH_INSTRUCTION, EvalItem, shuffled_choices

# name -> (number of rows, first item's id, every reference answer)
EXPECTED = {
    "math500": (
        3,
        "test/precalculus/807.json",
        ["\\left( 3, \\frac{\\pi}{2} \\right)", "26000", "11\\sqrt2"],
    ),
    "gsm8k": (4, "0", ["9", "3", "1200", "42"]),
    "amc23": (2, "0", ["27", "36"]),
    "aime24": (2, "60", ["204", "025"]),
    "aime25": (2, "0", ["70", "588"]),
    "minerva": (2, "0", ["1.6", "4.5e33"]),
    "olympiadbench": (2, "1606", ["2", "$1$"]),
    "mmlu_pro": (3, "70", ["I", "B", "C"]),
    "supergpqa": (2, "a2c5a7e1b0c54d7e8b0f4c7e2d3f1a90", ["B", "C"]),
    "bbeh": (3, "boolean expressions-0", ["True", "(A)", "3"]),
}


def test_every_registered_benchmark_has_a_fixture_and_a_domain():
    assert set(BENCHMARKS) == set(MATH_BENCHMARKS) | set(GENERAL_BENCHMARKS)
    for name in BENCHMARKS:
        assert fixture_path(name).parent == FIXTURES


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_loader_normalises_fixture_rows(name):
    items = load_benchmark(name, fixture_path(name))
    count, first_id, answers = EXPECTED[name]
    assert len(items) == count and items[0].id == first_id
    assert [item.answer for item in items] == answers
    spec = benchmark_spec(name)
    for item in items:
        assert isinstance(item, EvalItem)
        if item.answer_type == "choice":
            assert spec.domain == "general" and item.prompt.endswith(CHOICE_INSTRUCTION)
            assert "\nA. " in item.prompt and len(item.choices) >= 2
        else:
            assert item.prompt.endswith(MATH_INSTRUCTION) and item.choices == ()
    expected_type = "text" if name == "bbeh" else "math" if spec.domain == "math" else "choice"
    assert {item.answer_type for item in items} == {expected_type}


def test_mmlu_pro_keeps_all_options_in_letter_order():
    item = load_benchmark("mmlu_pro", fixture_path("mmlu_pro"))[0]
    assert len(item.choices) == 9 and item.choices[8] == "Unsafe practices, Distress, Fear, Serious"
    assert "\nI. Unsafe practices, Distress, Fear, Serious\n" in item.prompt


def test_gpqa_options_are_shuffled_deterministically_and_the_letter_follows():
    items = load_benchmark("gpqa_diamond", fixture_path("gpqa_diamond"))
    again = load_benchmark("gpqa_diamond", fixture_path("gpqa_diamond"))
    assert items == again
    assert [i.id for i in items] == ["recgI4BnSzH2Ktxqr", "rec3PUGdsu9cyTxWw", "recf1f0Ttx9rCMCux"]
    truth = ["10^-4 eV", "11", "-0.7"]
    for item, correct in zip(items, truth, strict=True):
        assert item.choices[ord(item.answer) - ord("A")] == correct
    letters = {shuffled_choices("right", ["w1", "w2", "w3"], key="r", seed=s)[1] for s in range(40)}
    assert len(letters) == 4, "over many seeds the right answer lands on every letter"


def test_subsample_is_reproducible_and_keeps_original_ids():
    first = load_benchmark("gsm8k", fixture_path("gsm8k"), subsample=2, seed=3)
    assert first == load_benchmark("gsm8k", fixture_path("gsm8k"), subsample=2, seed=3)
    assert len(first) == 2 and {i.id for i in first} <= {"0", "1", "2", "3"}
    full = {i.id: i for i in load_benchmark("gsm8k", fixture_path("gsm8k"))}
    assert all(full[i.id] == i for i in first)


def test_hub_path_asks_datasets_for_the_papers_id_config_and_split(monkeypatch):
    local = datasets.load_dataset("json", data_files=str(fixture_path("gsm8k")), split="train")
    calls = []

    def fake_load_dataset(path, name=None, split=None, **kwargs):
        calls.append((path, name, split))
        return local

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    items = load_benchmark("gsm8k")
    assert calls == [("openai/gsm8k", "main", "test")] and items[0].answer == "9"
    assert (benchmark_spec("gpqa_diamond").hub_id, benchmark_spec("gpqa_diamond").config) == (
        "Idavidrein/gpqa",
        "gpqa_diamond",
    )


def test_hub_failure_explains_the_offline_route(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(OSError, match="--data NAME=PATH"):
        load_benchmark("math500")


def test_a_save_to_disk_directory_loads_like_a_file(tmp_path):
    rows = datasets.load_dataset("json", data_files=str(fixture_path("aime24")), split="train")
    datasets.DatasetDict({"train": rows}).save_to_disk(str(tmp_path / "aime"))
    assert load_benchmark("aime24", tmp_path / "aime") == load_benchmark(
        "aime24", fixture_path("aime24")
    )


def test_missing_columns_and_files_are_named(tmp_path):
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"prompt": "1+1", "solution": "2"}\n')
    with pytest.raises(ValueError, match=r"columns \['question', 'answer'\] missing"):
        load_benchmark("gsm8k", wrong)
    with pytest.raises(FileNotFoundError):
        load_benchmark("gsm8k", tmp_path / "nowhere.jsonl")
    with pytest.raises(KeyError, match="unknown benchmark"):
        load_benchmark("math5000", wrong)


def test_eval_item_rejects_inconsistent_choices():
    with pytest.raises(ValueError, match="not one of the option letters"):
        EvalItem("x", "q", "E", "choice", ("a", "b", "c", "d"))
    with pytest.raises(ValueError, match="answer_type"):
        EvalItem("x", "q", "1", "number")

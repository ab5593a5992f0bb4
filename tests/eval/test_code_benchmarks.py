"""Code benchmarks: fixtures in the hub schemas, programs judged in the sandbox, pass@k, the CLI."""

from __future__ import annotations

import base64
import json
import os
import pickle
import zlib
from pathlib import Path

import pytest
from eval_helpers import ScriptedBackend

from selfplay_gym.envs.sandbox import run
from selfplay_gym.eval.benchmarks import benchmark_spec, load_benchmark
from selfplay_gym.eval.code_benchmarks import CodeItem, pickled_text
from selfplay_gym.eval.code_checking import CodeChecker, extract_program, same_stdout
from selfplay_gym.eval.metrics import pass_at_k
from selfplay_gym.eval.runner import evaluate

CODE = Path(__file__).resolve().parents[1] / "fixtures" / "code"


def items(name: str) -> list[CodeItem]:
    return load_benchmark(name, CODE / f"{name}.jsonl")


def fence(code: str) -> str:
    return f"Here is my solution.\n```python\n{code}\n```\nIt runs in O(n)."


# --- loading -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, ids, kinds",
    [
        ("humaneval", ["HumanEval/0", "HumanEval/1", "HumanEval/2"], {"script"}),
        ("mbpp", ["11", "12", "13"], {"script"}),
        ("livecodebench", ["abc901_a", "1901A", "3901", "3902"], {"stdin", "functional"}),
    ],
)
def test_each_fixture_loads_as_code_items(name, ids, kinds):
    loaded = items(name)
    assert [item.id for item in loaded] == ids and {item.kind for item in loaded} == kinds
    assert all(isinstance(i, CodeItem) and i.answer_type == "code" for i in loaded)
    assert benchmark_spec(name).domain == "code"


def test_prompts_and_tests_follow_each_benchmark():
    human = items("humaneval")[0]
    assert "def sum_of_squares(numbers: List[int]) -> int:" in human.prompt
    assert human.prompt.startswith("Please provide a self-contained Python script")
    assert human.tests.rstrip().endswith("check(sum_of_squares)")
    mbpp = items("mbpp")[2]
    assert "Your code should pass these tests:\n\nassert math.isclose(circle_area(1)" in mbpp.prompt
    assert mbpp.prelude == "import math\n" and "314.16" not in mbpp.tests  # no challenge tests
    stdin, gap, functional, _ = items("livecodebench")
    assert "# YOUR CODE HERE" in stdin.prompt and "def countAbove(self" in functional.prompt
    assert len(stdin.cases) == 3 and stdin.cases[0] == ("3 5\n", "8\n")  # public, then private
    assert gap.cases[1] == ("2\n10 3\n", "7\n3\n")  # from base64(zlib(pickle(JSON)))
    assert functional.entry_point == "countAbove" and functional.cases[0] == ("[1, 5, 7]\n4", "2")


def lcb_row(**fields):
    row = {"question_title": "t", "question_content": "Print 1.", "platform": "atcoder",
           "question_id": "q1", "contest_id": "c", "contest_date": "2024-01-01T00:00:00",
           "starter_code": "", "difficulty": "easy",
           "public_test_cases": json.dumps([{"input": "", "output": "1", "testtype": "stdin"}]),
           "private_test_cases": "[]", "metadata": "{}"}
    return {**row, **fields}


def write_rows(path: Path, *rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_compressed_tests_are_read_without_unpickling(tmp_path):
    """A pickle that would run a command is refused by its opcodes: the command never runs."""
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    blob = base64.b64encode(zlib.compress(pickle.dumps(Boom()))).decode()
    data = write_rows(tmp_path / "lcb.jsonl", lcb_row(private_test_cases=blob))
    with pytest.raises(ValueError, match=r"lcb.jsonl, row 1 \(line 1\).*refused"):
        load_benchmark("livecodebench", data)
    assert not marker.exists()
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        assert pickled_text(pickle.dumps('[{"input": "é"}]', protocol=protocol)) == '[{"input": "é"}]'
    with pytest.raises(ValueError, match="not just a string"):
        pickled_text(pickle.dumps(["a list", "of strings"]))


@pytest.mark.parametrize(
    "row, message",
    [
        (lcb_row(public_test_cases="[]"), "hold no tests"),
        (lcb_row(public_test_cases="not json, not base64!"), "neither JSON nor base64"),
        (lcb_row(public_test_cases=json.dumps([{"input": "[1]", "output": "1",
                                                 "testtype": "functional"}])), "func_name"),
        (lcb_row(metadata='{"func_name": "f"}', public_test_cases=json.dumps(
            [{"input": "[1", "output": "1", "testtype": "functional"}])), "test 1 is not JSON"),
    ],
)
def test_a_bad_livecodebench_row_names_its_line_and_the_fix(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        load_benchmark("livecodebench", write_rows(tmp_path / "lcb.jsonl", row))


def test_a_bad_humaneval_or_mbpp_row_names_the_fix(tmp_path):
    row = json.loads((CODE / "humaneval.jsonl").read_text().splitlines()[0])
    data = write_rows(tmp_path / "h.jsonl", {**row, "entry_point": "not a name"})
    with pytest.raises(ValueError, match="row 1 .*give a function name"):
        load_benchmark("humaneval", data)
    row = json.loads((CODE / "mbpp.jsonl").read_text().splitlines()[0])
    with pytest.raises(ValueError, match="list of assert statements"):
        load_benchmark("mbpp", write_rows(tmp_path / "m.jsonl", {**row, "test_list": []}))


# --- extracting and judging --------------------------------------------------------------------
def test_the_program_is_the_last_python_block_else_the_text():
    two = "```python\nx = 1\n```\nthen\n```python\nx = 2\n```\n```\noutput\n```"
    assert extract_program(two) == "x = 2\n"
    assert extract_program("```\ny = 3\n```") == "y = 3\n"
    assert extract_program("Sure:\n```python\ndef f():\n    return 1") == "def f():\n    return 1"
    assert extract_program("    return x\n") == "    return x\n"
    assert extract_program("  \n") is None and extract_program("```python\n```") is None


def test_stdout_lines_compare_as_lcb_does():
    assert same_stdout("8\n", "8") and same_stdout(" 1 2 \n3\n\n", "1 2\n3")
    assert same_stdout("2.50\n", "2.5") and not same_stdout("2.51", "2.5")
    assert not same_stdout("1\n2", "1") and not same_stdout("yes", "YES")
    assert not same_stdout("sNaN", "1") and not same_stdout("1 x", "1 y")  # never raises


def test_humaneval_right_wrong_malformed_and_hostile(isolated, tmp_path):
    item = items("humaneval")[0]
    marker = tmp_path / "escaped"
    completions = {
        "whole function": fence("def sum_of_squares(numbers: List[int]) -> int:\n"
                                "    return sum(n ** 2 for n in numbers)"),
        "body only": "    total = 0\n    for n in numbers:\n        total += n * n\n    return total\n",
        "wrong": fence("def sum_of_squares(numbers):\n    return sum(numbers)"),
        "prose": "I would square each number and add them up.",
        "empty": "",
        "infinite loop": fence("def sum_of_squares(numbers):\n    while True:\n        pass"),
        "os.system": fence(f"import os\nos.system('touch {marker}')\nopen('{marker}', 'w')\n"
                           "def sum_of_squares(numbers):\n    return 0"),
        "exits early": fence("import sys\ndef sum_of_squares(numbers):\n    return 0\nsys.exit(0)"),
    }
    checker = CodeChecker(timeout_s=2.0, workers=4)
    checks = dict(zip(completions, checker.check_many([item] * len(completions),
                                                      list(completions.values())), strict=True))
    assert checks["whole function"].correct and checks["whole function"].method == "ok"
    assert checks["whole function"].extracted.startswith("from typing import List\n")
    assert checks["body only"].correct  # continued the prompt
    assert checks["wrong"].method == "wrong_answer" and not checks["wrong"].correct
    assert checks["prose"].method == "error" and "SyntaxError" in checks["prose"].error
    assert checks["empty"].method == "none" and checks["empty"].extracted is None
    assert checks["infinite loop"].method == "timeout" and not checks["infinite loop"].correct
    assert not checks["os.system"].correct and not marker.exists()
    assert checks["exits early"].method == "no_result" and not checks["exits early"].correct


def test_mbpp_runs_the_setup_code_before_the_program(isolated):
    _, reverse, circle = items("mbpp")
    checker = CodeChecker(timeout_s=5.0)
    right = fence("def circle_area(r):\n    return round(3.141592653589793 * r * r, 2)")
    checks = checker.check_many([circle, circle, reverse],
                                [right, fence("def circle_area(r):\n    return 3.14"),
                                 "def reverse_words(s):\n    return s[::-1]"])
    assert [c.correct for c in checks] == [True, False, False]  # math came from test_setup_code
    assert checks[2].method == "wrong_answer"


def test_livecodebench_stdin_and_functional(isolated):
    add, gap, above, largest = items("livecodebench")
    checker = CodeChecker(timeout_s=5.0)
    cases = [
        (add, fence("import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)"), "ok"),
        (add, "a, b = map(int, input().split())\nprint(a * b)", "wrong_answer"),
        (gap, fence("n = int(input())\nxs = [int(x) for x in input().split()]\n"
                    "print(max(abs(a - b) for a, b in zip(xs, xs[1:])))\nprint(min(xs))"), "ok"),
        (above, fence("class Solution:\n    def countAbove(self, nums: List[int], k: int) -> int:"
                      "\n        return sum(x > k for x in nums)"), "ok"),
        (above, fence("def countAbove(nums, k):\n    return len([x for x in nums if x > k])"), "ok"),
        (above, fence("class Solution:\n    def countAbove(self, nums, k):\n        return 2"),
         "wrong_answer"),
        (largest, fence("class Solution:\n    def twoLargest(self, nums):\n"
                        "        a = sorted(nums)\n        return a[-1], a[-2]"), "ok"),  # a tuple
        (largest, fence("class Anything:\n    def __eq__(self, other):\n        return True\n"
                        "class Solution:\n    def twoLargest(self, nums):\n"
                        "        return Anything()"), "error"),  # not JSON: cannot fake equality
    ]
    checks = checker.check_many([c[0] for c in cases], [c[1] for c in cases])
    assert [c.method for c in checks] == [c[2] for c in cases]
    assert checks[1].error.startswith("test 1: expected '8\\n', got '15\\n'")


def test_the_sandbox_gives_a_program_its_stdin(isolated):
    result = run("import sys\nprint(input()[::-1])\nprint(sys.stdin.read().split())\n"
                 "print(repr(open(0).read()))", stdin="abc\n1 2\n3\n")
    assert result.ok and result.stdout == "cba\n['1', '2', '3']\n''\n"
    assert run("print(input())").error_type == "EOFError"  # no stdin: empty, as before


# --- pass@k ------------------------------------------------------------------------------------
def test_pass_at_k_by_hand_and_through_evaluate(isolated, tmp_path):
    """n = 4 samples, c = 2 right: pass@1 = 2/4; pass@2 = 1 - C(2,2)/C(4,2) = 1 - 1/6 = 5/6."""
    assert pass_at_k(4, 2, 1) == 0.5 and pass_at_k(4, 2, 2) == pytest.approx(5 / 6)
    assert pass_at_k(4, 2, 3) == 1.0
    right, wrong = "    return sum(n * n for n in numbers)\n", "    return -1\n"
    backend = ScriptedBackend(lambda prompt, index: right if index in (1, 2) else wrong)
    results = evaluate(backend, {"humaneval": items("humaneval")[:1]}, samples=4, k=(1, 2, 4),
                       temperature=0.8, output_dir=tmp_path, progress=False,
                       code_checker=CodeChecker(timeout_s=5.0))
    scores = results["benchmarks"]["humaneval"]
    assert scores["accuracy"] == 0.5 and scores["pass@2"] == pytest.approx(5 / 6)
    assert scores["pass@4"] == 1.0 and scores["no_answer"] == 0.0
    record = json.loads((tmp_path / "records.jsonl").read_text())
    assert record["correct"] == [False, True, True, False]
    assert record["methods"] == ["wrong_answer", "ok", "ok", "wrong_answer"]


def test_cli_scores_the_code_fixtures_with_the_tiny_model(isolated, tmp_path, capsys):
    from selfplay_gym.eval.cli import main

    out = tmp_path / "eval"
    argv = ["--model", "tiny", "--benchmarks", "code", "--data",
            f"humaneval={CODE / 'humaneval.jsonl'}", "--data", f"mbpp={CODE / 'mbpp.jsonl'}",
            "--data", f"livecodebench={CODE / 'livecodebench.jsonl'}", "--samples", "2",
            "--k", "1,2", "--max-new-tokens", "8", "--limit", "2", "--code-timeout", "5",
            "--output-dir", str(out), "--no-progress"]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    for name in ("humaneval", "mbpp", "livecodebench"):
        scores = results["benchmarks"][name]
        assert scores["questions"] == 2 and {"accuracy", "pass@2", "maj@2"} <= set(scores)
        assert 0.0 <= scores["pass@2"] <= 1.0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 6 and all(r["answer_type"] == "code" for r in records)
    assert all(len(r["methods"]) == 2 for r in records)
    assert "| humaneval | 2 |" in capsys.readouterr().out

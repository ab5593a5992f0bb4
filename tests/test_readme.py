"""Every ```python block of README.md runs as written: a fresh interpreter in a fresh directory.

A block may be left unrun only if it needs a GPU or a hub model, marked on the line before its
fence with ``<!-- not run: needs a GPU -->`` or ``<!-- not run: needs a hub model -->``; any
other reason fails. The runs are offline (``HF_HUB_OFFLINE=1``) and use the embedded tiny
model, so a block that reaches for the hub fails here instead of passing by download.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->")
ALLOWED_REASONS = ("needs a GPU", "needs a hub model")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class Block(NamedTuple):
    line: int
    """Line number of the opening fence in README.md."""
    code: str
    not_run: str | None
    """The reason given in a ``<!-- not run: ... -->`` marker, or None."""


def python_blocks(text: str) -> list[Block]:
    lines, blocks, start = text.splitlines(), [], None
    for number, line in enumerate(lines):
        if start is None and line.strip() == "```python":
            start = number
        elif start is not None and line.strip() == "```":
            marker = NOT_RUN.search(lines[start - 1]) if start else None
            code = "\n".join(lines[start + 1 : number]) + "\n"
            blocks.append(Block(start + 1, code, marker.group(1) if marker else None))
            start = None
    assert start is None, f"README.md line {start + 1}: a ```python block is never closed"
    return blocks


BLOCKS = python_blocks(README.read_text(encoding="utf-8"))
SLOW = [pytest.mark.slow]  # a block that loads a model trains on it: 20-60 s on 2 CPU cores
PARAMS = [
    pytest.param(b, id=f"README.md:{b.line}", marks=SLOW if "tiny_model_dir" in b.code else [])
    for b in BLOCKS
]


def test_the_readme_has_python_examples_including_the_trl_bridge():
    assert len(BLOCKS) >= 5
    assert any("make_rollout_func" in b.code and b.not_run is None for b in BLOCKS)
    assert any("parallel_env" in b.code and b.not_run is None for b in BLOCKS)


def test_the_block_parser_reads_fences_and_markers():
    text = ("x\n<!-- not run: needs a GPU -->\n```python\na = 1\n```\n"
            "```bash\nls\n```\n```python\nb\n```\n")
    assert python_blocks(text) == [Block(3, "a = 1\n", "needs a GPU"), Block(9, "b\n", None)]


@pytest.mark.parametrize("block", PARAMS)
def test_readme_block_runs_as_written(block, tmp_path):
    if block.not_run is not None:
        assert block.not_run.startswith(ALLOWED_REASONS), (
            f"README.md line {block.line}: 'not run: {block.not_run}' is not an allowed reason; "
            f"only {ALLOWED_REASONS} excuse a block from running"
        )
        pytest.skip(f"README.md line {block.line}: {block.not_run}")
    script = tmp_path / "readme_block.py"
    script.write_text(block.code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
        timeout=600, env={**os.environ, **OFFLINE},
    )
    assert result.returncode == 0, (
        f"README.md line {block.line} failed:\n{block.code}\n--- stderr ---\n{result.stderr[-4000:]}"
    )

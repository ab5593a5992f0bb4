"""Every ``selfplay_gym/<module>.py::Name`` the docs cite exists, so a rename cannot leave a
mode page pointing at nothing."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
REFERENCE = re.compile(r"`(selfplay_gym/[\w/]+)\.py::([\w.]+)`")


def references():
    for page in PAGES:
        for path, name in REFERENCE.findall(page.read_text(encoding="utf-8")):
            yield pytest.param(path, name, id=f"{page.name}:{path}::{name}")


@pytest.mark.parametrize("path, name", list(references()))
def test_cited_name_exists(path, name):
    assert (ROOT / f"{path}.py").is_file(), f"{path}.py does not exist"
    target = importlib.import_module(path.replace("/", "."))
    for part in name.split("."):
        fields = {f.name for f in dataclasses.fields(target)} if dataclasses.is_dataclass(target) else set()
        assert hasattr(target, part) or part in fields, f"{path}.py has no {name}"
        target = getattr(target, part, None)

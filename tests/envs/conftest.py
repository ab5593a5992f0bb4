"""Fixtures shared by the env tests."""

from __future__ import annotations

import os

import pytest

from selfplay_gym.envs.sandbox import isolation_problem


@pytest.fixture(scope="module")
def isolated():
    """The sandbox's namespaces must work here; on CI a machine without them fails the tests
    that use it instead of skipping them (the reason is shown either way)."""
    problem = isolation_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)

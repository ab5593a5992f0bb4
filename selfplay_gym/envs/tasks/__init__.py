"""Where an episode's questions come from: an embedded arithmetic domain and local corpora."""

from __future__ import annotations

from selfplay_gym.envs.tasks.arithmetic import (
    ArithmeticTask,
    Problem,
    is_arithmetic,
    solve,
    worked_solution,
)
from selfplay_gym.envs.tasks.base import TaskItem, TaskSource
from selfplay_gym.envs.tasks.corpus import CorpusSource
from selfplay_gym.envs.tasks.documents import WordProblemCorpus, make_document

__all__ = [
    "ArithmeticTask",
    "CorpusSource",
    "Problem",
    "TaskItem",
    "TaskSource",
    "WordProblemCorpus",
    "make_document",
    "is_arithmetic",
    "solve",
    "worked_solution",
]

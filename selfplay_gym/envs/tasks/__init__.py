"""Where an episode's questions come from: an embedded arithmetic domain, local corpora and
question files."""

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
from selfplay_gym.envs.tasks.files import Question, QuestionSet, task_from_spec

__all__ = [
    "ArithmeticTask",
    "CorpusSource",
    "Problem",
    "Question",
    "QuestionSet",
    "TaskItem",
    "TaskSource",
    "WordProblemCorpus",
    "make_document",
    "is_arithmetic",
    "solve",
    "task_from_spec",
    "worked_solution",
]

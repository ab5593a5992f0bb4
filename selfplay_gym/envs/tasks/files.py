"""Questions or documents of one's own, from a local file: ``--task jsonl:PATH``.

``task_from_spec("FORMAT:PATH")`` reads the file once through ``datasets`` (formats: jsonl,
json, parquet, csv, txt; PATH may be a glob) and decides by its fields what it holds:

- ``question`` (or ``problem``) and ``answer``: a ``QuestionSet``. A seeded share is held out
  for evaluation (``--train.eval-every``); the rest is what ``--scripted questioner=dataset``
  asks and what ``--scripted judge=reference`` answers from. Each episode's task item carries
  its ``question`` (a mode of one's own reads ``episode.task["question"]``).
- ``text`` (or ``document``): a corpus of documents, ``CorpusSource``, for the modes that read
  one (DARC, ALIVE). A ``.txt`` file is one document per line.

Nothing here touches the network (a hub dataset is the build step's: ``hf:NAME``).
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selfplay_gym.envs.tasks.base import TaskItem
from selfplay_gym.envs.tasks.corpus import CorpusSource

FORMATS: dict[str, str] = {"jsonl": "json", "json": "json", "parquet": "parquet", "csv": "csv",
                           "txt": "text"}
"""``--task`` prefix -> ``datasets`` builder."""
QUESTION_FIELDS = ("question", "problem")
DOCUMENT_FIELDS = ("text", "document")


@dataclass(frozen=True)
class Question:
    """One question of a file and its reference answer (the shape DatasetQuestioner reads)."""

    question: str
    answer: str


@dataclass(frozen=True)
class QuestionItem(TaskItem):
    """A task item that carries its question (like DARC's ``CurriculumItem``)."""

    question: str = ""


class QuestionSet:
    """Implements TaskSource: questions with reference answers, a seeded share held out.

    ``held_out_size`` questions (default: a tenth, at most 200) are drawn with ``seed`` and never
    sampled for training; ``held_out()`` returns them, the same in every process.
    """

    def __init__(self, questions: Sequence[Question], held_out_size: int | None = None,
                 domain: str = "mathematics", name: str = "questions", seed: int = 1234):
        questions = list(questions)
        if not questions:
            raise ValueError(f"{name}: no questions")
        k = min(200, len(questions) // 10) if held_out_size is None else held_out_size
        if not 0 <= k < len(questions):
            raise ValueError(f"{name}: held_out_size {k} leaves no question of {len(questions)} "
                             "to train on")
        order = np.random.default_rng(seed).permutation(len(questions))
        self.held = [questions[i] for i in sorted(order[:k])]
        self.train = [questions[i] for i in sorted(order[k:])]
        self.domain, self.name = domain, name
        self._answers = {q.question.strip(): q.answer for q in questions}

    def __len__(self) -> int:
        return len(self.train)

    def sample(self, rng: np.random.Generator) -> QuestionItem:
        index = int(rng.integers(len(self.train)))
        q = self.train[index]
        return QuestionItem(task_id=f"{self.name}-{index}", domain=self.domain,
                            reference=q.answer, question=q.question)

    def problems(self, n: int, seed: int) -> list[Question]:
        """``n`` training questions in a seeded order, each once before any repeats."""
        rng = np.random.default_rng(seed)
        rounds = -(-n // len(self.train))
        order = np.concatenate([rng.permutation(len(self.train)) for _ in range(rounds)])
        return [self.train[i] for i in order[:n]]

    def held_out(self, n: int = 200, seed: int = 1234) -> list[Question]:
        """The held-out questions (the first ``n``); fixed when the set is built, so ``seed`` is
        accepted for ArithmeticTask's signature only."""
        return self.held[:n]

    def answer(self, question: str) -> str | None:
        """The reference answer of a question of this file (a reference judge's), else None."""
        return self._answers.get(str(question).strip())


def task_from_spec(spec: str, held_out_size: int | None = None) -> Any:
    """The task source ``--task FORMAT:PATH`` names: a QuestionSet or a CorpusSource."""
    kind, sep, where = spec.partition(":")
    if not sep or kind not in FORMATS or not where:
        raise ValueError(f"--task {spec!r}: write FORMAT:PATH with a format of {sorted(FORMATS)} "
                         "(e.g. jsonl:questions.jsonl), or hf:NAME[@SPLIT] for a hub dataset")
    files = sorted(glob.glob(where)) if glob.has_magic(where) else [where]
    files = [f for f in files if Path(f).is_file()]
    if not files:
        raise ValueError(f"--task {spec!r}: no file {where}")
    rows = _read(spec, FORMATS[kind], files)
    columns = list(rows.column_names)
    question = next((c for c in QUESTION_FIELDS if c in columns), None)
    if question and "answer" in columns:
        return QuestionSet(_questions(spec, rows, question), held_out_size, name=Path(files[0]).stem)
    document = next((c for c in DOCUMENT_FIELDS if c in columns), None)
    if document:
        return CorpusSource(files, text_field=document, builder=FORMATS[kind])
    raise ValueError(f"--task {spec!r}: its rows have fields {columns}; a question set needs "
                     "'question' (or 'problem') and 'answer', a corpus 'text' (or 'document')")


def _read(spec: str, builder: str, files: list[str]) -> Any:
    import datasets

    if all(Path(f).stat().st_size == 0 for f in files):
        raise ValueError(f"--task {spec!r}: the file is empty")
    try:
        return datasets.load_dataset(builder, data_files=files, split="train")
    except (datasets.exceptions.DatasetGenerationError, StopIteration, ValueError) as exc:
        raise ValueError(f"--task {spec!r}: cannot read it as {builder} ({exc.__cause__ or exc})") from None


def _questions(spec: str, rows: Any, field: str) -> list[Question]:
    out = []
    for number, (question, answer) in enumerate(zip(rows[field], rows["answer"], strict=True), 1):
        if not isinstance(question, str) or not question.strip() or answer is None:
            raise ValueError(f"--task {spec!r}: row {number} has no {field!r} text or no 'answer'")
        out.append(Question(question.strip(), str(answer).strip()))
    return out

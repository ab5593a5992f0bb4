"""What a run plays on and is measured on: ``--task`` to a task source, and the held-out
evaluator ``--train.eval-every`` calls.

``--task FORMAT:PATH`` is ``envs.tasks.files.task_from_spec`` (a local file, no network).
``--task hf:NAME[@SPLIT]`` downloads a hub dataset once with ``datasets`` (split "train" by
default), saves it as parquet in the cache (``$SELFPLAY_GYM_CACHE/tasks``) and reads that file
from then on, offline too; without network it says how to bring the file over instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from selfplay_gym.envs.tasks.files import task_from_spec


def task_source(spec: str) -> Any:
    """The task source ``--task`` names; None for "" (the mode's own task)."""
    if not spec:
        return None
    kind, _, where = spec.partition(":")
    if kind == "hf":
        return task_from_spec(f"parquet:{hub_dataset_file(where, spec)}")
    return task_from_spec(spec)


def hub_dataset_file(name_split: str, spec: str) -> Path:
    """The cached parquet file of hub dataset ``NAME[@SPLIT]``, downloaded on first use."""
    from selfplay_gym.agents.loading import hub_offline
    from selfplay_gym.agents.tiny import default_cache_dir

    name, _, split = name_split.partition("@")
    split = split or "train"
    if not name:
        raise ValueError(f"--task {spec!r}: write hf:NAME or hf:NAME@SPLIT, e.g. hf:openai/gsm8k@test")
    path = default_cache_dir() / "tasks" / f"{name.replace('/', '--')}@{split}.parquet"
    if path.is_file():
        return path
    fix = (f"download it where there is network (python -c \"import datasets; datasets.load_dataset("
           f"'{name}', split='{split}').to_parquet('{path.name}')\"), copy the file here and pass "
           f"--task parquet:{path.name}")
    if hub_offline():
        raise ValueError(f"--task {spec!r} needs the network to download {name}, and "
                         f"HF_HUB_OFFLINE is set: {fix}")
    import datasets

    try:
        rows = datasets.load_dataset(name, split=split)
    except Exception as exc:  # offline, unknown name, gated: one line and the fix
        raise ValueError(f"--task {spec!r}: cannot load {name} split {split} from the hub "
                         f"({type(exc).__name__}: {str(exc)[:200]}); {fix}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    rows.to_parquet(str(partial))
    partial.replace(path)
    return path


def eval_adapter(adapters: Mapping[str, str]) -> str:
    """The adapter held-out questions are asked of: the solver's, or the one adapter of a
    single-policy run."""
    if "solver" in adapters:
        return adapters["solver"]
    if len(set(adapters.values())) == 1:
        return next(iter(adapters.values()))
    raise ValueError(f"--train.eval-every asks the solver held-out questions, but this mode's LLM "
                     f"roles are {sorted(adapters)} (no solver, several adapters): set "
                     "--train.eval-every 0, or evaluate checkpoints with selfplay-gym eval")


def held_out_questions(task: Any, mode: str) -> list:
    """The task's held-out questions (``held_out()``), or a ValueError naming what has them."""
    if not callable(getattr(task, "held_out", None)):
        raise ValueError(f"--train.eval-every needs held-out questions, and the task of mode "
                         f"{mode!r} ({type(task).__name__}) has none: give a question file "
                         "(--task jsonl:PATH with question and answer fields) or set "
                         "--train.eval-every 0")
    problems = list(task.held_out())
    if not problems:
        raise ValueError("--train.eval-every: the task holds no question out (a question file "
                         "needs 10 or more rows for its tenth); set --train.eval-every 0")
    return problems


def build_evaluator(learner: Any, problems: list, adapter: str, task: Any, max_new_tokens: int):
    """Greedy and sampled held-out accuracy (``eval/*``) of ``adapter`` on the learner: exact
    match for the embedded arithmetic task, math-verify for questions of one's own."""
    from selfplay_gym.envs.graders import get_grader
    from selfplay_gym.envs.tasks import ArithmeticTask
    from selfplay_gym.eval.held_out import HeldOutAccuracy

    grader = None if isinstance(task, ArithmeticTask) else get_grader("math_verify")
    return HeldOutAccuracy(learner, problems, adapter, max_new_tokens, grader=grader)

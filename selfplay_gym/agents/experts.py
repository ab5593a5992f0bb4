"""Scripted experts that play every LLM role of a mode validly: warm-start demonstrations.

``mode_experts(mode, problems=...)`` returns ``{role: policy}`` for R-Zero, AERO, DARC (stage 1
or 2) and ALIVE. Every turn they write parses (``Turn.valid``), in the shortest form the mode's
format allows, so a tiny model with a context of a few hundred tokens can learn them from the
episodes (as ``agents/tiny.py`` does for R-Zero). Solving roles are right with probability
``accuracy`` and otherwise off by one to three, so groups disagree and rewards vary; checking
roles (judges, reviewers, refiners, teachers) are always right.

* AERO: the generator asks ``problems`` as ``{"question": ..., "meta": {...}}``; solvers write
  a worked solution; the judge groups equal answers; refiners re-solve correctly.
* DARC stage 1: the questioner asks for an arithmetic expression over the document's numbers,
  one operation per difficulty level ("What is 45+12-7?"), in the 7-key JSON with short
  constant values; integer, float, categorical (3 options) and boolean answer types are
  written in their own form, other types as integers. Solvers with the document are right;
  students are right with ``accuracy ** steps`` (steps = operations), so harder questions
  are solved less often. The relatedness judge says "yes".
* DARC stage 2: teachers are right, students as in stage 1.
* AZR: the proposer writes ``CodeTask`` template programs and remembers their answers; the
  solver recalls them with probability ``accuracy`` (``experts_azr``).
* ALIVE: the constructor masks one number of the passage (in a ``WordProblemCorpus`` story
  any of its five numbers, each recoverable from two others; elsewhere the last number, else
  the last word). Solvers recover it from the story's sums, or from the span the constructor
  remembers; reviewers compare the boxed answer with the span and give a hint that never
  states the span; revisers keep an answer judged correct and re-solve otherwise.

Every expert with a generator is seeded and has ``reseed(seed)``.

The experts live one mode per module (``experts_aero``, ``experts_darc``, ``experts_alive``;
what they share in ``experts_common``) and are re-exported here; R-Zero's are the generic
ones of ``agents.scripted``.
"""

from __future__ import annotations

from collections.abc import Sequence

from selfplay_gym.agents.experts_aero import AeroGenerator, AeroJudge, Refiner
from selfplay_gym.agents.experts_alive import (
    RECOVER,
    STORY,
    Constructor,
    Reviewer,
    Reviser,
    SpanSolver,
    story_expression,
)
from selfplay_gym.agents.experts_azr import AzrProposer, AzrSolver
from selfplay_gym.agents.experts_common import OFFSETS, expression_in
from selfplay_gym.agents.experts_darc import TYPES, DarcQuestioner, DarcSolver
from selfplay_gym.agents.scripted import (
    DatasetQuestioner,
    FunctionPolicy,
    MajorityJudge,
    NoisySolver,
)
from selfplay_gym.envs.tasks import Problem, solve, worked_solution
from selfplay_gym.types import Policy

__all__ = [
    "MODES",
    "OFFSETS",
    "RECOVER",
    "STORY",
    "TYPES",
    "AeroGenerator",
    "AeroJudge",
    "AzrProposer",
    "AzrSolver",
    "Constructor",
    "DarcQuestioner",
    "DarcSolver",
    "Refiner",
    "Reviewer",
    "Reviser",
    "SpanSolver",
    "expression_in",
    "mode_experts",
    "story_expression",
]

MODES = ("rzero", "aero", "darc", "alive", "azr")


def mode_experts(
    mode: str,
    *,
    problems: Sequence[Problem],
    accuracy: float = 0.7,
    seed: int = 0,
    stage: int = 1,
    mask_format: str = "span",
    families: Sequence[str] = ("slice_case",),
    num_inputs: int = 10,
) -> dict[str, Policy]:
    """Role -> scripted expert for every role ``mode`` asks an LLM to play (also the optional
    ones: AERO's judge, DARC's relatedness judge, ALIVE's reviser).

    ``problems`` feeds the R-Zero and AERO question writers (and DARC's, for a document
    without numbers); ``accuracy`` is the solving roles' chance of being right; ``stage``
    picks DARC's stage (1: questioner, solver, student, judge; 2: teacher, student);
    ``mask_format`` ALIVE's constructor format (``AliveConfig.mask_format``); ``families``
    the ``CodeTask`` families AZR's proposer writes, ``num_inputs`` its induction inputs.
    """
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must be in [0, 1], got {accuracy}")
    if mode == "rzero":
        return {
            "questioner": DatasetQuestioner(problems, seed=seed),
            "solver": NoisySolver(solve, accuracy, seed=seed + 1, explain=worked_solution),
            "judge": MajorityJudge(),
        }
    if mode == "aero":
        return {
            "generator": AeroGenerator(problems, seed=seed),
            "solver": NoisySolver(solve, accuracy, seed=seed + 1, explain=worked_solution),
            "judge": AeroJudge(),
            "refiner": Refiner(seed + 2),
        }
    if mode == "darc":
        if stage == 1:
            return {
                "questioner": DarcQuestioner(problems, seed=seed),
                "solver": DarcSolver(1.0, seed=seed + 1),
                "student": DarcSolver(accuracy, seed=seed + 2),
                "judge": FunctionPolicy(lambda request: "yes"),
            }
        if stage == 2:
            return {"teacher": DarcSolver(1.0, seed=seed + 1),
                    "student": DarcSolver(accuracy, seed=seed + 2)}
        raise ValueError(f"DARC stage must be 1 or 2, got {stage!r}")
    if mode == "alive":
        spans: dict[str, str] = {}
        return {
            "constructor": Constructor(seed, spans, mask_format=mask_format),
            "solver": SpanSolver(accuracy, seed + 1, spans),
            "reviewer": Reviewer(),
            "reviser": Reviser(accuracy, seed + 2, spans),
        }
    if mode == "azr":
        memory: dict = {}
        return {"proposer": AzrProposer(memory, families=families, num_inputs=num_inputs,
                                        seed=seed),
                "solver": AzrSolver(memory, accuracy, seed + 1)}
    raise ValueError(f"no experts for mode {mode!r}; choose one of {MODES}")

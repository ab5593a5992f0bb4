"""Absolute Zero's rewards and its advantage groups, as pure functions.

Source: "Absolute Zero: Reinforced Self-play Reasoning with Zero Data" (Zhao et al., arXiv
2505.03335) §3.1-3.3, and its code (LeapLabTHU/Absolute-Zero-Reasoner,
rewards/reward_managers.py). Where the two differ, the code is the default.
"""

from __future__ import annotations


def learnability_reward(solve_rate: float) -> float:
    """r_propose = 1 - r̄_solve if 0 < r̄_solve < 1, else 0 (paper eq. 4).

    r̄_solve is the mean solve reward of n Monte-Carlo solver rollouts on the proposed task:
    a task every rollout solves, or none does, teaches nothing, so it earns nothing; among the
    rest, harder tasks earn more. (The code's ``generation_accuracy_convertion='one_minus'``:
    ``1 - acc if acc > 0 else 0``, which is the same, since 1 - 1 = 0.)
    """
    if not 0.0 <= solve_rate <= 1.0:
        raise ValueError(f"solve_rate must be in [0, 1], got {solve_rate}")
    return 1.0 - solve_rate if 0.0 < solve_rate < 1.0 else 0.0


def solve_reward(correct: bool) -> float:
    """r_solve = 1[y = y*] (paper eq. 5): the executor's verdict, nothing else."""
    return 1.0 if correct else 0.0


def composite_reward(score: float, well_formed: bool, wrong: float = -0.5,
                     malformed: float = -1.0) -> float:
    """R(y) = r_role if r_role > 0; ``wrong`` (-0.5) if well formed; ``malformed`` (-1) else.

    The paper's eq. 6 (format-aware penalties), as the code applies it (reward_managers.py,
    the final reward loop): a positive role reward passes; a zero one, from a well-formed
    response, is -0.5, so a valid proposal every rollout (or none) solves earns -0.5, the
    same as a wrong answer; a format error is -1. For a proposal, "well formed" means the
    executor accepted it: the code sets its format score to 0 when it fails to run, is not
    deterministic or uses a banned word.
    """
    if score > 0.0:
        return float(score)
    return wrong if well_formed else malformed


def task_relative_group(role: str, task_type: str) -> str:
    """TRR++'s group: one baseline per (role, task type), 2 x 3 = 6 (paper eq. 8).

    A_norm = (r - μ_{task,role}) / σ_{task,role}: group-normalised advantages
    (``algorithms.advantages.group_normalized``) with this key as the group, over the batch.
    """
    return f"{role}:{task_type}"

"""The tiny model's warm-start data: demonstrations that scripted experts play through the envs.

The prompts and targets come from the modes themselves (this module hard-codes no prompt or
answer format), so the model learns exactly the formats the envs parse.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from selfplay_gym.agents.experts import mode_experts
from selfplay_gym.agents.scripted import QUESTION_TEMPLATE
from selfplay_gym.agents.tiny_config import TinyModelConfig
from selfplay_gym.agents.tiny_tokenizer import Example
from selfplay_gym.envs.curriculum import CurriculumTask, build_curriculum
from selfplay_gym.envs.env import SelfPlayReasoningEnv
from selfplay_gym.envs.tasks import ArithmeticTask, Problem, solve
from selfplay_gym.envs.vector import SelfPlayVectorEnv
from selfplay_gym.envs.verify import extract_answer
from selfplay_gym.types import Completion, Messages, Policy, Request

HELD_OUT_SIZE = 200
"""``ArithmeticTask(levels).held_out(HELD_OUT_SIZE)`` is reported and never trained on."""


class _Recorder:
    """Plays a policy and keeps each request with the text the policy answered."""

    def __init__(self, policy: Policy, log: list[tuple[Request, str]]):
        self.policy, self.log = policy, log

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        completions = self.policy.generate(requests)
        self.log.extend((r, c.text) for r, c in zip(requests, completions, strict=True))
        return completions


def training_problems(
    n: int, seed: int, levels: Sequence[int], exclude: Collection[str] = ()
) -> list[Problem]:
    """``n`` problems, none in the held-out set nor in ``exclude``."""
    task = ArithmeticTask(levels=tuple(levels))
    banned = {p.question for p in task.held_out(HELD_OUT_SIZE)} | set(exclude)
    problems = [p for p in task.problems(2 * n + 100, seed=seed) if p.question not in banned]
    if len(problems) < n:
        raise ValueError(f"only {len(problems)} of {n} problems left after excluding {len(banned)}")
    return problems[:n]


SOLVING_ROLES = frozenset({"solver", "student", "teacher", "refiner", "reviser"})


def role_demonstrations(
    config: TinyModelConfig, exclude: Collection[str] = (), progress: bool = False
) -> list[tuple[str, Messages, str]]:
    """(role, prompt, target) from episodes that scripted experts (``agents.experts``) play
    through each mode's env.

    Solving turns are kept when right, once per distinct text (wrong ones only shape what the
    checking roles see): right means the exact value of an arithmetic question, else a reward
    above 0.5 (the experts' checkers are always right, so there the reward is the truth). Other
    turns are kept with chance ``format_share`` in R-Zero, always in the other modes: enough to
    learn their formats while R-Zero's solver examples, which carry the competence, dominate.
    """
    log: list[tuple[str, Request, str]] = []
    rewards: dict[tuple[str, str], float] = {}
    for mode in config.modes:
        mode_log: list[tuple[Request, str]] = []
        share = {"rzero": 1.0, "alive": config.alive_share}.get(mode, config.other_mode_share)
        n = round(config.num_episodes * share)
        problems = training_problems(n, config.seed + len(rewards), config.levels, exclude)
        stages = (1, 2) if mode == "darc" else (1,)
        options: dict[str, Any] = {}
        for stage in stages:
            experts = mode_experts(mode, problems=problems, accuracy=config.solver_accuracy,
                                   seed=config.seed, stage=stage)
            recorders = {role: _Recorder(policy, mode_log) for role, policy in experts.items()}
            episodes = _play(mode, n, config, recorders, options, progress)
            rewards |= {(e.episode_id, a): r for e in episodes for a, r in e.rewards.items()}
            if mode == "darc" and stage == 1:
                options = {"stage": 2, "curriculum": CurriculumTask(build_curriculum(episodes))}
        log += [(mode, request, text) for request, text in mode_log]
    rng, seen, demos = np.random.default_rng(config.seed), set(), []
    for mode, request, text in log:
        mode_share = config.format_share if mode == "rzero" else 1.0
        if request.role in SOLVING_ROLES:
            key = (request.info["episode_id"], request.role, text)
            truth = solve(request.info.get("question"))
            right = (extract_answer(text) == truth if truth is not None
                     else rewards.get((request.info["episode_id"], request.agent), 0.0) > 0.5)
            if key in seen or not (right or request.role == "teacher"):
                continue
            seen.add(key)
        elif rng.random() >= mode_share:
            continue
        demos.append((request.role, request.messages, text))
    return demos


def _play(mode, n, config, recorders, options, progress) -> list:
    """``n`` episodes of ``mode`` in batches of 64, envs reused (building one costs more than an
    episode); the episodes, finished."""
    venvs: dict[int, SelfPlayVectorEnv] = {}
    episodes = []
    size_options = {"num_solvers": config.num_solvers} | (
        {"num_samples": config.num_solvers} if mode == "darc" else {})
    task = ArithmeticTask(config.levels) if mode in ("rzero", "aero") else None
    for start in tqdm(range(0, n, 64), desc=f"{mode} demonstrations", disable=not progress):
        size = min(64, n - start)
        if size not in venvs:
            extra = {"task": task} if task is not None else {}
            venvs[size] = SelfPlayVectorEnv.make(mode, size, **size_options, **options, **extra)
        episodes += venvs[size].rollout(recorders, seed=config.seed + start).episodes
    return episodes


def warm_start_examples(
    num_episodes: int, seed: int, levels: Sequence[int] = (1,)
) -> list[Example]:
    """(chat prompt, target text) pairs for the supervised warm start, made by the env."""
    config = TinyModelConfig(seed=seed, levels=tuple(levels), num_episodes=num_episodes)
    return [(messages, text) for _, messages, text in role_demonstrations(config)]


def solver_prompts(questions: Iterable[str]) -> list[Messages]:
    """What an R-Zero solver is shown for each question, read from the env itself."""
    env, prompts = SelfPlayReasoningEnv("rzero", num_solvers=1), []
    for question in questions:
        env.reset(seed=0)
        env.step(QUESTION_TEMPLATE.format(question=question, answer=solve(question) or "0"))
        prompts.append(env.observe(env.agent_selection)["messages"])
    return prompts


"""Play R-Zero episodes with scripted agents and print the episode log and rewards.

No model is needed: a dataset questioner asks arithmetic questions (and now and then writes
junk, to show the format penalty), noisy solvers answer them with a known accuracy, and a
majority judge names the pseudo-label. Run: ``python examples/scripted_rzero.py``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from selfplay_gym import Request, SelfPlayVectorEnv
from selfplay_gym.agents.scripted import (
    DatasetQuestioner,
    MajorityJudge,
    NoisySolver,
    RandomTextAgent,
)
from selfplay_gym.envs.episode_log import format_episode
from selfplay_gym.envs.tasks import ArithmeticTask, solve
from selfplay_gym.types import json_line


class SometimesJunk:
    """A questioner that writes random text for every ``every``-th request."""

    def __init__(self, questioner, junk, every: int = 4):
        self.questioner, self.junk, self.every, self.count = questioner, junk, every, 0

    def generate(self, requests: list[Request]):
        out = []
        for request in requests:
            self.count += 1
            agent = self.junk if self.count % self.every == 0 else self.questioner
            out.extend(agent.generate([request]))
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--solvers", type=int, default=6)
    parser.add_argument("--accuracy", type=float, default=0.6, help="the noisy solvers' accuracy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write episodes as JSONL here")
    args = parser.parse_args()

    task = ArithmeticTask(levels=(1, 2, 3))
    policies = {
        "questioner": SometimesJunk(
            DatasetQuestioner(task.problems(64, seed=args.seed), seed=args.seed),
            RandomTextAgent(seed=args.seed, boxed_prob=0.0),
        ),
        "solver": NoisySolver(solve, accuracy=args.accuracy, seed=args.seed),
        "judge": MajorityJudge(),
    }
    venv = SelfPlayVectorEnv.make("rzero", num_envs=args.episodes, num_solvers=args.solvers, task=task)
    rollout = venv.rollout(policies, seed=args.seed)

    for episode in rollout.episodes:
        print(format_episode(episode))
        print()
    questioner = [e.rewards["questioner_0"] for e in rollout.episodes]
    solver = [r for e in rollout.episodes for a, r in e.rewards.items() if a.startswith("solver")]
    kept = sum(venv.mode.keep_for_training("solver_0", e) for e in rollout.episodes)
    print(f"{len(rollout.episodes)} episodes, {rollout.policy_calls} batched policy calls")
    print(f"questioner reward mean {sum(questioner) / len(questioner):+.3f}")
    print(f"solver reward mean {sum(solver) / max(1, len(solver)):+.3f}")
    print(f"questions inside R-Zero's consistency band: {kept}/{len(rollout.episodes)}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with args.out.open("w") as f:
            for episode in rollout.episodes:
                f.write(json_line(episode.to_dict()))  # lone surrogates too
        print(f"episodes written to {args.out}")


if __name__ == "__main__":
    main()

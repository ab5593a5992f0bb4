"""Write a new self-play method in one file, register it, and train it: Self-Questioning LMs.

SQLM (Chen et al., arXiv 2508.03682; lili-chen/self-questioning-lm) has one model play a
proposer, which sees only a topic, and n solvers. With no verifier at all:
- a solver earns 1 iff its answer equals the group's majority answer;
- the proposer earns 1 iff the majority count k satisfies 1 < k < n (neither unanimous nor
  all different), else 0.

Only the public API is used: subclass ``Mode``, ``register_mode``, then the same vector env,
LLM policy and trainer every built-in mode uses. The prompts and parsers are borrowed from
the R-Zero mode, so the embedded tiny model (warm-started on R-Zero's formats) can play it.
Run: ``python examples/custom_mode.py --iterations 2``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from selfplay_gym import Mode, Parsed, SelfPlayVectorEnv, register_mode
from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.tiny import tiny_model_dir
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.schedules import Joint
from selfplay_gym.algorithms.trainer import SelfPlayTrainer, TrainConfig
from selfplay_gym.envs.modes.rzero import (
    QUESTIONER_SYSTEM,
    SOLVER_SYSTEM,
    parse_answer,
    parse_question,
)
from selfplay_gym.envs.verify import majority_vote


@dataclass
class SQLMConfig:
    num_solvers: int = 8
    topic: str = "integer arithmetic: one expression using + - * and parentheses"


def proposer_reward(majority_count: int, num_solvers: int) -> float:
    """SQLM: 1 iff 1 < k < n for the majority count k (arXiv 2508.03682, majority.py)."""
    return float(1 < majority_count < num_solvers)


class SQLMMode(Mode):
    name = "sqlm"
    roles = ("proposer", "solver")
    Config = SQLMConfig
    single_policy = True

    def agents(self):
        return ("proposer_0", *(f"solver_{i}" for i in range(self.config.num_solvers)))

    def next_phase(self, episode):
        if "question" not in episode.fields:
            return ("proposer_0",)
        if episode.fields["question"] and "majority" not in episode.fields:
            return self.agents()[1:]
        return ()

    def observe(self, agent, episode):
        if agent == "proposer_0":
            system = QUESTIONER_SYSTEM.format(domain=self.config.topic)
            return ({"role": "system", "content": system},
                    {"role": "user", "content": "Generate one new challenging question now."})
        question = episode.fields.get("question")
        return ({"role": "system", "content": SOLVER_SYSTEM}, {"role": "user", "content": question}) if question else ()

    def parse(self, role, text) -> Parsed:
        return parse_question(text) if role == "proposer" else parse_answer(text)

    def record(self, turn, episode):
        if turn.role == "proposer":
            episode.fields["question"] = turn.parsed.get("question") if turn.valid else None
        else:
            episode.fields.setdefault("answers", []).append(turn.parsed.get("answer"))

    def end_phase(self, agents, episode):
        if agents and agents[0].startswith("solver"):
            vote = majority_vote(episode.fields["answers"])
            episode.fields["majority"], episode.fields["majority_count"] = vote.answer, vote.count

    def reward_functions(self):
        n = self.config.num_solvers

        def proposer(episode, agent):
            return proposer_reward(episode.fields.get("majority_count", 0), n)

        def solver(episode, agent):
            answers, majority = episode.fields.get("answers", []), episode.fields.get("majority")
            index = int(agent.split("_")[1])
            return float(majority is not None and index < len(answers) and answers[index] == majority)

        return {"proposer": proposer, "solver": solver}

    def group_id(self, agent, episode, messages):
        return f"solver:{episode.episode_id}" if agent.startswith("solver") else "proposer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--output-dir", default="runs/sqlm")
    args = parser.parse_args()

    register_mode("sqlm", SQLMMode, overwrite=True)
    backend = HFBackend(tiny_model_dir(), adapters=["policy"])
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=24)
    llm = LLMPolicy(backend, {"proposer": RoleConfig("policy", sampling), "solver": RoleConfig("policy", sampling)})
    venv = SelfPlayVectorEnv.make("sqlm", num_envs=args.episodes)
    trainer = SelfPlayTrainer(venv, llm.roles_map(), backend, PRESETS["grpo"], Joint(("proposer", "solver")),
                              TrainConfig(iterations=args.iterations, output_dir=args.output_dir, progress=False))
    for row in trainer.train():
        print(f"iteration {row['iteration']}: proposer reward {row['reward/proposer/mean']:.2f}, "
              f"solver reward {row['reward/solver/mean']:.2f}, "
              f"policy updates {row.get('update/policy/optimizer_steps', 0)}")


if __name__ == "__main__":
    main()

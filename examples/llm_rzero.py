"""R-Zero with LLM agents: the embedded tiny model asks and answers, through the vector env.

The questioner and the solver are two LoRA adapters on one base model; each phase of every
episode is one batched, mixed-adapter ``generate`` call. The judge is R-Zero's majority vote.
Run: ``python examples/llm_rzero.py`` (builds and caches the tiny model on first use).
"""

from __future__ import annotations

import argparse
import time

from selfplay_gym import SelfPlayVectorEnv
from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.agents.scripted import MajorityJudge
from selfplay_gym.agents.tiny import tiny_model_dir
from selfplay_gym.envs.episode_log import format_episode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="hub id or local directory (default: tiny)")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--solvers", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=3, help="episodes to print")
    args = parser.parse_args()

    backend = HFBackend(args.model or tiny_model_dir(), adapters=["questioner", "solver"])
    sampling = SamplingConfig(temperature=1.0, max_new_tokens=args.max_new_tokens)
    llm = LLMPolicy(backend, {"questioner": RoleConfig("questioner", sampling),
                              "solver": RoleConfig("solver", sampling)})
    policies = llm.roles_map() | {"judge": MajorityJudge()}
    venv = SelfPlayVectorEnv.make("rzero", num_envs=args.episodes, num_solvers=args.solvers)

    start = time.perf_counter()
    rollout = venv.rollout(policies, seed=args.seed)
    seconds = time.perf_counter() - start
    for episode in rollout.episodes[: args.show]:
        print(format_episode(episode), end="\n\n")
    tokens = sum(len(c.completion_ids) for per_agent in rollout.completions for c in per_agent.values())
    valid = sum(e.fields.get("question") is not None for e in rollout.episodes)
    print(f"{len(rollout.episodes)} episodes in {seconds:.1f}s, {rollout.policy_calls} policy calls, "
          f"{tokens} generated tokens ({tokens / seconds:.0f} tok/s)")
    print(f"valid questions: {valid}/{len(rollout.episodes)}")
    for role in ("questioner", "solver"):
        values = [r for e in rollout.episodes for a, r in e.rewards.items() if a.startswith(role)]
        print(f"{role} reward mean {sum(values) / len(values):+.3f}")


if __name__ == "__main__":
    main()

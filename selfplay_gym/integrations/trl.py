"""Train one role of any selfplay-gym env with TRL's GRPOTrainer.

TRL's ``rollout_func(prompts, trainer)`` hands over the per-process prompts, each already
repeated ``num_generations`` times in a row, and wants exactly one rollout per entry, as flat
lists of ``prompt_ids``, ``completion_ids`` and ``logprobs`` (checked against TRL 1.16's
trainer: its docstring says otherwise, its batch shapes say this). Here each run of
``num_generations`` entries becomes one env episode: the trained role is played by TRL's own
model (its LoRA adapter, through our HF backend) and every other role by our policies, and
the role's group of samples in that episode fills those entries: TRL's group is ours. The env's rewards travel to TRL as an extra field that ``env_reward`` returns.

>>> rollout = make_rollout_func("rzero", role="solver", policies={"questioner": q, "judge": j})
>>> GRPOTrainer(model, reward_funcs=env_reward, args=config, train_dataset=dummy_prompts,
...             rollout_func=rollout, peft_config=LoraConfig(...))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.envs.vector import SelfPlayVectorEnv
from selfplay_gym.types import Policy


def _trl_policy(trainer: Any, role: str, max_new_tokens: int) -> LLMPolicy:
    """Our HF backend over TRL's model, sampling with TRL's temperature, as adapter "default"."""
    backend = HFBackend(trainer.model, trainer.processing_class)
    adapter = "default" if backend.store.has_adapters else None
    sampling = SamplingConfig(temperature=trainer.temperature, max_new_tokens=max_new_tokens)
    return LLMPolicy(backend, {role: RoleConfig(adapter, sampling)})


def make_rollout_func(
    mode: str,
    role: str,
    policies: Mapping[str, Policy],
    max_new_tokens: int | None = None,
    **env_kwargs: Any,
):
    """A TRL ``rollout_func`` that plays one episode of ``mode`` per ``num_generations`` prompts.

    The mode must give ``role`` one group per episode whose size TRL's ``num_generations``
    sets (``num_solvers`` for solvers).
    """

    def rollout_func(prompts: list, trainer: Any) -> dict[str, list]:
        n = trainer.num_generations
        if len(prompts) % n:
            raise ValueError(f"{len(prompts)} prompts is not a multiple of num_generations={n}")
        tokens = max_new_tokens or trainer.max_completion_length
        venv = SelfPlayVectorEnv.make(mode, num_envs=len(prompts) // n, num_solvers=n, **env_kwargs)
        played = {role: _trl_policy(trainer, role, tokens), **policies}
        rollout = venv.rollout(played)
        out: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "logprobs": [], "env_reward": []}
        for episode, completions in zip(rollout.episodes, rollout.completions, strict=True):
            agents = [a for a in venv.envs[0].possible_agents if a.rsplit("_", 1)[0] == role]
            if len(agents) != n:
                raise ValueError(f"mode {mode!r} has {len(agents)} {role} agents per episode; "
                                 f"TRL's num_generations is {n}: make them equal")
            for agent in agents:
                completion = completions.get(agent)
                if completion is None:  # the role never acted (e.g. an invalid question)
                    completion = _empty_completion(completions, trainer)
                out["prompt_ids"].append(completion.prompt_ids)
                out["completion_ids"].append(completion.completion_ids)
                out["logprobs"].append(completion.logprobs)
                out["env_reward"].append(episode.rewards[agent])
        return out

    return rollout_func


def _empty_completion(completions, trainer):
    """A one-token end-of-turn completion for a role that never got to act (reward 0 anyway)."""
    from selfplay_gym.types import Completion

    tokenizer = trainer.processing_class
    any_prompt = next((c.prompt_ids for c in completions.values() if c.prompt_ids), [tokenizer.eos_token_id])
    return Completion(text="", prompt_ids=any_prompt, completion_ids=[tokenizer.eos_token_id], logprobs=[0.0])


def env_reward(prompts: list, completions: list, env_reward: list[float], **kwargs: Any) -> list[float]:
    """TRL reward function: the env's reward for each rollout, passed through unchanged."""
    return list(env_reward)

"""SelfPlayTrainer: collect -> filter -> advantages -> update each trained adapter -> log -> checkpoint.

Reads top to bottom like CleanRL's ppo.py: ``train()`` is the loop, and each step of its body
is a short function below it. The trainer knows no mode (it calls the generic Mode API of the
vector env) and no backend (it calls the ``Learner`` protocol).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from selfplay_gym.agents.policy import LLMPolicy
from selfplay_gym.algorithms import distributed
from selfplay_gym.algorithms.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from selfplay_gym.algorithms.losses import AlgorithmConfig
from selfplay_gym.algorithms.off_policy import agreement_stats, truncated_importance_weights
from selfplay_gym.algorithms.replay import SampleSelector
from selfplay_gym.algorithms.run_log import RunLog
from selfplay_gym.algorithms.samples import (
    collect_cross_role_samples,
    collect_samples,
    compute_advantages,
    drop_zero_variance,
    pad_right,
)
from selfplay_gym.algorithms.schedules import Schedule
from selfplay_gym.algorithms.trackers import open_trackers
from selfplay_gym.algorithms.update import Learner, NonFiniteGuard, UpdateConfig, update_adapter
from selfplay_gym.envs.mode import role_of
from selfplay_gym.envs.vector import Rollout, SelfPlayVectorEnv
from selfplay_gym.types import Policy, Sample


@dataclass
class TrainConfig:
    iterations: int = 20
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    update: UpdateConfig = field(default_factory=UpdateConfig)
    seed: int = 0
    output_dir: str = "runs/selfplay"
    save_every: int = 1
    """Checkpoint every k iterations (and after the last); 0 turns checkpoints off."""
    keep_checkpoints: int = 2
    log_episodes: int = 4
    """Episodes per iteration written to the readable episodes.log."""
    eval_every: int = 0
    """Call the evaluate hook every k iterations (and before the first); 0 = never. From the
    CLI: the solver's greedy and sampled accuracy on the task's held-out questions (eval/*)."""
    report_to: tuple[str, ...] = ()
    """Experiment trackers that mirror metrics.jsonl: tensorboard, wandb, trackio, all or none
    (TRL's report_to). Empty: TensorBoard where it is installed (the [tensorboard] extra)."""
    progress: bool = True
    max_nonfinite_steps: int = 3
    """Optimizer steps of one adapter in a row with a NaN or infinite loss or gradient (each
    skipped and counted as update/<adapter>/skipped_nonfinite) after which the run stops."""


class SelfPlayTrainer:
    """Trains the adapters of the roles a schedule names, against a vector env of any mode."""

    def __init__(
        self,
        venv: SelfPlayVectorEnv,
        policies: Mapping[str, Policy],
        learner: Learner,
        algorithm: AlgorithmConfig,
        schedule: Schedule,
        config: TrainConfig | None = None,
        evaluate: Callable[[], dict[str, float]] | None = None,
        selector: SampleSelector | None = None,
        run_config: Mapping | None = None,
    ):
        self.venv, self.policies, self.learner = venv, dict(policies), learner
        self.algorithm, self.schedule = algorithm, schedule
        self.config = config or TrainConfig()
        self.evaluate = evaluate
        self.run_config = run_config  # the whole run's settings, for the trackers
        self.selector = selector
        """Chooses what each iteration trains on (AERO's staggered replay); None: the fresh samples."""
        self.output_dir = Path(self.config.output_dir)
        self.trainable = _trainable_roles(self.policies)  # role -> (adapter, temperature)
        self.optimizers = {
            adapter: torch.optim.AdamW(
                list(learner.adapter_parameters(adapter).values()),
                lr=self.config.learning_rate, weight_decay=self.config.weight_decay,
            )
            for adapter in sorted({adapter for adapter, _ in self.trainable.values()})
        }
        for adapter in self.optimizers:  # data parallel: every rank starts from rank 0's adapters
            distributed.broadcast_parameters(learner.adapter_parameters(adapter).values())
        self.guards = {a: NonFiniteGuard(a, self.config.max_nonfinite_steps) for a in self.optimizers}
        self.start_iteration = 0
        self.resumed = False
        """True once ``resume`` ran: the run's logs are cut back to the checkpoint, even to
        nothing when a run was killed before its first checkpoint."""
        self.history: list[dict] = []

    @property
    def generator(self):
        """The rollout engine: the learner itself, vLLM or a server."""
        llm = [p for p in self.policies.values() if isinstance(p, LLMPolicy)]
        return llm[0].backend if llm else self.learner

    @property
    def engines(self) -> list:
        """Engines other than the learner: they get every adapter after each update, and the
        update measures how their sampling log-probs agree with the learner's."""
        llm = {id(p.backend): p.backend for p in self.policies.values() if isinstance(p, LLMPolicy)}
        return [engine for engine in llm.values() if engine is not self.learner]

    def served_adapters(self) -> list[str]:
        """Every adapter an LLM role plays with, trained or frozen."""
        specs = [s for p in self.policies.values() if isinstance(p, LLMPolicy) for s in p.roles.values()]
        return sorted({s.adapter for s in specs} - {None})

    def resume(self, path: str | Path | None = None, missing_ok: bool = False) -> int:
        """Continue from ``path`` or the latest checkpoint in output_dir; returns the next iteration.

        ``missing_ok``: with no checkpoint (a run killed during its first iteration), start at
        iteration 0 and drop what that run logged, instead of raising.
        """
        checkpoint = Path(path) if path else latest_checkpoint(self.output_dir)
        if checkpoint is None and missing_ok:
            self.resumed, self.start_iteration = True, 0
            return 0
        if checkpoint is None:
            raise FileNotFoundError(f"no checkpoint under {self.output_dir / 'checkpoints'} to resume from")
        state = load_checkpoint(checkpoint, self.learner, self.optimizers)
        if state["iteration"] + 1 > self.config.iterations:
            raise ValueError(
                f"{checkpoint} finished iteration {state['iteration']}, past --train.iterations "
                f"{self.config.iterations}: raise --train.iterations to continue this run")
        self._apply_changed_settings(state.get("config", {}), state["iteration"] + 1)
        self.start_iteration, self.resumed = state["iteration"] + 1, True
        if self.selector is not None:
            self.selector.load_state_dict(state.get("selector", {}))
        self.venv.load_state_dict(state.get("venv", {}))
        return self.start_iteration

    def _apply_changed_settings(self, saved: dict, iteration: int) -> None:
        """Say which TrainConfig values differ from the checkpoint's; all apply from
        ``iteration`` on. The optimizer's saved learning rate and weight decay are replaced by
        the new ones (``load_state_dict`` would silently keep the old)."""
        now = _jsonable(asdict(self.config))
        changed = {k: (saved[k], v) for k, v in now.items() if k in saved and saved[k] != v}
        for optimizer in self.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"], group["weight_decay"] = self.config.learning_rate, self.config.weight_decay
        if changed and distributed.world().is_main:
            listed = ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in sorted(changed.items()))
            print(f"resume: settings changed since the checkpoint, applied from iteration "
                  f"{iteration}: {listed}")

    # --- the loop ------------------------------------------------------------------------------
    def train(self) -> list[dict]:
        cfg = self.config
        resume_after = self.start_iteration - 1 if self.resumed else None
        log = distributed.on_main(lambda: RunLog(self.output_dir, resume_after, trackers=open_trackers(
            cfg.report_to, self.output_dir, self.run_config or _jsonable(asdict(cfg)), resume_after)))
        bar = tqdm(range(self.start_iteration, cfg.iterations),
                   disable=not cfg.progress or not distributed.world().is_main,
                   desc="self-play", initial=self.start_iteration, total=cfg.iterations)
        if self.evaluate and cfg.eval_every and self.start_iteration == 0:
            log.metrics({"iteration": -1, **self.evaluate()})
        self._sync_generators(self.served_adapters())  # fresh or resumed weights, before rollout 1
        for iteration in bar:
            roles = self._check_roles(self.schedule.roles(iteration))
            seed = self._reseed(iteration)
            timer = _Timer()

            with timer("rollout"):
                rollout = self.venv.rollout(self.policies, seed=seed)
            # a selector sees every trainable role's samples, so it can hold some for later
            collected = roles if self.selector is None else set(self.trainable)
            samples = collect_samples(rollout, collected, self.venv.mode.keep_for_training)
            if self.algorithm.ratio_free:  # off-policy examples need no ratio
                samples += collect_cross_role_samples(rollout, collected, self.venv.mode.cross_role_examples)
            if self.selector is not None:
                samples = [s for s in self.selector.select(iteration, samples) if s.role in roles]
            samples = [s for s in samples if self.algorithm.keeps(s.reward)]  # the loss's own filter
            kept = drop_zero_variance(samples) if self.algorithm.dynamic_sampling else samples
            with self._engines_asleep(timer):  # a colocated vLLM hands its memory to the update
                update_stats = self._update(kept, iteration, timer)
            with timer("sync"):
                self._sync_generators(sorted({self.trainable[s.role][0] for s in kept}))

            row = {"iteration": iteration, "train_roles": sorted(roles), **timer.seconds()}
            everyone = distributed.gather_rollout(rollout)  # all ranks' episodes, on rank 0
            counts = distributed.sum_over_ranks(sample_metrics(samples, kept, roles))
            row |= rollout_metrics(everyone) | counts | update_stats
            row["tokens/per_s"] = row["tokens/generated"] / max(row["time/rollout_s"], 1e-9)
            if self.evaluate and cfg.eval_every and (iteration + 1) % cfg.eval_every == 0:
                row |= self.evaluate()
            log.metrics(row)
            log.episodes(iteration, everyone.episodes, cfg.log_episodes)
            self.history.append(row)
            bar.set_postfix({k.split("/")[1]: f"{v:+.2f}" for k, v in row.items() if k.endswith("/mean")})
            last = iteration == cfg.iterations - 1
            due = cfg.save_every and ((iteration + 1) % cfg.save_every == 0 or last)
            if due and distributed.world().is_main:  # rank 0 writes; the adapters are equal
                save_checkpoint(self.output_dir, iteration, self.learner, self.optimizers,
                                self._state(), cfg.keep_checkpoints)
        log.close()
        return self.history

    # --- the steps -----------------------------------------------------------------------------
    def _state(self) -> dict:
        state = {"config": _jsonable(asdict(self.config))}
        if self.selector is not None:
            state["selector"] = self.selector.state_dict()
        state["venv"] = self.venv.state_dict()  # episode ids, task cursors
        return state

    def _check_roles(self, roles: frozenset[str]) -> frozenset[str]:
        untrainable = sorted(roles - set(self.trainable))
        if untrainable:
            raise ValueError(
                f"the schedule trains {untrainable}, but only LLM roles with a LoRA adapter and "
                f"temperature > 0 can train; trainable here: {sorted(self.trainable)}"
            )
        return roles

    def _reseed(self, iteration: int) -> int:
        """Seed everything from (seed, iteration) so a resumed run repeats the uninterrupted one."""
        seed = distributed.rank_seed(self.config.seed * 1_000_003 + iteration * 10_007)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        for policy in self.policies.values():
            if hasattr(policy, "reseed"):
                policy.reseed(seed)
        return seed

    def _update(self, samples: list[Sample], iteration: int, timer: _Timer) -> dict[str, float]:
        stats: dict[str, float] = {}
        by_adapter: dict[str, list[Sample]] = {}
        for sample in samples:
            by_adapter.setdefault(self.trainable[sample.role][0], []).append(sample)
        for adapter in distributed.union(by_adapter):  # ranks without samples join the all-reduce
            by_adapter.setdefault(adapter, [])
        generator = torch.Generator().manual_seed(self.config.seed * 7919 + iteration)
        for adapter, chosen in sorted(by_adapter.items()):
            if not chosen:
                update_adapter(self.learner, adapter, [], torch.zeros(0), None, self.optimizers[adapter],
                               self.algorithm, self.config.update, 1.0, generator,
                               guard=self.guards[adapter])
                continue
            temperature = self.trainable[chosen[0].role][1]
            ref = None
            with timer("reference"):
                if self.algorithm.needs_reference:
                    ref = self.learner.reference_logprobs(
                        [s.prompt_ids for s in chosen], [s.completion_ids for s in chosen],
                        temperature=temperature,
                    )
            chosen, weights, agreement = self._off_policy(adapter, chosen, temperature, timer)
            stats |= {f"agreement/{adapter}/{k}": v for k, v in agreement.items()}
            if self.algorithm.ratio_free:  # KTO's labels, NLL's weights
                advantages = torch.tensor([s.reward for s in chosen])
            else:
                advantages = compute_advantages(chosen, self.algorithm, ref)
            with timer("update"):
                result = update_adapter(self.learner, adapter, chosen, advantages, ref,
                                        self.optimizers[adapter], self.algorithm, self.config.update,
                                        temperature, generator, weights, guard=self.guards[adapter])
            stats |= {f"update/{adapter}/{k}": v for k, v in result.items()}
        return stats

    def _off_policy(self, adapter: str, chosen: list[Sample], temperature: float, timer: _Timer):
        """Where another engine sampled: the learner's log-probs of the same tokens before the
        update, their agreement with the engine's, and with ``tis_cap`` the truncated importance
        weights (the surrogate's old policy becomes the learner's). Else nothing changes."""
        cap = self.algorithm.tis_cap
        if not self.engines and cap is None:
            return chosen, None, {}
        with timer("agreement"):
            learner = self.learner.logprobs(
                adapter, [s.prompt_ids for s in chosen], [s.completion_ids for s in chosen],
                temperature=temperature,
            )
        engine = pad_right([s.old_logprobs for s in chosen])  # [B, T]
        mine = pad_right([lp.tolist() for lp in learner], engine.shape[1])  # [B, T]
        mask = pad_right([[1.0] * len(s.completion_ids) for s in chosen], engine.shape[1])  # [B, T]
        stats = agreement_stats(mine, engine, mask, cap)
        if cap is None or self.algorithm.ratio_free:
            return chosen, None, stats
        weights = [truncated_importance_weights(lp, torch.tensor(s.old_logprobs), cap)
                   for lp, s in zip(learner, chosen, strict=True)]
        chosen = [dataclasses.replace(s, old_logprobs=lp.tolist())
                  for lp, s in zip(learner, chosen, strict=True)]
        return chosen, weights, stats


    @contextlib.contextmanager
    def _engines_asleep(self, timer: _Timer):
        """``sleep()`` the engines launched to sleep during the update (vLLM's sleep mode: its
        weights to CPU memory, its KV cache dropped) and ``wake_up()`` them afterwards."""
        sleepers = [e for e in self.engines if getattr(e, "sleeps_during_update", False)]
        if not sleepers:
            yield
            return
        with timer("sleep"):
            for engine in sleepers:
                engine.sleep()
        try:
            yield
        finally:
            with timer("wake_up"):
                for engine in sleepers:
                    engine.wake_up()

    def _sync_generators(self, adapters: list[str]) -> None:
        """Serve these adapters' current weights on the engines other than the learner (vLLM, a
        server), each as a new version: a new name and id, so no engine serves a cached one."""
        for engine in self.engines:
            if adapters and hasattr(engine, "sync_from"):
                root = self.output_dir / "live-adapters" / distributed.rank_dir()
                engine.sync_from(self.learner, adapters, root)


def _trainable_roles(policies: Mapping[str, Policy]) -> dict[str, tuple[str, float]]:
    """role -> (adapter, sampling temperature) for LLM roles that can learn."""
    out = {}
    for role, policy in policies.items():
        if isinstance(policy, LLMPolicy) and role in policy.roles:
            spec = policy.roles[role]
            if spec.adapter is not None and spec.sampling.temperature > 0:
                out[role] = (spec.adapter, spec.sampling.temperature)
    return out


def rollout_metrics(rollout: Rollout) -> dict[str, float]:
    """Reward mean/std per role, means of numeric episode fields, generation volume."""
    rewards: dict[str, list[float]] = {}
    for episode in rollout.episodes:
        for agent, value in episode.rewards.items():
            rewards.setdefault(agent.rsplit("_", 1)[0], []).append(value)
    row = {}
    for role, values in sorted(rewards.items()):
        row[f"reward/{role}/mean"] = float(np.mean(values))
        row[f"reward/{role}/std"] = float(np.std(values))
    fields: dict[str, list[float]] = {}
    for episode in rollout.episodes:
        for key, value in episode.fields.items():
            if isinstance(value, (int, float)):  # bools too: their mean is a rate
                fields.setdefault(key, []).append(float(value))
    row |= {f"fields/{k}": float(np.mean(v)) for k, v in sorted(fields.items())}
    completions = [c for per_episode in rollout.completions for c in per_episode.values()]
    row["tokens/generated"] = sum(len(c.completion_ids) for c in completions)
    row["tokens/cut_at_length"] = sum(c.finish_reason == "length" for c in completions)
    return row


def sample_metrics(samples: list[Sample], kept: list[Sample], roles: frozenset[str]) -> dict[str, float]:
    row = {}
    for role in sorted(roles):
        row[f"samples/{role}"] = sum(s.role == role for s in samples)
        row[f"samples/{role}/trained"] = sum(s.role == role for s in kept)
    row["samples/cross_role"] = sum(role_of(s.agent) != s.role for s in kept)
    return row


class _Timer:
    """Accumulates wall seconds per named phase: ``with timer("rollout"): ...``."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.totals[name] = self.totals.get(name, 0.0) + time.perf_counter() - t0

    def seconds(self) -> dict[str, float]:
        total = time.perf_counter() - self.start
        phases = {f"time/{k}_s": round(v, 4) for k, v in self.totals.items()}
        return phases | {"time/iteration_s": round(total, 4)}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)

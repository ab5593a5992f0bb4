"""The ratio-free updates (KTO on reward-sign labels, reward-weighted NLL) and AERO's staggered replay."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.algorithms.losses import PRESETS, AlgorithmConfig
from selfplay_gym.algorithms.replay import StaggeredReplay
from selfplay_gym.algorithms.samples import collect_cross_role_samples
from selfplay_gym.algorithms.update import UpdateConfig, update_adapter
from selfplay_gym.envs.vector import Rollout
from selfplay_gym.types import Completion, Episode, Sample


def sample(role: str, group: str, reward: float = 1.0, completion=(5, 6), episode: str = "e") -> Sample:
    return Sample(role=role, agent=f"{role}_0", episode_id=episode, group_id=group,
                  prompt_ids=[1, 2, 3], completion_ids=list(completion),
                  old_logprobs=[0.0] * len(completion), reward=reward)


def sequence_logp(backend: HFBackend, adapter: str, s: Sample) -> float:
    logp, mask, _ = backend.train_logprobs(adapter, [s.prompt_ids], [s.completion_ids],
                                           temperature=1.0, with_entropy=False)
    return float((logp * mask).sum().detach())


def test_kto_raises_desirable_and_lowers_undesirable_completions(random_model_dir):
    backend = HFBackend(random_model_dir, adapters=["policy"], seed=0)
    good, bad = sample("solver", "g", 1.0, (5, 6)), sample("solver", "g", -1.0, (7, 8))
    before = {id(s): sequence_logp(backend, "policy", s) for s in (good, bad)}
    params = list(backend.adapter_parameters("policy").values())
    optimizer = torch.optim.AdamW(params, lr=1e-2)
    for _ in range(5):
        ref = backend.reference_logprobs([s.prompt_ids for s in (good, bad)],
                                         [s.completion_ids for s in (good, bad)], temperature=1.0)
        stats = update_adapter(backend, "policy", [good, bad], torch.tensor([1.0, -1.0]), ref,
                               optimizer, PRESETS["kto"], UpdateConfig(log_entropy=False), 1.0,
                               torch.Generator().manual_seed(0))
    assert sequence_logp(backend, "policy", good) > before[id(good)]
    assert sequence_logp(backend, "policy", bad) < before[id(bad)]
    assert stats["optimizer_steps"] == 1 and "kto_logratio" in stats


def test_kto_without_reference_log_probs_says_what_is_missing(random_model_dir):
    backend = HFBackend(random_model_dir, adapters=["policy"], seed=0)
    optimizer = torch.optim.AdamW(list(backend.adapter_parameters("policy").values()))
    with pytest.raises(ValueError, match="needs reference log-probs"):
        update_adapter(backend, "policy", [sample("solver", "g")], torch.tensor([1.0]), None,
                       optimizer, PRESETS["kto"], UpdateConfig(), 1.0, torch.Generator())


def test_nll_update_reports_the_weighted_token_mean_and_raises_rewarded_completions(random_model_dir):
    # rewards 2 and -1 -> weights 2 and 0: loss = (2 * (-logp_5 - logp_6) + 0) / 4 tokens
    backend = HFBackend(random_model_dir, adapters=["policy"], seed=0)
    good, bad = sample("solver", "g", 2.0, (5, 6)), sample("solver", "g", -1.0, (7, 8))
    before = {id(s): sequence_logp(backend, "policy", s) for s in (good, bad)}
    optimizer = torch.optim.AdamW(list(backend.adapter_parameters("policy").values()), lr=1e-2)
    stats = update_adapter(backend, "policy", [good, bad], torch.tensor([2.0, -1.0]), None, optimizer,
                           PRESETS["rft"], UpdateConfig(log_entropy=False), 1.0, torch.Generator().manual_seed(0))
    assert stats["nll"] == pytest.approx(2 * -before[id(good)] / 4, rel=1e-4)
    assert sequence_logp(backend, "policy", good) > before[id(good)]


def test_rft_kl_anchor_needs_reference_log_probs(random_model_dir):
    backend = HFBackend(random_model_dir, adapters=["policy"], seed=0)
    optimizer = torch.optim.AdamW(list(backend.adapter_parameters("policy").values()))
    anchored = dataclasses.replace(PRESETS["rft"], kl_coef=0.1)
    with pytest.raises(ValueError, match="needs reference log-probs"):
        update_adapter(backend, "policy", [sample("solver", "g")], torch.tensor([1.0]), None,
                       optimizer, anchored, UpdateConfig(), 1.0, torch.Generator())


def test_kto_preset_and_an_unknown_loss_name():
    assert PRESETS["kto"].loss == "kto" and PRESETS["kto"].kto_beta == 0.1
    with pytest.raises(ValueError, match="unknown loss"):
        AlgorithmConfig(loss="dpo")


def test_staggered_replay_trains_lagging_roles_one_round_late_then_replays():
    replay = StaggeredReplay(replay_size=2, replay_shares={"solver": 1.0})
    round0 = [sample("generator", "g0"), sample("solver", "s0"), sample("solver", "s0")]
    round1 = [sample("generator", "g1"), sample("solver", "s1")]
    round2 = [sample("generator", "g2")]
    assert [s.group_id for s in replay.select(0, round0)] == ["g0"]  # solver data waits
    assert [s.group_id for s in replay.select(1, round1)] == ["g1", "s0", "s0"]  # round 0's
    # round 2: round 1's solver data, plus a replay of the pool (rounds <= 0): group s0, whole
    assert [s.group_id for s in replay.select(2, round2)] == ["g2", "s1", "s0", "s0"]


def test_staggered_replay_state_round_trips_through_a_checkpoint():
    replay = StaggeredReplay(replay_size=2, replay_shares={"solver": 1.0})
    replay.select(0, [sample("solver", "s0")])
    replay.select(1, [sample("solver", "s1")])
    copy = StaggeredReplay(replay_size=2, replay_shares={"solver": 1.0})
    copy.load_state_dict(replay.state_dict())
    assert copy.pending == replay.pending and copy.pool == replay.pool
    assert copy.select(2, []) == replay.select(2, [])


def test_without_lag_the_data_is_fresh_and_the_replay_is_one_round_old():
    replay = StaggeredReplay(replay_size=1, replay_shares={"solver": 1.0}, lag=0)
    assert [s.group_id for s in replay.select(0, [sample("solver", "s0")])] == ["s0"]
    assert [s.group_id for s in replay.select(1, [sample("solver", "s1")])] == ["s1", "s0"]


def test_bad_lag_is_refused():
    with pytest.raises(ValueError, match="lag 0 or 1"):
        dataclasses.replace(StaggeredReplay(), lag=2)


def test_kto_kl_anchor_adds_kl_coef_times_the_token_mean_k3():
    from selfplay_gym.algorithms.update import _kto

    logp = torch.tensor([[-1.0, -2.0]])
    ref = torch.tensor([[-1.5, -2.0]])
    mask, labels = torch.ones(1, 2), torch.tensor([1.0])
    # r = 0.5 = z, so KTO's desirable term is 1 - sigmoid(0) = 0.5; k3 per token:
    # e^-0.5 + 0.5 - 1 = 0.1065307 and 0, token mean 0.0532653
    plain = _kto(logp, ref, labels, mask, PRESETS["kto"])
    anchored = _kto(logp, ref, labels, mask, dataclasses.replace(PRESETS["kto"], kl_coef=0.1))
    assert float(plain["loss"]) == pytest.approx(0.5) and "kl" not in plain
    assert anchored["kl"] == pytest.approx(0.0532653, abs=1e-6)
    assert float(anchored["loss"]) == pytest.approx(0.5 + 0.1 * 0.0532653, abs=1e-6)


def test_a_cross_role_sample_takes_the_writers_tokens_under_the_other_prompt():
    episode = Episode("aero", "e1", group_ids={"solver_0": "solver:e1", "refiner_0": "refiner:e1"})
    completions = {
        "solver_0": Completion("s", prompt_ids=[1, 2], completion_ids=[3], logprobs=[-0.5]),
        "refiner_0": Completion("r", prompt_ids=[7, 8, 9], completion_ids=[4, 5], logprobs=[-1.0, -2.0]),
        "refiner_1": Completion("scripted", finish_reason="scripted"),  # no tokens: nothing to train
    }
    rollout = Rollout([episode], [completions])

    def examples(ep):
        return [("refiner_0", "solver_0", 1.0), ("refiner_1", "solver_0", 1.0)]

    [sample] = collect_cross_role_samples(rollout, {"solver"}, examples)
    assert (sample.role, sample.agent, sample.group_id) == ("solver", "refiner_0", "solver:e1")
    assert (sample.prompt_ids, sample.completion_ids, sample.old_logprobs) == ([1, 2], [4, 5], [])
    assert sample.reward == 1.0
    assert collect_cross_role_samples(rollout, {"refiner"}, examples) == []  # solver not trained

"""The trainer's mechanics on a real (random) tiny Qwen3 with real peft adapters."""

from __future__ import annotations

import json

import pytest
import torch

from selfplay_gym import Mode, Parsed, SelfPlayVectorEnv, register_mode
from selfplay_gym.agents.hf import HFBackend
from selfplay_gym.agents.policy import LLMPolicy, RoleConfig, SamplingConfig
from selfplay_gym.algorithms.checkpoint import latest_checkpoint
from selfplay_gym.algorithms.losses import PRESETS
from selfplay_gym.algorithms.schedules import Alternating, Joint
from selfplay_gym.algorithms.trainer import SelfPlayTrainer, TrainConfig
from selfplay_gym.algorithms.update import UpdateConfig
from selfplay_gym.envs import registry

SAMPLING = SamplingConfig(temperature=1.0, max_new_tokens=6)


class LettersMode(Mode):
    """A questioner speaks, four solvers reply; each earns 1 if its text has an "e".

    A simple verifiable reward with variance even for a random model, and no format to meet.
    """

    name = "letters"
    roles = ("questioner", "solver")
    Config = dict

    def agents(self):
        return ("questioner_0", "solver_0", "solver_1", "solver_2", "solver_3")

    def next_phase(self, episode):
        if not episode.turns:
            return ("questioner_0",)
        return self.agents()[1:] if len(episode.turns) == 1 else ()

    def observe(self, agent, episode):
        said = episode.turns[0].text if episode.turns and agent != "questioner_0" else "Say something."
        return ({"role": "user", "content": said or "(nothing)"},)

    def parse(self, role, text):
        return Parsed(True, {"text": text})

    def record(self, turn, episode):
        episode.fields.setdefault("has_e", []).append("e" in turn.text)

    def reward_functions(self):
        def letter_e(episode, agent):
            return float("e" in next(t.text for t in episode.turns if t.agent == agent))

        return {"questioner": letter_e, "solver": letter_e}


@pytest.fixture(autouse=True)
def letters_mode(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_mode("letters", LettersMode)


def make_trainer(model_dir, output_dir, schedule, iterations=3, algorithm="grpo", **config):
    backend = HFBackend(model_dir, adapters=["questioner", "solver"])
    llm = LLMPolicy(backend, {"questioner": RoleConfig("questioner", SAMPLING),
                              "solver": RoleConfig("solver", SAMPLING)})
    venv = SelfPlayVectorEnv([lambda: _env() for _ in range(2)])
    policies = llm.roles_map()
    train = TrainConfig(iterations=iterations, learning_rate=1e-2, output_dir=str(output_dir),
                        progress=False, update=UpdateConfig(minibatch_size=4, micro_batch_size=2),
                        **config)
    return SelfPlayTrainer(venv, policies, backend, PRESETS[algorithm], schedule, train), backend


def _env():
    from selfplay_gym import SelfPlayReasoningEnv

    return SelfPlayReasoningEnv(LettersMode({}))


def snapshot(backend, adapter=None):
    if adapter is None:
        return {n: p.detach().clone() for n, p in backend.model.named_parameters() if "lora_" not in n}
    return {n: p.detach().clone() for n, p in backend.store.parameters(adapter).items()}


def test_only_the_scheduled_adapter_changes(random_model_dir, tmp_path):
    trainer, backend = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=2)
    base, questioner, solver = snapshot(backend), snapshot(backend, "questioner"), snapshot(backend, "solver")
    history = trainer.train()
    assert all(torch.equal(p, snapshot(backend)[n]) for n, p in base.items())
    assert all(torch.equal(p, snapshot(backend, "questioner")[n]) for n, p in questioner.items())
    assert any(not torch.equal(p, snapshot(backend, "solver")[n]) for n, p in solver.items())
    assert history[-1]["update/solver/optimizer_steps"] >= 1
    assert "update/questioner/optimizer_steps" not in history[-1]


def test_alternating_schedule_trains_each_role_in_turn(random_model_dir, tmp_path):
    schedule = Alternating(((("questioner",), 1), (("solver",), 1)))
    trainer, _ = make_trainer(random_model_dir, tmp_path, schedule, iterations=2, algorithm="rzero")
    history = trainer.train()
    assert history[0]["train_roles"] == ["questioner"] and history[1]["train_roles"] == ["solver"]
    assert "update/questioner/kl" in history[0] and "update/solver/kl" in history[1]


def test_run_outputs_metrics_episode_log_and_checkpoints(random_model_dir, tmp_path):
    trainer, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver", "questioner")), iterations=2)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 1]
    for key in ("reward/solver/mean", "reward/questioner/std", "time/rollout_s", "time/update_s",
                "tokens/per_s", "update/solver/clip_fraction",
                "update/solver/entropy", "samples/solver"):
        assert key in rows[0], key
    assert "##### iteration 1" in (tmp_path / "episodes.log").read_text()
    assert len((tmp_path / "episodes.jsonl").read_text().splitlines()) == 4
    assert latest_checkpoint(tmp_path).name == "iter_000001"


def test_resume_gives_the_same_adapters_as_an_uninterrupted_run(random_model_dir, tmp_path):
    schedule = Joint(("solver", "questioner"))
    straight, straight_backend = make_trainer(random_model_dir, tmp_path / "a", schedule, iterations=4)
    straight.train()

    first, _ = make_trainer(random_model_dir, tmp_path / "b", schedule, iterations=2)
    first.train()
    second, resumed_backend = make_trainer(random_model_dir, tmp_path / "b", schedule, iterations=4)
    assert second.resume() == 2
    history = second.train()
    assert [h["iteration"] for h in history] == [2, 3]
    for adapter in ("solver", "questioner"):
        expected, got = snapshot(straight_backend, adapter), snapshot(resumed_backend, adapter)
        assert all(torch.equal(expected[n], got[n]) for n in expected), adapter
    rows = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["iteration"] for r in rows] == [0, 1, 2, 3]


def test_resume_without_a_checkpoint_says_so(random_model_dir, tmp_path):
    trainer, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)))
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        trainer.resume()


def test_resume_applies_changed_settings_and_says_which(random_model_dir, tmp_path, capsys):
    # load_state_dict would keep the checkpoint's learning rate; a new --train.learning-rate wins.
    first, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=1)
    first.train()
    second, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=2,
                             weight_decay=0.5)
    second.config.learning_rate = 3e-3
    assert second.resume() == 1
    assert {g["lr"] for o in second.optimizers.values() for g in o.param_groups} == {3e-3}
    assert {g["weight_decay"] for o in second.optimizers.values() for g in o.param_groups} == {0.5}
    said = capsys.readouterr().out
    assert "applied from iteration 1" in said
    assert "learning_rate 0.01 -> 0.003" in said and "iterations 1 -> 2" in said


def test_resume_past_the_last_iteration_is_refused(random_model_dir, tmp_path):
    first, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=3)
    first.train()
    shorter, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=2)
    with pytest.raises(ValueError, match="finished iteration 2, past --train.iterations 2"):
        shorter.resume()


def test_resume_before_the_first_checkpoint_starts_over(random_model_dir, tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"iteration": 0}\n')  # killed before saving
    trainer, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=1)
    assert trainer.resume(missing_ok=True) == 0
    trainer.train()
    rows = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["iteration"] for r in rows] == [0] and "reward/solver/mean" in rows[0]


def test_training_a_role_without_an_adapter_is_refused(random_model_dir, tmp_path):
    trainer, _ = make_trainer(random_model_dir, tmp_path, Joint(("judge",)))
    with pytest.raises(ValueError, match="trainable here"):
        trainer.train()


def test_dynamic_sampling_drops_zero_variance_groups(random_model_dir, tmp_path):
    trainer, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=2, algorithm="dapo")
    history = trainer.train()
    assert all(h["samples/solver/trained"] <= h["samples/solver"] == 8 for h in history)


class SyncedEngine:
    """A second HFBackend used only for generation, fed adapters the way vLLM is."""

    def __init__(self, backend):
        self.backend = backend
        self.synced: list[list[str]] = []

    def generate(self, prompts, adapters, sampling):
        return self.backend.generate(prompts, adapters, sampling)

    def sync_from(self, learner, names, root):
        for name in names:
            self.backend.load_adapter(name, learner.save_adapter(name, f"{root}/{name}"))
        self.synced.append(list(names))


def test_a_separate_generation_engine_gets_the_updated_adapters(random_model_dir, tmp_path):
    trainer, learner = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=2)
    engine = SyncedEngine(HFBackend(random_model_dir, adapters=["questioner", "solver"]))
    llm = LLMPolicy(engine, {"questioner": RoleConfig("questioner", SAMPLING),
                             "solver": RoleConfig("solver", SAMPLING)})
    trainer.policies = llm.roles_map()
    history = trainer.train()
    # every adapter before the first rollout, then the trained one after each update
    assert engine.synced == [["questioner", "solver"], ["solver"], ["solver"]]
    for row in history:  # the engine's and the learner's log-probs are one model's
        assert row["agreement/solver/logp_diff_max"] < 1e-4
        assert abs(row["agreement/solver/ratio_mean"] - 1) < 1e-4
    trained, served = snapshot(learner, "solver"), snapshot(engine.backend, "solver")
    assert all(torch.equal(trained[n], served[n]) for n in trained)



class SleepingEngine(SyncedEngine):
    """A generation engine launched to sleep during updates, as vLLM with enable_sleep_mode;
    records what happened in which order, and refuses to generate while asleep."""

    sleeps_during_update = True

    def __init__(self, backend, events):
        super().__init__(backend)
        self.events, self.asleep = events, False

    def generate(self, prompts, adapters, sampling):
        assert not self.asleep, "generated while asleep"
        self.events.append("generate")
        return super().generate(prompts, adapters, sampling)

    def sleep(self):
        self.asleep = True
        self.events.append("sleep")

    def wake_up(self):
        self.asleep = False
        self.events.append("wake_up")


def test_a_sleeping_engine_sleeps_through_every_update(random_model_dir, tmp_path, monkeypatch):
    import selfplay_gym.algorithms.trainer as trainer_module

    events = []
    real_update = trainer_module.update_adapter
    monkeypatch.setattr(trainer_module, "update_adapter",
                        lambda *a, **k: events.append("update") or real_update(*a, **k))
    trainer, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=2)
    engine = SleepingEngine(HFBackend(random_model_dir, adapters=["questioner", "solver"]), events)
    trainer.policies = LLMPolicy(engine, {"questioner": RoleConfig("questioner", SAMPLING),
                                          "solver": RoleConfig("solver", SAMPLING)}).roles_map()
    history = trainer.train()
    squeezed = [e for i, e in enumerate(events) if i == 0 or e != events[i - 1]]
    assert squeezed == ["generate", "sleep", "update", "wake_up"] * 2
    assert all(row["time/sleep_s"] >= 0 and "time/wake_up_s" in row for row in history)


@pytest.mark.parametrize("algorithm, expected", [("kto", 2), ("rft", 2), ("grpo", 0)])
def test_cross_role_examples_train_under_kto_only(random_model_dir, tmp_path, monkeypatch, algorithm, expected):
    """The questioner's text as a solver example: off-policy, so only a ratio-free loss takes it."""
    monkeypatch.setattr(LettersMode, "cross_role_examples",
                        lambda self, episode: [("questioner_0", "solver_0", 1.0)])
    trainer, _ = make_trainer(random_model_dir, tmp_path, Joint(("solver",)), iterations=1,
                              algorithm=algorithm)
    assert trainer.train()[-1]["samples/cross_role"] == expected  # one per episode, two envs

"""vLLM's sleep mode where vLLM has none: the CPU build refuses it, and so do we, before the
engine starts (about a minute) and dies on it."""

from __future__ import annotations

import pytest

vllm_platforms = pytest.importorskip("vllm.platforms")


@pytest.mark.skipif(vllm_platforms.current_platform.is_sleep_mode_available(),
                    reason="this vLLM can sleep (CUDA/ROCm/XPU): the test pins the CPU refusal")
def test_sleep_mode_is_refused_before_the_engine_starts(tiny_dir):
    import time

    from selfplay_gym.agents.vllm import VLLMBackend, check_sleep_mode

    with pytest.raises(ValueError, match="sleep mode needs a CUDA, ROCm or XPU device"):
        check_sleep_mode()
    start = time.perf_counter()
    with pytest.raises(ValueError, match="Drop --rollout.engine-sleep"):
        VLLMBackend.launch(tiny_dir, enable_sleep_mode=True)
    assert time.perf_counter() - start < 10  # no engine was started


def test_engine_sleep_needs_the_vllm_engine():
    from selfplay_gym.build import start_engine
    from selfplay_gym.config import RolloutConfig

    with pytest.raises(ValueError, match="needs --rollout.engine vllm"):
        start_engine(RolloutConfig(engine="hf", engine_sleep=True), None, "tiny", 8, 1, 0)

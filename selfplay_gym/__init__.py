"""selfplay-gym: LLM self-play reasoning as PettingZoo environments, trained with LoRA policy gradients.

>>> from selfplay_gym import SelfPlayReasoningEnv
>>> env = SelfPlayReasoningEnv(mode="rzero", num_solvers=4)
"""

from selfplay_gym.envs.env import SelfPlayReasoningEnv
from selfplay_gym.envs.mode import Mode, Parsed
from selfplay_gym.envs.parallel import SelfPlayParallelEnv, parallel_env
from selfplay_gym.envs.registry import make_mode, modes, register_mode
from selfplay_gym.envs.vector import Rollout, SelfPlayVectorEnv
from selfplay_gym.types import Completion, Episode, Policy, Request, Turn

__version__ = "0.1.0"


def make(mode: str = "rzero", **kwargs) -> SelfPlayReasoningEnv:
    """``SelfPlayReasoningEnv(mode, **kwargs)``, Gymnasium-style."""
    return SelfPlayReasoningEnv(mode, **kwargs)


__all__ = [
    "Completion",
    "Episode",
    "Mode",
    "Parsed",
    "Policy",
    "Request",
    "Rollout",
    "SelfPlayParallelEnv",
    "SelfPlayReasoningEnv",
    "SelfPlayVectorEnv",
    "Turn",
    "__version__",
    "make",
    "make_mode",
    "modes",
    "parallel_env",
    "register_mode",
]

"""A readable episode log: what a person wants to see of an episode, one block per episode."""

from __future__ import annotations

from selfplay_gym.types import Episode

MAX_TEXT = 400
"""Long actions are cut in the log (the JSON record keeps them whole)."""


def _short(text: str) -> str:
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… [{len(text)} chars]"


def format_episode(episode: Episode) -> str:
    """Task, every turn (valid or why not), derived fields and rewards, as plain text."""
    task = {k: v for k, v in episode.task.items() if k in ("task_id", "difficulty") and v is not None}
    lines = [f"=== episode {episode.episode_id} ({episode.mode}) {task}"]
    for turn in episode.turns:
        status = "ok" if turn.valid else f"INVALID ({turn.error})"
        lines.append(f"  [{turn.agent}] {status}: {_short(turn.text)}")
    for key, value in episode.fields.items():
        if key not in ("answers",):
            lines.append(f"  {key}: {value}")
    if episode.rewards:
        rewards = ", ".join(f"{a}={r + 0.0:+.3f}" for a, r in episode.rewards.items())
        lines.append(f"  rewards: {rewards}")
    return "\n".join(lines)

"""One benchmark question, normalised: ``EvalItem``, and the prompt templates the papers use.

Every loader turns a dataset row into an ``EvalItem``; the runner, the checker and the metrics
read nothing else. Prompts follow the papers' evaluation scripts (R-Zero, DARC): math asks for
step-by-step reasoning and a ``\\boxed{}`` answer; multiple choice lists lettered options and
asks for the letter in ``\\boxed{}``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from selfplay_gym.types import Messages

ANSWER_TYPES = ("math", "choice", "text")
"""``math``: checked by math-verify; ``choice``: an option letter; ``text``: BBEH's fuzzy match."""

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CHOICE_INSTRUCTION = (
    "Please reason step by step. Answer with the letter of the correct option in \\boxed{}."
)


@dataclass(frozen=True)
class EvalItem:
    """A question with its reference answer.

    ``answer`` is the final answer for ``math``/``text`` and the option letter for ``choice``;
    ``choices`` holds the option texts in letter order (empty unless ``choice``).
    """

    id: str
    prompt: str
    answer: str
    answer_type: str = "math"
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"answer_type must be one of {ANSWER_TYPES}, got {self.answer_type!r}")
        if self.answer_type == "choice":
            if not 2 <= len(self.choices) <= len(LETTERS):
                raise ValueError(f"item {self.id!r}: a choice item needs 2..26 choices")
            if self.answer not in LETTERS[: len(self.choices)]:
                raise ValueError(
                    f"item {self.id!r}: answer {self.answer!r} is not one of the option letters "
                    f"{LETTERS[: len(self.choices)]}"
                )
        elif self.choices:
            raise ValueError(f"item {self.id!r}: only choice items have choices")

    def messages(self) -> Messages:
        """The chat prompt: one user message (base and instruct chat templates both take it)."""
        return ({"role": "user", "content": self.prompt},)


def math_prompt(question: str) -> str:
    return f"{question.strip()}\n\n{MATH_INSTRUCTION}"


def choice_prompt(question: str, choices: Sequence[str]) -> str:
    options = "\n".join(f"{LETTERS[i]}. {str(c).strip()}" for i, c in enumerate(choices))
    return f"{question.strip()}\n\nOptions:\n{options}\n\n{CHOICE_INSTRUCTION}"


def math_item(id: str, question: str, answer: str) -> EvalItem:
    """A free-form math question with the papers' math prompt."""
    return EvalItem(str(id), math_prompt(question), str(answer).strip(), "math")


def text_item(id: str, question: str, answer: str) -> EvalItem:
    """A free-form question whose answer is matched as text (BBEH)."""
    return EvalItem(str(id), math_prompt(question), str(answer).strip(), "text")


def choice_item(id: str, question: str, choices: Sequence[str], letter: str) -> EvalItem:
    """A multiple-choice question with lettered options; ``letter`` is the correct one."""
    choices = tuple(str(c).strip() for c in choices)
    return EvalItem(
        str(id), choice_prompt(question, choices), letter.strip().upper(), "choice", choices
    )


def shuffled_choices(
    correct: str, incorrect: Sequence[str], *, key: str, seed: int = 0
) -> tuple[tuple[str, ...], str]:
    """The options in an order fixed by ``(seed, key)``, and the correct option's letter.

    GPQA stores the right answer in its own column, so an unshuffled list would always put it
    first. A string seed makes ``random.Random`` deterministic across processes and platforms.
    """
    options = [correct, *incorrect]
    order = list(range(len(options)))
    random.Random(f"{seed}:{key}").shuffle(order)
    shuffled = tuple(options[i] for i in order)
    return shuffled, LETTERS[order.index(0)]

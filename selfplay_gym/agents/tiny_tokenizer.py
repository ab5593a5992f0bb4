"""The tiny model's tokenizer: byte-level BPE trained on the warm start's own prompts.

Its chat template and special tokens are saved with the built model, so whatever loads the
model renders a prompt as the warm start did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

import jinja2
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from selfplay_gym.types import Messages

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_SPECIAL = re.compile("|".join(re.escape(t) for t in (PAD, IM_START, IM_END)))
Example = tuple[Messages, str]
"""A chat prompt and the text the model should answer to it."""


def build_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE that merges whole prompt phrases but never a digit with anything.

    No whitespace split, so a system prompt can become one token; digits are split off first,
    so numbers stay per-digit. The byte alphabet keeps any Unicode text encodable.
    """
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    pieces = (piece for text in texts for piece in _SPECIAL.split(text) if piece)
    tokenizer.train_from_iterator(pieces, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=PAD, eos_token=IM_END, padding_side="left",
        chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False,
    )


def corpus_texts(examples: Sequence[Example]) -> Iterator[str]:
    """The tokenizer's training texts: each prompt as the chat template renders it, the target."""
    template = jinja2.Template(CHAT_TEMPLATE)
    for messages, target in examples:
        yield template.render(messages=messages, add_generation_prompt=True)
        yield target + IM_END


def render_prompt(tokenizer: PreTrainedTokenizerFast, messages: Messages) -> str:
    """The chat prompt as text, ending where the assistant's answer starts."""
    return tokenizer.apply_chat_template(
        [dict(m) for m in messages], tokenize=False, add_generation_prompt=True
    )

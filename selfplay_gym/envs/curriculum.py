"""DARC's questions and answers as data: how they are read, checked, ordered and served.

* Reading (pure, never raise): the Questioner's JSON object, a boxed answer with DARC's format
  bit, the relatedness judge's yes/no.
* Checking (pure): answer-type validators, multiple-choice option letters, gold matching, the
  copy ratio against the document, and the near-duplicate similarity.
* Ordering: ``build_curriculum`` turns stage-1 episodes into ``CurriculumItem`` rows, easy ->
  hard, deduplicated (``save_curriculum``/``load_curriculum`` hand them to stage 2).
* Serving: ``CurriculumTask`` yields the items in order (stage 2); ``DocumentPrompts`` expands
  each document into one prompt per difficulty, each repeated n times (stage 1), as DARC does.

Both feeds keep a cursor: give one instance to every env of a vector env (``task=``, or DARC's
``curriculum=``) and consecutive resets walk the list, deterministically in reset order. A
curriculum item is a ``TaskItem`` subclass, so its question and answer type travel in
``episode.task`` without a change to TaskItem. The DARC mode (envs/modes/darc.py) uses all this.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from selfplay_gym.envs.mode import Parsed
from selfplay_gym.envs.tasks.base import TaskItem, TaskSource
from selfplay_gym.envs.verify import equivalent, extract_boxed
from selfplay_gym.types import Episode, json_line

# --- answer checks (DARC's validate_answer_type, normalize_categorical_answer) --------------
_CHOICE_MARKUP = re.compile(r"\\(?:TEXT|MATHRM|MATHBF|BM|BOLD|BOLDFACE|RM|BF)\s*\{\s*([A-J])\s*\}")
_OPTION_LINE = re.compile(  # at the start, after a newline, or after an escaped "\\n"
    r"(?:^|\\r\\n|\\n|\\r|\r\n|\n|\r)\s*([A-J])\s*[.):：．）、]\s*", re.IGNORECASE)
_EXPRESSION = re.compile(r"[A-Za-z0-9_+\-*/^().= \\{}]+")


def normalize_choice(answer: str) -> str | None:
    """One option letter A-J from "B", "(b)", "B.", "\\text{B}" or "option B", else None."""
    s = answer.strip().upper()
    for _ in range(3):
        s = _CHOICE_MARKUP.sub(r"\1", s)
    single = re.fullmatch(r"\(?\s*([A-J])\s*(?:\)|[.):,;]\s*)?", s)
    if single:
        return single.group(1)
    letters = set(re.findall(r"\b([A-J])\b", re.sub(r"[^A-Z0-9 ]+", " ", s)))
    return letters.pop() if len(letters) == 1 else None


def has_options(question: str, min_distinct: int = 3) -> bool:
    """Whether a multiple-choice question lists >= ``min_distinct`` option letters, one per line."""
    return len(set(_OPTION_LINE.findall(question.upper()))) >= min_distinct


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "integer": lambda a: re.fullmatch(r"[-+]?\d+", a) is not None,
    "float": lambda a: re.fullmatch(r"[-+]?\d+\.\d+", a) is not None,
    "categorical": lambda a: normalize_choice(a) is not None,
    "boolean": lambda a: a.lower() in ("true", "false"),
    "expression": lambda a: bool(_EXPRESSION.fullmatch(a)) and any(c in a for c in "+-*/^="),
    "string": lambda a: re.fullmatch(r"[A-Za-z]+(?: [A-Za-z]+){0,2}", a) is not None,
}
"""Answer type -> validator of a stripped answer; a DARC gold label must pass its type's."""


def canonical_gold(answer: str | None, answer_type: str) -> str | None:
    """The label in canonical form (option letter, lower-case boolean) if valid, else None."""
    answer = (answer or "").strip()
    if answer_type == "categorical":
        answer = normalize_choice(answer) or answer
    elif answer_type == "boolean":
        answer = answer.lower()
    return answer if answer and VALIDATORS[answer_type](answer) else None


_TEXT_MARKUP = re.compile(r"\\(?:text|mathrm|textbf|mathbf|textrm|rm)\s*\{([^{}]*)\}")
_PUNCTUATION = re.compile(r"[\s.,;:!?()\[\]{}'\"`$]+")


def is_none_answer(answer: str) -> bool:
    """"None" under markup or punctuation: ``\\text{None}``, ``\\mathrm{none}``, "None.", "(none)"."""
    core = answer
    for _ in range(3):
        core = _TEXT_MARKUP.sub(r"\1", core)
    return _PUNCTUATION.sub("", core).lower() == "none"


def usable(answer: str | None) -> bool:
    """DARC drops empty and "None" answers (markup unwrapped, punctuation stripped) before
    voting and never counts them correct, so a "None" majority gives no label."""
    return bool(answer and answer.strip()) and not is_none_answer(answer)


def boxed_format(text: str) -> bool:
    """DARC's format bit: a closed ``\\boxed{...}`` plus some text outside every box.

    Braces are matched (``\\boxed{\\frac{1}{2}}`` is one box), in one linear pass.
    """
    outside, boxes, pos = [], 0, 0
    for match in re.finditer(r"\\boxed\s*\{", text):
        if match.start() < pos:
            continue
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth:
            break
        outside.append(text[pos : match.start()])
        pos, boxes = i, boxes + 1
    return boxes > 0 and bool(("".join(outside) + text[pos:]).strip())


def matches_gold(
    answer: str | None, gold: str, answer_type: str,
    grader: Callable[[str, str], bool] = equivalent,
) -> bool:
    """Whether an answer states gold: option letters compared, everything else by ``grader``
    (the mode's; math-verify by default)."""
    if not usable(answer):
        return False
    if answer_type == "categorical":
        return normalize_choice(answer) == gold
    return grader(answer, gold)


# --- parsers (pure, never raise) ----------------------------------------------------------------
QUESTION_KEYS = frozenset({"analysis", "question", "intermediate_results", "answer",
                           "solving_time_estimate", "required_concepts", "potential_errors"})
_FENCED = re.compile(r"^\s*```(?:json)?\s*(\{.*\})\s*```\s*$", re.IGNORECASE | re.DOTALL)
_ROLE_PREFIX = re.compile(r"^\s*assistant\s*[:：]\s*", re.IGNORECASE)


def parse_question_json(text: str, strict_keys: bool = True, answer_type: str = "") -> Parsed:
    """The Questioner's one JSON object, bare or in a ```json fence, as DARC's code reads it.

    ``strict_keys``: the key set must equal QUESTION_KEYS; otherwise only "question" is
    required. With ``answer_type="categorical"`` the question must list >= 3 options.
    """
    stripped = text.strip()
    unprefixed = _ROLE_PREFIX.sub("", stripped, count=1).lstrip()
    if unprefixed != stripped and unprefixed.startswith(("```", "{")):
        stripped = unprefixed
    fenced = _FENCED.match(stripped)
    body = fenced.group(1) if fenced else stripped
    if not (body.startswith("{") and body.endswith("}")):
        return Parsed(False, error="not a single JSON object or ```json block")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        return Parsed(False, error=f"invalid JSON: {type(exc).__name__}")
    if not isinstance(payload, dict):
        return Parsed(False, error="the JSON is not an object")
    if (set(payload) != QUESTION_KEYS) if strict_keys else ("question" not in payload):
        return Parsed(False, error=f"wrong JSON keys: {sorted(set(payload) ^ QUESTION_KEYS)}")
    question, answer = payload["question"], payload.get("answer")
    if not isinstance(question, str) or not question.strip():
        return Parsed(False, error="'question' must be a non-empty string")
    fields = {"question": question.strip(),
              "answer": str(answer) if isinstance(answer, (str, int, float)) else None}
    if answer_type == "categorical" and not has_options(fields["question"]):
        return Parsed(False, fields, error="multiple-choice question with fewer than 3 options")
    return Parsed(True, fields)


def parse_boxed(text: str) -> Parsed:
    """The last ``\\boxed{}`` answer and DARC's format bit (``boxed_format``)."""
    answer = extract_boxed(text)
    fields = {"answer": answer, "format": boxed_format(text)}
    return Parsed(answer is not None, fields, None if answer else "no \\boxed{} answer")


def parse_verdict(text: str) -> Parsed:
    """DARC's yes/no rule, on whole words: only yes -> related, only no -> not, both -> starts
    with "y"; neither word is unparsable (DARC then skips the check: treated as related)."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    yes, no = "yes" in words, "no" in words
    if not (yes or no):
        return Parsed(False, {"related": None}, error="no yes/no verdict")
    return Parsed(True, {"related": yes if yes != no else text.strip().lower().startswith("y")})


# --- text overlap ------------------------------------------------------------------------------
def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\u4e00-\u9fff]+", " ", text.lower()).split())


def copy_ratio(question: str, document: str, n: int = 6, max_chars: int = 50_000) -> float:
    """Share of the question's character n-grams found in the document (DARC's copy check).

    Both texts are lower-cased, punctuation turned into spaces. 1.0 if the question is a
    substring of the document; else ``|{i : g_i(Q) in G(D)}| / |g(Q)|`` over the n-grams (n = 6)
    of the space-free strings; a question shorter than n scores its word overlap instead.
    """
    q, d = _plain(question), _plain(document[:max_chars])
    if not q or not d:
        return 0.0
    if q in d:
        return 1.0
    n, q_flat, d_flat = max(2, n), q.replace(" ", ""), d.replace(" ", "")
    grams = [q_flat[i : i + n] for i in range(len(q_flat) - n + 1)]
    if not grams:
        doc_words = set(d.split())
        return sum(w in doc_words for w in q.split()) / len(q.split())
    doc_grams = {d_flat[i : i + n] for i in range(len(d_flat) - n + 1)}
    return sum(g in doc_grams for g in grams) / len(grams) if doc_grams else 0.0


def char_ngram_jaccard(a: str, b: str, n: int = 3) -> float:
    """``|G(a) & G(b)| / |G(a) | G(b)|`` over character n-gram sets of the normalised texts.

    Our stand-in for DARC's sentence-embedding cosine (no embedding model offline): it sees
    surface overlap only, so templated near-copies score high and paraphrases low.
    """
    grams = [{t[i : i + n] for i in range(max(1, len(t) - n + 1))} for t in (_plain(a), _plain(b))]
    union = grams[0] | grams[1]
    return len(grams[0] & grams[1]) / len(union) if union else 1.0


# --- the curriculum ----------------------------------------------------------------------------
@dataclass(frozen=True)
class CurriculumItem(TaskItem):
    """A stage-2 task item: a document, a question about it, its answer type and stage-1 s."""

    question: str = ""
    answer_type: str = "integer"
    solve_rate: float | None = None


def build_curriculum(
    episodes: Iterable[Episode],
    *,
    strict: bool = True,
    threshold: float = 0.6,
    similarity: Callable[[str, str], float] = char_ngram_jaccard,
) -> list[CurriculumItem]:
    """DARC's curriculum: valid questions, easy -> hard, near-duplicates removed.

    ``strict``: keep questions whose stage-1 check passed (status "ok": valid gold, answered,
    not copied, related); False keeps every parsed question, as DARC's own build does. Items
    sort by difficulty, then solve rate descending, then input order. A question is dropped if
    ``similarity`` to an already kept one is >= ``threshold`` (DARC: embedding cosine >= 0.6;
    here character 3-gram Jaccard >= 0.6). MCQs without 3 options are dropped. O(N^2) pairs.
    """
    rows = []
    for index, ep in enumerate(episodes):
        fields, task = ep.fields, ep.task
        question, answer_type = fields.get("question"), fields.get("answer_type", "integer")
        if not question or (strict and fields.get("status") != "ok"):
            continue
        if answer_type == "categorical" and not has_options(question):
            continue
        s = fields.get("solve_rate")
        key = (task.get("difficulty") or 0, -(s if s is not None else -1.0), index)
        rows.append((key, CurriculumItem(
            task_id=f"curriculum-{ep.episode_id}", domain=task.get("domain", ""),
            difficulty=task.get("difficulty"), document=task.get("document"),
            question=question, answer_type=answer_type, solve_rate=s)))
    kept: list[CurriculumItem] = []
    for _, item in sorted(rows, key=lambda row: row[0]):
        if all(similarity(item.question, other.question) < threshold for other in kept):
            kept.append(item)
    return kept


def save_curriculum(items: Sequence[CurriculumItem], path: str | Path) -> None:
    """One JSON object per line, in order (the hand-off between DARC's two stages)."""
    Path(path).write_text("".join(json_line(item.to_dict()) for item in items), encoding="utf-8")


def load_curriculum(path: str | Path) -> list[CurriculumItem]:
    text = Path(path).read_text(encoding="utf-8")
    return [CurriculumItem(**json.loads(line)) for line in text.split("\n") if line.strip()]


@dataclass
class CurriculumTask:
    """Implements TaskSource: the items in order, cycling; ``position`` is the next index.

    The generator is not used: order, not chance, is the curriculum (DARC: no shuffle).
    """

    items: Sequence[CurriculumItem]
    name: str = "curriculum"
    position: int = 0

    def __post_init__(self) -> None:
        self.items = tuple(self.items)
        if not self.items:
            raise ValueError("CurriculumTask needs items: CurriculumTask(build_curriculum(eps))")
        bad = [i for i, item in enumerate(self.items)
               if not (isinstance(item, CurriculumItem) and item.question)]
        if bad:
            raise TypeError(f"items {bad[:5]} are not CurriculumItems with a question")

    def __len__(self) -> int:
        return len(self.items)

    def sample(self, rng: np.random.Generator) -> CurriculumItem:
        item = self.items[self.position % len(self.items)]
        self.position += 1
        return item

    def state_dict(self) -> dict[str, Any]:
        """The cursor, for checkpoints: a resumed run serves the item the killed one would."""
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state.get("position", 0))


@dataclass
class DocumentPrompts:
    """Implements TaskSource: each document of ``source`` at every difficulty, each n times.

    DARC expands a document into one prompt per difficulty (1, 2, 3) and samples n = 8
    questions per prompt, so a batch of consecutive resets forms GRPO groups (same prompt) and
    lets the per-document ranking penalty compare difficulties. A new document is drawn, with
    the caller's generator, at the start of every block of ``len(difficulties) * n`` resets.
    """

    source: TaskSource
    difficulties: tuple[int, ...] = (1, 2, 3)
    samples_per_prompt: int = 8
    name: str = "document_prompts"
    position: int = 0
    _item: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.difficulties or self.samples_per_prompt < 1:
            raise ValueError("DocumentPrompts needs difficulties and samples_per_prompt >= 1")

    def sample(self, rng: np.random.Generator) -> TaskItem:
        offset = self.position % (len(self.difficulties) * self.samples_per_prompt)
        if offset == 0 or self._item is None:
            self._item = self.source.sample(rng)
        difficulty = int(self.difficulties[offset // self.samples_per_prompt])
        self.position += 1
        task_id = f"{self._item.task_id}@d{difficulty}"
        return dataclasses.replace(self._item, difficulty=difficulty, task_id=task_id)

    def state_dict(self) -> dict[str, Any]:
        """The cursor and the document of the current block (a block may span iterations)."""
        item = None if self._item is None else self._item.to_dict()
        return {"position": self.position, "item": item}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state.get("position", 0))
        item = state.get("item")
        self._item = None if item is None else TaskItem(**item)

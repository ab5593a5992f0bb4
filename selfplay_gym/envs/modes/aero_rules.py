"""AERO's rules as pure functions: parse the three texts, group answers, place a question by
the entropy of its answers, and turn ICC's verdict into rewards and KTO labels.

Source: mira-ai-lab/AERO (synth/inner_loop.py, answer_analyzer.py, answerer.py); formulas and
constants in the functions' docstrings; ``aero.py`` wires them into the mode.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from selfplay_gym.envs.mode import Parsed
from selfplay_gym.envs.verify import extract_answer

CORRECTED_MAX_CLUSTERS = 4
"""``"corrected"`` measures H against the spread of at most 4 equally likely answers."""


def _json_objects(text: str, key: str) -> list[dict[str, Any]]:
    """Top-level JSON objects in ``text`` (fences and prose around them ignored) holding ``key``."""
    decoder, found, pos = json.JSONDecoder(), [], text.find("{")
    while pos >= 0:
        try:
            value, end = decoder.raw_decode(text, pos)
        except (ValueError, RecursionError):
            pos = text.find("{", pos + 1)
            continue
        if isinstance(value, dict) and key in value:
            found.append(value)
        pos = text.find("{", end)
    return found


def parse_question(text: str, raw_fallback: bool = False) -> Parsed:
    """The generator's JSON: the last object with a non-empty string ``question``.

    ``raw_fallback``: as synth/generator.py, an output that does not parse whole as one JSON
    object with a string "question" is kept as the question, raw.
    """
    if raw_fallback:
        return _parse_question_or_raw(text)
    objects = _json_objects(text, "question")
    if not objects:
        return Parsed(False, error='no JSON object with a "question" key')
    question, meta = objects[-1]["question"], objects[-1].get("meta")
    if not isinstance(question, str) or not question.strip():
        return Parsed(False, error='"question" must be a non-empty string')
    meta = meta if isinstance(meta, dict) else {}
    return Parsed(True, {"question": question.strip(), "meta": meta})


def _parse_question_or_raw(text: str) -> Parsed:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if isinstance(value, dict) and isinstance(value.get("question"), str):
        question, meta = value["question"].strip(), value.get("meta")
    else:
        question, meta = text.strip(), None
    if not question:
        return Parsed(False, error="empty question")
    return Parsed(True, {"question": question, "meta": meta if isinstance(meta, dict) else {}})


def _number(item: Any) -> int | None:
    if isinstance(item, int) and not isinstance(item, bool):
        return item
    return int(item) if isinstance(item, str) and item.strip().isdigit() else None


def parse_merge(text: str) -> Parsed:
    """The judge's ``{"same": [[1, 3], [2]]}``; a bare number is a block of one."""
    objects = _json_objects(text, "same")
    if not objects or not isinstance(objects[-1]["same"], list):
        return Parsed(False, error='no JSON object with a "same" list')
    blocks = []
    for block in objects[-1]["same"]:
        items = block if isinstance(block, list) else [block]
        numbers = [_number(item) for item in items]
        if None in numbers:
            return Parsed(False, error=f'"same" must hold lists of answer numbers, got {block!r}')
        blocks.append(numbers)
    return Parsed(True, {"same": blocks})


def parse_answer(text: str, unclosed: str = "previous") -> Parsed:
    answer = extract_answer(text, unclosed=unclosed)
    return Parsed(answer is not None, {"answer": answer}, None if answer else "no \\boxed{} answer")


# --- clustering and positioning (pure) ---------------------------------------------------------
def exact_groups(answers: Sequence[str | None]) -> list[list[int]]:
    """Indices of identical answers, largest group first (ties: first appearance); None dropped."""
    groups: dict[str, list[int]] = {}
    for index, answer in enumerate(answers):
        if answer:
            groups.setdefault(answer, []).append(index)
    return sorted(groups.values(), key=len, reverse=True)


def merge_groups(groups: Sequence[list[int]], same: Callable[[int, int], bool]) -> list[list[int]]:
    """AERO's greedy merge: each group (in order) joins the first cluster whose founding group it
    matches, ``same(group, founder)`` over group positions. A cluster lists its founding group
    first, so ``cluster[0]`` is the representative; clusters come largest first."""
    clusters: list[list[int]] = []
    founders: list[int] = []
    for g, group in enumerate(groups):
        k = next((k for k, f in enumerate(founders) if same(g, f)), None)
        if k is None:
            clusters.append(list(group))
            founders.append(g)
        else:
            clusters[k].extend(group)
    return sorted(clusters, key=len, reverse=True)


def normalized_entropy(
    sizes: Sequence[int], num_samples: int, normalization: str = "original"
) -> float | None:
    """H̄ of the answer clusters; None when no answer parsed.

    p_k = |C_k| / m (m = parsed answers), H = -sum p_k log2 p_k.
    ``"original"`` (AERO's code): H̄ = H / log2(n), n = all samples, parsed or not. With n = 16
    a two-way split has H <= 1 bit, so H̄ <= 0.25: every bimodal question is "mastery" and the
    ZPD needs >= 3 clusters; the zone of one distribution also shifts with n.
    ``"corrected"``: H̄ = min(1, H / log2(min(m, 4))). The reference is the spread of four equally
    likely answers, the n at which AERO's own normalisation puts a 50/50 split at the ZPD centre
    (H̄ = 0.5), made independent of n; with fewer than four parsed answers the most spread-out
    distribution they allow is the reference, so H̄ stays in [0, 1]. 8/8 -> 0.5 (ZPD),
    12/4 -> 0.41, 8/4/4 -> 0.75 (chaos), 4x4 and all-distinct -> 1.
    """
    parsed = sum(sizes)
    if parsed == 0:
        return None
    bits = max(0.0, -sum(s / parsed * math.log2(s / parsed) for s in sizes if s))
    scale = num_samples if normalization == "original" else min(parsed, CORRECTED_MAX_CLUSTERS)
    return 0.0 if scale <= 1 else min(1.0, bits / math.log2(scale))


def entropy_zone(entropy: float | None, mastery: float = 0.3, chaos: float = 0.7) -> str:
    """AERO's zones: H̄ < mastery -> "mastery", <= chaos -> "ZPD", above or None -> "chaos"."""
    if entropy is None or entropy > chaos:
        return "chaos"
    return "mastery" if entropy < mastery else "ZPD"


# --- rewards (pure) ----------------------------------------------------------------------------
def zpd_reward(zone: str) -> float:
    """AERO's generator label as a reward: +1 for a ZPD question, -1 otherwise (aero.md)."""
    return 1.0 if zone == "ZPD" else -1.0


def zpd_bump_reward(entropy: float | None, mastery: float = 0.3, chaos: float = 0.7) -> float:
    """A smooth generator reward: cos(pi d / 2) with d = |H̄ - c| / w, c and w the ZPD's centre and
    half-width; -1 for d >= 2 or no parsable answer. +1 at the centre, 0 at the ZPD edges (so its
    sign agrees with ``zpd_reward``), -1 a half-width outside; continuous with a continuous slope.
    """
    if entropy is None:
        return -1.0
    d = abs(entropy - (mastery + chaos) / 2) / ((chaos - mastery) / 2)
    return math.cos(math.pi * d / 2) if d < 2 else -1.0


def label_reward(converged: bool, correct: bool) -> float:
    """AERO's solver and refiner labels as a reward (aero.md, "Env sketch"): 0 when ICC did not
    converge (AERO makes no data), else +1 for an answer equivalent to a*, -1 otherwise."""
    if not converged:
        return 0.0
    return 1.0 if correct else -1.0


def aero_kto_labels(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """AERO's KTO examples (inner_loop.py) as ``{"agent", "role", "desirable"}``: the completion
    of ``agent`` trained under ``role``'s prompt. Generator: desirable iff ZPD (an invalid
    question is undesirable). Converged: refiner_0's correction under the solver prompt is
    desirable; each top-2 representative solver whose answer is not a* is undesirable; the
    refiner whose candidate was wrong is desirable under its own prompt."""
    if fields.get("question") is None:
        return [{"agent": "generator_0", "role": "generator", "desirable": False}]
    zpd = fields.get("zone") == "ZPD"
    labels = [{"agent": "generator_0", "role": "generator", "desirable": zpd}]
    if fields.get("converged"):
        wrong = [i for i, ok in enumerate(fields["candidate_correct"]) if not ok]
        labels.append({"agent": "refiner_0", "role": "solver", "desirable": True})
        for i in wrong:
            solver = fields["refiner_candidates"][i]
            labels.append({"agent": f"solver_{solver}", "role": "solver", "desirable": False})
        labels += [{"agent": f"refiner_{i}", "role": "refiner", "desirable": True} for i in wrong]
    return labels

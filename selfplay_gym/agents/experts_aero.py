"""Scripted AERO experts: the generator, the equivalence judge and the refiner."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from selfplay_gym.agents.experts_common import Seeded, done, expression_in
from selfplay_gym.agents.scripted import DatasetQuestioner
from selfplay_gym.envs.tasks import solve, worked_solution
from selfplay_gym.envs.verify import equivalent
from selfplay_gym.types import Completion, Request


class AeroGenerator(DatasetQuestioner):
    """AERO's generator: ``{"question": <a problem>, "meta": {"domain": ...}}``, strict JSON."""

    def __init__(self, problems: Sequence[Any], seed: int = 0, domain: str = "arithmetic"):
        super().__init__(problems, seed=seed)
        self.domain = domain

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for _ in requests:
            question, _answer = self._next()
            out.append(done(json.dumps({"question": question, "meta": {"domain": self.domain}})))
        return out


class AeroJudge:
    """AERO's equivalence judge: ``{"same": [[1, 3], [2]]}`` over the numbered distinct answers."""

    def __init__(self, same: Callable[[str, str], bool] = equivalent):
        self.same = same

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            answers, groups = request.info.get("answers") or [], request.info.get("groups") or []
            keys = [answers[g[0]] for g in groups]
            blocks: list[list[int]] = []
            for number, key in enumerate(keys, start=1):
                block = next((b for b in blocks if self.same(key, keys[b[0] - 1])), None)
                if block is None:
                    blocks.append([number])
                else:
                    block.append(number)
            out.append(done(json.dumps({"same": blocks})))
        return out


class Refiner(Seeded):
    """A correct solver of arithmetic questions: AERO's refiner (ICC) writes the worked solution."""

    def generate(self, requests: Sequence[Request]) -> list[Completion]:
        out = []
        for request in requests:
            question = str(request.info.get("question") or "")
            expression = expression_in(question) or question
            answer = solve(expression)
            text = worked_solution(expression, answer, self.rng) if answer else "\\boxed{0}"
            out.append(done(text))
        return out

"""Absolute Zero (AZR): one policy proposes Python tasks and solves them; the executor judges.

Source: "Absolute Zero: Reinforced Self-play Reasoning with Zero Data" (Zhao et al., arXiv
2505.03335) and its code (LeapLabTHU/Absolute-Zero-Reasoner). Where the two differ, the code
is the default; docs/modes/azr.md maps the equations to this file and tables the differences.

## Roles
- ``proposer_0``: writes one task of the episode's type, conditioned on K reference triplets
  (or, for induction, on one program) from the program buffer (``tasks.programs``).
- ``solver_0 .. solver_{n-1}``: n rollouts on the validated task (AZR's n = 8). They are the
  Monte-Carlo estimate of the proposer's reward and the solver's training group at once.
One policy plays both (``single_policy``): one LoRA adapter, "policy".

## Turn order
proposer_0 -> (the executor validates) -> solver_0..solver_{n-1}. An invalid proposal ends
the episode after the proposer.

## Task types (one per episode, in turn: ``ProgramBuffer.task_types``)
The envs of a vector env share one buffer when given one (``task=ProgramBuffer()``, as
``selfplay-gym train`` does); each env otherwise grows its own.
- deduction: the proposer writes a program ``f`` and an input; the executor computes the
  output; solvers see program + input and predict the output (```` ```output ````).
- abduction: the same proposal; solvers see program + output and write an input
  (```` ```input ````) that makes ``f`` return that output.
- induction: the proposer sees a buffer program and writes ``num_inputs`` inputs and a
  message (```` ```input ```` x N, ```` ```message ````); solvers see the message and the
  first half of the input/output pairs and write a program (```` ```python ````) that must
  reproduce the hidden half.

## Validation (the executor, ``envs/sandbox.py``)
A proposal is valid when its program parses and defines ``f``, uses no banned word
(``azr_programs.BANNED_WORDS``), runs on its inputs, returns literals, and returns the same
on a second run (AZR's determinism check). A valid deduction or abduction proposal joins the
buffer as a new triplet.

## Rewards (``azr_rewards``)
- Proposer: the learnability 1 - r̄ if 0 < r̄ < 1 else 0, r̄ = the solvers' mean solve reward.
- Solver: 1 if the executor says it is right, else 0.
- Both through the composite: a positive reward passes, a zero one is ``wrong_reward``
  (-0.5) when well formed, and ``format_penalty`` (-1) for a format error or an invalid
  proposal; ``format_rewards=False`` gives the bare rewards (and 0 to an invalid proposal).

## Advantage groups
``advantage_groups="task_role"`` (default, TRR++): one group per (role, task type) across
the batch, six baselines; "prompt": GRPO's groups (one per proposer prompt, one per episode's
solvers).

## Version history
- v0: initial release.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfplay_gym.envs.mode import Mode, Parsed, Recipe, RewardFn, agent_index, role_of
from selfplay_gym.envs.modes.azr_programs import (
    BANNED_WORDS,
    MAX_PROGRAM_CHARS,
    Executor,
    banned_word,
    blocks,
    defines_f,
    last_block,
    literal,
    same_value,
)
from selfplay_gym.envs.modes.azr_prompts import PROPOSER_SYSTEM, proposer_user, solver_messages
from selfplay_gym.envs.modes.azr_rewards import (
    composite_reward,
    learnability_reward,
    solve_reward,
    task_relative_group,
)
from selfplay_gym.envs.tasks.programs import TASK_TYPES, ProgramBuffer
from selfplay_gym.types import Episode, Messages, Turn

ANSWER_BLOCK = {"deduction": "output", "abduction": "input", "induction": "python"}
"""The fenced block a solver of each task type answers in."""
HIDDEN = ("output", "input", "program", "outputs", "hidden_inputs", "hidden_outputs", "triplet")
"""Fields a solver's info never shows: the answers it must find."""


@dataclass
class AzrConfig:
    num_solvers: int = 8
    """n: solver rollouts per task (the code's ``azr.reward.n_samples``)."""
    task_types: tuple[str, ...] = TASK_TYPES
    """Which task types the default buffer hands out, in turn."""
    num_references: int = 6
    """K: reference triplets in a deduction or abduction proposer's prompt (``io_n``)."""
    num_inputs: int = 10
    """Inputs an induction proposal writes (``num_inputs``); solvers see the first half."""
    advantage_groups: str = "task_role"
    """"task_role": TRR++'s six baselines; "prompt": GRPO's per-prompt groups."""
    format_rewards: bool = True
    """True: the code's composite reward (-0.5 well formed but zero, -1 malformed)."""
    wrong_reward: float = -0.5
    format_penalty: float = -1.0
    banned_words: tuple[str, ...] = BANNED_WORDS
    timeout_s: float = 10.0
    """Seconds per sandboxed run (``execute_max_timeout``)."""
    memory_mb: int = 512
    isolation: str = "namespace"
    """The sandbox's isolation; "none" runs model-written code without namespaces (a warning)."""

    def __post_init__(self) -> None:
        self.task_types, self.banned_words = tuple(self.task_types), tuple(self.banned_words)
        if self.num_solvers < 1 or self.num_references < 1 or self.num_inputs < 2:
            raise ValueError("need num_solvers >= 1, num_references >= 1 and num_inputs >= 2, "
                             f"got {self.num_solvers}, {self.num_references}, {self.num_inputs}")
        if self.advantage_groups not in ("task_role", "prompt"):
            raise ValueError("advantage_groups must be 'task_role' (TRR++) or 'prompt', got "
                             f"{self.advantage_groups!r}")
        if self.isolation not in ("namespace", "none"):
            raise ValueError(f"isolation must be 'namespace' or 'none', got {self.isolation!r}")
        if not self.timeout_s > 0 or self.memory_mb < 64:
            raise ValueError(f"need timeout_s > 0 and memory_mb >= 64, got {self.timeout_s}, "
                             f"{self.memory_mb}")


def parse_proposal(text: str, num_inputs: int) -> Parsed:
    """A deduction/abduction proposal (last ```python and ```input blocks) or an induction one
    (the last ``num_inputs`` ```input blocks and the last ```message); both are read, the mode
    keeps the one its task type asks for."""
    fields: dict[str, Any] = {}
    program, given = last_block(text, "python"), last_block(text, "input")
    if program is not None and given is not None and len(program) <= MAX_PROGRAM_CHARS:
        fields |= {"program": program + "\n", "input": given}
    inputs, message = [b for b in blocks(text, "input") if b], last_block(text, "message")
    if len(inputs) >= num_inputs and message is not None:
        fields |= {"inputs": inputs[-num_inputs:], "message": message}
    if not fields:
        return Parsed(False, error="no ```python + ```input blocks, nor ```input blocks and a "
                                   "```message")
    return Parsed(True, fields)


def parse_solution(text: str) -> Parsed:
    """Whichever answer blocks the text has (```output, ```input, ```python), each the last."""
    found = {tag: last_block(text, tag) for tag in ("output", "input", "python")}
    found = {tag: body for tag, body in found.items() if body is not None}
    if not found:
        return Parsed(False, error="no ```output, ```input or ```python block")
    return Parsed(True, found)


class AzrMode(Mode):
    name = "azr"
    version = 0
    roles = ("proposer", "solver")
    Config = AzrConfig
    single_policy = True
    embedded_model = "tiny-code"
    recipe = Recipe(stages=(("proposer", "solver"),), schedule="joint", algorithm="azr")
    """AZR trains both roles of one policy on every step, with TRR++ (no KL)."""

    @property
    def executor(self) -> Executor:
        c = self.config
        return Executor(timeout_s=c.timeout_s, memory_mb=c.memory_mb, isolation=c.isolation)

    def default_task(self) -> ProgramBuffer:
        return ProgramBuffer(task_types=self.config.task_types,
                             num_references=self.config.num_references)

    def task_from(self, source: Any) -> Any:
        if not isinstance(source, ProgramBuffer):
            raise ValueError(f"mode 'azr' plays a ProgramBuffer (selfplay_gym.envs.tasks."
                             f"programs), got {type(source).__name__}; drop --task, or pass a "
                             "ProgramBuffer seeded with your own triplets")
        return source

    def solvers(self) -> tuple[str, ...]:
        return tuple(f"solver_{i}" for i in range(self.config.num_solvers))

    def agents(self) -> tuple[str, ...]:
        return ("proposer_0", *self.solvers())

    def next_phase(self, episode: Episode) -> tuple[str, ...]:
        fields = episode.fields
        if "proposal_valid" not in fields:
            return ("proposer_0",)
        if fields["proposal_valid"] and "correct" not in fields:
            return self.solvers()
        return ()

    # --- prompts ---------------------------------------------------------------------------
    def observe(self, agent: str, episode: Episode) -> Messages:
        task_type, fields = episode.task["task_type"], episode.fields
        if role_of(agent) == "proposer":
            user = proposer_user(task_type, episode.task["references"], self.config.num_inputs)
            return ({"role": "system", "content": PROPOSER_SYSTEM}, {"role": "user", "content": user})
        if not fields.get("proposal_valid"):
            return ()
        return solver_messages(task_type, fields)

    # --- parsing ---------------------------------------------------------------------------
    def parse(self, role: str, text: str) -> Parsed:
        if role == "proposer":
            return parse_proposal(text, self.config.num_inputs)
        return parse_solution(text)

    def record(self, turn: Turn, episode: Episode) -> None:
        fields, task_type = episode.fields, episode.task["task_type"]
        if turn.role == "proposer":
            fields["proposal"] = dict(turn.parsed) if turn.valid else None
            return
        answers = fields.setdefault("answers", [None] * self.config.num_solvers)
        answers[agent_index(turn.agent)] = turn.parsed.get(ANSWER_BLOCK[task_type])

    def end_phase(self, agents, episode: Episode) -> None:
        if agents and role_of(agents[0]) == "proposer":
            self._validate(episode)
        elif agents:
            self._grade(episode)

    def _validate(self, episode: Episode) -> None:
        """Run the proposal twice (determinism) and derive the solvers' task from it."""
        fields, task_type = episode.fields, episode.task["task_type"]
        proposal = fields.get("proposal") or {}
        if task_type == "induction":
            program = episode.task["references"][0]["program"]
            inputs = proposal.get("inputs")
        else:
            program = proposal.get("program")
            inputs = [proposal["input"]] if "input" in proposal else None
        error = self._proposal_problem(program, inputs)
        if error is None:
            first, second = self.executor.outputs([(program, inputs), (program, inputs)])
            if first is None or any(v is None or not literal(v)[0] for v in first):
                error = "the program does not return a literal on every input"
            elif first != second:
                error = "the program is not deterministic (two runs differ)"
        fields["proposal_valid"], fields["proposal_error"] = error is None, error
        if error is not None:
            return
        if task_type == "induction":
            half = len(inputs) // 2
            fields |= {"program": program, "inputs": inputs, "outputs": first,
                       "message": proposal["message"], "given_inputs": inputs[:half],
                       "given_outputs": first[:half], "hidden_inputs": inputs[half:],
                       "hidden_outputs": first[half:]}
        else:
            fields |= {"program": program, "input": inputs[0], "output": first[0]}
            fields["triplet"] = {"program": program, "input": inputs[0], "output": first[0]}

    def _proposal_problem(self, program: str | None, inputs: list | None) -> str | None:
        if program is None or not inputs:
            return "the proposal lacks the blocks its task type needs"
        if not defines_f(program):
            return "the program does not parse or defines no function f"
        word = banned_word(program, self.config.banned_words)
        return None if word is None else f"the program uses the banned word {word!r}"

    def _grade(self, episode: Episode) -> None:
        """Each solver's answer through the executor; the same answer is run once."""
        fields, task_type = episode.fields, episode.task["task_type"]
        answers = fields.get("answers", [None] * self.config.num_solvers)
        distinct = sorted({a for a in answers if a is not None})
        if task_type == "deduction":
            verdicts = {a: same_value(a, fields["output"]) for a in distinct}
        elif task_type == "abduction":
            runs = self.executor.outputs([(fields["program"], [a]) for a in distinct])
            verdicts = {a: out is not None and same_value(out[0], fields["output"])
                        for a, out in zip(distinct, runs, strict=True)}
        else:
            runs = self.executor.outputs([(a, fields["hidden_inputs"]) for a in distinct])
            verdicts = {a: out is not None and all(
                same_value(o, ref) for o, ref in zip(out, fields["hidden_outputs"], strict=True))
                for a, out in zip(distinct, runs, strict=True)}
        fields["correct"] = [a is not None and verdicts[a] for a in answers]
        fields["solve_rate"] = sum(fields["correct"]) / len(answers)

    # --- rewards ---------------------------------------------------------------------------
    def reward_functions(self) -> dict[str, RewardFn]:
        return {"proposer": self.proposer_reward, "solver": self.solver_reward}

    def proposer_reward(self, episode: Episode, agent: str) -> float:
        fields = episode.fields
        valid = bool(fields.get("proposal_valid"))
        score = learnability_reward(fields["solve_rate"]) if valid and "solve_rate" in fields else 0.0
        if not self.config.format_rewards:
            return score
        return composite_reward(score, valid, self.config.wrong_reward, self.config.format_penalty)

    def solver_reward(self, episode: Episode, agent: str) -> float:
        fields = episode.fields
        if "correct" not in fields:
            return 0.0
        index = agent_index(agent)
        score = solve_reward(fields["correct"][index])
        if not self.config.format_rewards:
            return score
        well_formed = fields["answers"][index] is not None
        return composite_reward(score, well_formed, self.config.wrong_reward,
                                self.config.format_penalty)

    # --- grouping and infos ----------------------------------------------------------------
    def group_id(self, agent: str, episode: Episode, messages: Messages) -> str:
        role = role_of(agent)
        if self.config.advantage_groups == "task_role":
            return task_relative_group(role, episode.task["task_type"])
        if role == "solver":
            return f"solver:{episode.episode_id}"
        return super().group_id(agent, episode, messages)

    def info(self, agent: str, episode: Episode) -> dict:
        """All fields for the proposer; a solver's info hides the answer it must find."""
        info = {"task_type": episode.task["task_type"], **episode.fields}
        if role_of(agent) == "solver":
            return {k: v for k, v in info.items() if k not in HIDDEN}
        return info

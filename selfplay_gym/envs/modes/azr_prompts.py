"""The ``azr`` mode's prompts: a proposer's brief per task type, and what each solver sees.

Written after AZR's prompts (data_construction/prompts.py): the proposer sees K reference
triplets and must write something new; answers go in fenced blocks (```` ```python ````,
```` ```input ````, ```` ```output ````, ```` ```message ````), the blocks the code extracts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

PROPOSER_SYSTEM = (
    "You write Python tasks for a reasoning game against yourself. A program defines one "
    "deterministic function f: no randomness, no time, no files, no printing. Inputs are the "
    "arguments of f written as Python literals."
)
PROPOSE = {
    "deduction": ("Write a new program, different from the references, and an input for it, "
                  "such that predicting the output is hard but possible. Reply with a "
                  "```python block and an ```input block."),
    "abduction": ("Write a new program, different from the references, and an input for it, "
                  "such that finding an input from the output is hard but possible. Reply with "
                  "a ```python block and an ```input block."),
    "induction": ("Write {n} different inputs for the program below, and a short message that "
                  "hints at what it does, so that someone who sees half of the input/output "
                  "pairs can write the program. Reply with {n} ```input blocks and one "
                  "```message block."),
}
SOLVER_SYSTEM = "You solve Python reasoning tasks. Reply with the requested block only."
SOLVE = {
    "deduction": "What does f return for this input? Reply with the output, a Python literal, "
                 "in an ```output block.",
    "abduction": "Which input makes f return this output? Reply with the arguments of f, as "
                 "Python literals, in an ```input block.",
    "induction": "Write the function f that maps each input to its output. Reply with the "
                 "program in a ```python block.",
}


def fenced(tag: str, body: str) -> str:
    return f"```{tag}\n{body}\n```"


def triplet_text(triplet: Mapping[str, str]) -> str:
    return "\n".join((fenced("python", triplet["program"].rstrip("\n")),
                      fenced("input", triplet["input"]), fenced("output", triplet["output"])))


def solver_messages(task_type: str, fields: Mapping) -> tuple[dict[str, str], dict[str, str]]:
    """A solver's chat: the system prompt, then the task built from the episode's fields."""
    return ({"role": "system", "content": SOLVER_SYSTEM},
            {"role": "user", "content": solver_user(task_type, fields)})


def proposer_user(task_type: str, references: Sequence[Mapping[str, str]], num_inputs: int) -> str:
    if task_type == "induction":
        program = references[0]["program"].rstrip("\n")
        return f"{PROPOSE['induction'].format(n=num_inputs)}\n\n{fenced('python', program)}"
    shown = "\n\n".join(triplet_text(t) for t in references)
    return f"{PROPOSE[task_type]}\n\nReferences:\n\n{shown}"


def solver_user(task_type: str, fields: Mapping) -> str:
    if task_type == "deduction":
        body = "\n".join((fenced("python", fields["program"].rstrip("\n")),
                          fenced("input", fields["input"])))
    elif task_type == "abduction":
        body = "\n".join((fenced("python", fields["program"].rstrip("\n")),
                          fenced("output", fields["output"])))
    else:
        pairs = "\n".join(f"{fenced('input', i)}\n{fenced('output', o)}"
                          for i, o in zip(fields["given_inputs"], fields["given_outputs"],
                                          strict=True))
        body = f"Hint: {fields['message']}\n\n{pairs}"
    return f"{SOLVE[task_type]}\n\n{body}"

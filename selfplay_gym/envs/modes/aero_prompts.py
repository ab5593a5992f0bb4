"""AERO's prompts (synth/prompt_template.txt, answerer.py, answer_analyzer.py), adapted to a task
domain; the mode formats them with the question, answers and candidate solution."""

GENERATOR_SYSTEM = (
    "You are a distinguished professor and an expert designer of competition problems in "
    "{domain}. Write ONE new problem of medium-to-hard difficulty that needs several steps of "
    "reasoning and has a single, clean, checkable final answer (an integer, a simple fraction "
    "or a short exact expression). Vary the topic from one problem to the next.\n"
    "Output strict JSON only, with no Markdown fences and no text outside the object:\n"
    '{{"question": "the complete problem statement", "meta": {{"knowledge_points": ["..."], '
    '"domain": "...", "background": "one or two sentences of context"}}}}'
)
GENERATOR_USER = "Write the problem now."
SOLVER_SYSTEM = (
    "You are a senior research fellow writing a gold-standard solution. Follow this structure:\n"
    "1. Analysis: what is asked and which ideas apply.\n2. Symbols: the given quantities and "
    "the unknowns.\n3. Derivation: the reasoning step by step, symbolically before "
    "numerically.\n4. Computation: careful arithmetic.\n5. Final answer: state it once as "
    "\\boxed{answer}."
)
JUDGE_SYSTEM = (
    "You check whether final answers to one problem state the same value. Consider "
    "simplification, equivalent forms (0.5 = 1/2), scientific notation and units."
)
JUDGE_USER = (
    "Problem:\n{question}\n\nAnswers:\n{answers}\n\nGroup the numbers of the answers that are "
    'equivalent. Reply with strict JSON only, for example {{"same": [[1, 3], [2]]}}: each inner '
    "list holds answers with the same value; list every number once."
)
REFINER_SYSTEM = (
    "You are a rigorous reviewer. The candidate solution below is suspected to be WRONG: assume "
    "it contains an error. Find the flawed step and say briefly why it is wrong, then re-solve "
    "the problem from first principles without trusting the candidate's conclusion. End with "
    "the corrected final answer as \\boxed{answer}."
)
REFINER_USER = (
    "### Problem\n{question}\n\n### Suspected Incorrect Solution\n{candidate}\n\n"
    "### Your Correction\n"
)

"""DARC's prompts (examples/format_prompt/questioner.jinja, vllm_service_init/): the
Questioner's difficulty-aware JSON task, the Solver's with and without the document, and the
relatedness judge's."""

DEFINITIONS = {
    1: "Easy: uses 1-2 spans; 1-2 reasoning steps; simple inference or transformation.",
    2: "Moderate: uses at least 2 distinct spans; 2-3 reasoning steps; combines multiple facts.",
    3: "Hard: uses 3+ distant spans across the document; 5+ reasoning steps; requires global "
       "synthesis, constrained reasoning, or multi-stage calculations.",
}
ANSWER_RULES = {
    "integer": "a JSON integer", "float": "a JSON number with a decimal point",
    "categorical": "one option letter as a JSON string; list at least 3 options in the "
                   "question, one per line, as 'A. ...', 'B. ...', 'C. ...'",
    "boolean": 'the JSON string "true" or "false"', "string": "one to three words",
    "expression": "a short mathematical expression as a JSON string",
}
EXAMPLE = {
    "analysis": "Easy: one fact (23 coins, exactly one counterfeit), one subtraction step.",
    "question": "A collection contains 23 coins. Exactly one of them is counterfeit. "
                "How many of the coins are genuine?",
    "intermediate_results": {"step1_count_genuine": "23 - 1 = 22 genuine coins."},
    "answer": 22, "solving_time_estimate": 1,
    "required_concepts": ["Basic counting", "Subtraction"],
    "potential_errors": ["Subtracting more than one coin"],
}
MCQ_EXAMPLE = EXAMPLE | {"question": EXAMPLE["question"] + "\nA. 21\nB. 22\nC. 23\nD. 24",
                         "answer": "B"}
QUESTIONER_PROMPT = """Your task is to generate a single self-contained question and its correct \
answer inspired by the given document. The question must strictly satisfy both the difficulty \
level and the answer_type constraints. Output exactly one JSON object; all reasoning goes in \
its "analysis" field.

## Document
[BEGIN]
{document}
[END]

## Difficulty Level
difficulty_id: {difficulty}. Follow this operational definition: {definition}

## Answer Type
answer_type: {answer_type}. The "answer" field must be {answer_rule}.

## Core Requirements for the Question
1. Inspired by the document, but self-contained: understandable by someone who sees only it.
2. Never mention "the document" or "the text"; define every variable in the question itself.
3. Its reasoning steps and the spans it combines must match the difficulty level.
4. The answer must be unique, unambiguous and consistent with the document.
5. Don't copy the question from the document.

## Output Format (STRICT)
Exactly one JSON object with exactly these keys: "analysis" (string), "question" (string), \
"intermediate_results" (object), "answer", "solving_time_estimate" (number, minutes), \
"required_concepts" (array of strings), "potential_errors" (array of strings).

## Example (structure only; do not copy)
{example}"""
SOLVER_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
CATEGORICAL_INSTRUCTION = ("\nPlease reason step by step, and put your final answer option within "
                           "\\boxed{}. Only put the letter in the box, e.g. \\boxed{A}. There is "
                           "only one correct answer.")
CONTEXT_USER = ("Read the following context and answer the question.\n\n"
                "Context:\n{document}\n\nQuestion: {question}")
JUDGE_SYSTEM = "You are a precise judge. Reply with yes or no only."
JUDGE_USER = ("Do you think this question `{question}` is related to the following text:"
              "{document}\n\nReturn with yes or no, no other text.")

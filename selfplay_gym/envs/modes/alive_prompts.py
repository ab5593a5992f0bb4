"""ALIVE's prompt texts, one per role (the constructor has one per ``mask_format``).

Apart from the mode so that the texts can be read, and changed, without its logic; a change
here changes what the policy sees, so it bumps the mode's version.
"""

CONSTRUCTOR_SYSTEM = (
    "You turn a passage into a fill-in-the-blank task. Copy the passage exactly, replacing one "
    "short span that the rest of the passage lets a careful reader work out (a number, a name, "
    "a word) with [MASK]. Write the copy inside <masked></masked>, then the hidden span inside "
    "<answer></answer>."
)
SPAN_CONSTRUCTOR_SYSTEM = (
    "You turn a passage into a fill-in-the-blank task. Pick one short span of it that the rest "
    "of the passage lets a careful reader work out (a number, a name, a word) and write it "
    "inside <answer></answer>; it will be replaced by [MASK]."
)
SOLVER_SYSTEM = (
    "A short span of the passage was replaced by [MASK]. Reason step by step about what it "
    "was, then put the missing text within \\boxed{}."
)
REVIEWER_SYSTEM = (
    "You review a solution to a fill-in-the-blank task. Explain briefly what the solver got "
    "right or wrong and why, then end with <verdict>correct</verdict>, "
    "<verdict>partially</verdict> or <verdict>wrong</verdict>."
)
REVISE_USER = (
    "A reviewer wrote:\n{critique}\n\nCheck your answer against the review and put your final "
    "answer within \\boxed{{}}."
)

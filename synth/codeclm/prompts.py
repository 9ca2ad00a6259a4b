"""CodecLM's prompts (Wang et al. 2024, arXiv 2404.05875, appendix), as chat messages.

Paraphrased with the paper's structure: the encoder is an "instruction analyzer" with
three demonstrations; the decoder an "instruction writer" with none (the paper avoids
demonstrations so the decoder does not copy them); Self-Rubrics an "instruction judge with
domain expertise" and an "instruction improver"; the contrastive judge is Vicuna's pairwise
prompt asking for one line of two 1-10 scores and no explanation. Pure functions: they
build text, the stages send it.
"""
from __future__ import annotations

from collections.abc import Sequence

Chat = list[dict[str, str]]

ENCODE_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    ("Write a Python function that checks whether a string is a palindrome.", "code generation", "python, string manipulation"),
    ("Pretend you are a pirate captain and greet your new crew.", "creative writing", "role-play, pirate slang"),
    ("My landlord kept my deposit without a reason. What can I do?", "legal advice", "tenant law, dispute resolution"),
)

ENCODE_HEAD = (
    "I want you to act as an instruction analyzer. Given an instruction, recognize its use case "
    "and the skills a large language model needs to respond to it. Give the use case and the skills "
    "without any explanation. List at most 3 skills; each skill must be transferable, so that it "
    "helps answer similar instructions, and concise (2-3 words). Never use the words \"skill\" or "
    "\"knowledge\" to describe a skill. Answer in exactly this format:\n"
    "Use case: <use case>\nSkills: <skill 1>, <skill 2>"
)

JUDGE_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."


def encode_chat(instruction: str) -> Chat:
    """The encoder's prompt for one seed instruction (three demonstrations, then the seed)."""
    shots = "\n\n".join(f"Instruction: {ins}\nUse case: {uc}\nSkills: {sk}" for ins, uc, sk in ENCODE_EXAMPLES)
    return [{"role": "user", "content": f"{ENCODE_HEAD}\n\n{shots}\n\nInstruction: {instruction}"}]


def _metadata_lines(use_case: str, skills: Sequence[str]) -> str:
    return f"Use case of the instructions: {use_case}\nSkills required to respond to the instructions: {', '.join(skills)}"


def decode_chat(use_case: str, skills: Sequence[str], n: int) -> Chat:
    """The decoder's zero-shot prompt: write ``n`` diverse instructions for one metadata."""
    what = "an instruction" if n == 1 else f"{n} diverse instructions"
    body = (
        f"I want you to act as an instruction writer. Your goal is to write {what} for the use case "
        "below, each one requiring the listed skills to respond to it. Write only the instructions, "
        "as a numbered list (1., 2., ...), without answering them.\n\n"
        f"{_metadata_lines(use_case, skills)}"
    )
    return [{"role": "user", "content": body}]


def rubrics_chat(use_case: str, skills: Sequence[str], n: int = 4) -> Chat:
    """Self-Rubrics: ``n`` rubrics for what makes such an instruction hard, ``n`` matching actions."""
    body = (
        "I want you to act as an instruction judge with domain expertise. For the use case and skills "
        f"below, write {n} rubrics that judge how challenging an instruction of this kind is, and {n} "
        "actions, one per rubric, that make an instruction more challenging by that rubric (for example "
        "adding a constraint, or requiring reasoning in several steps). Number them, without any "
        "explanation, in exactly this format:\nRubrics:\n1. ...\nActions:\n1. ...\n\n"
        f"{_metadata_lines(use_case, skills)}"
    )
    return [{"role": "user", "content": body}]


def improve_chat(action: str, instruction: str) -> Chat:
    """The instruction improver: rewrite ``instruction`` with one Self-Rubrics action."""
    body = (
        "I want you to act as an instruction improver with domain expertise. Rewrite the input "
        "instruction so that it follows the improving action and becomes more challenging, while it "
        "stays a single instruction a user could ask. Do not answer it. Write the result after "
        "\"Improved instruction:\".\n\n"
        f"Improving action: {action}\nInput instruction: {instruction}"
    )
    return [{"role": "user", "content": body}]


def judge_chat(question: str, answer_1: str, answer_2: str) -> Chat:
    """Vicuna's pairwise judge prompt, with CodecLM's single-line, no-explanation output."""
    body = (
        f"[Question]\n{question}\n\n"
        f"[The Start of Assistant 1's Answer]\n{answer_1}\n[The End of Assistant 1's Answer]\n\n"
        f"[The Start of Assistant 2's Answer]\n{answer_2}\n[The End of Assistant 2's Answer]\n\n"
        "[System]\nWe would like to request your feedback on the performance of two AI assistants in "
        "response to the user question displayed above.\nPlease rate the helpfulness, relevance, "
        "accuracy, and level of detail of their responses. Each assistant receives an overall score on "
        "a scale of 1 to 10, where a higher score indicates better overall performance.\nPlease output "
        "a single line containing only two values indicating the scores for Assistant 1 and 2, "
        "respectively. The two scores are separated by a space. Do not explain."
    )
    return [{"role": "system", "content": JUDGE_SYSTEM}, {"role": "user", "content": body}]


def sanity_chat(use_case: str, skills: Sequence[str]) -> Chat:
    """Is a mixed (use case, skills) pair reasonable? The paper removed bad pairs by hand."""
    body = (
        "Could a realistic user instruction for the use case below require all of the listed skills "
        "to respond to it? Answer with one word, yes or no.\n\n"
        f"{_metadata_lines(use_case, skills)}"
    )
    return [{"role": "user", "content": body}]

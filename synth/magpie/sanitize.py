"""Clean-up rules for Magpie's sampled user queries.

Without an early stop at the first newline, a model asked to write a user query often keeps
going: it numbers the query, prefixes it with ``Task:``/``Question:``, or starts answering it
(``Answer:``, ``## Step 1``). Magpie's ``instruction_post_process`` (``exp/str_utils.py`` in
magpie-align/magpie, used with ``--sanitize`` for Llama-3.1/3.3 and Gemma-2) cuts those away
and records which rule fired (``instruction_sanitize_class_num``). This module is a pure
re-implementation plus the small checks the Magpie filters use.

Two reference bugs are fixed (tests name them):

* the answer-marker regex appended ``s?:`` to markers that already end in ``:``, so ``Answer:``
  only matched ``Answer::``; here the markers are written without the colon;
* the ``<b>`` rule (class 3) discarded its own first-line cut; here the first line is kept.

Class numbers are floats as in the reference (``2.1``, ``6.2``, ``99.1``); ``0.0`` means untouched.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["first_line", "leaked_template", "looks_incomplete", "sanitize_instruction"]

_PREFIX_WORDS = (
    "Task", "Prompt", "Original Prompt", "Question", "The Problem", "Problem", "Scenario",
    "The senario", "Situation", "The situation", "Context", "Challenge", "Query", "Request",
    "Instructions", "Instruction", "Descriptions", "Description",
)


def _prefix_pattern() -> re.Pattern[str]:
    variants = []
    for word in _PREFIX_WORDS:
        variants += [f"{word}:", f"**{word}**", f"## {word}:"]
    parts = [re.escape(v) for v in variants] + [r"Question \d+:", r"Question \d+\.", r"Part \d+:", r"Q\d+\.", r"Q\d+:"]
    return re.compile(rf"^({'|'.join(parts)})\s*", re.IGNORECASE)


_PREFIX = _prefix_pattern()
_NUMBERING = re.compile(r"^(\d+\.|\w+\))\s*")
# Case-sensitive on purpose, as in the reference: "answer:" inside a sentence is left alone.
_ANSWER_MARKERS = ("Answer", "Answers", "The answer is", "Correct answer", "The correct answer",
                   "Answer is", "Explanation", "Here are some", "Solution Approach", "Solution")
_ANSWER = re.compile(r"(?:" + "|".join(re.escape(m) for m in _ANSWER_MARKERS) + r")s?:")
_STEP = re.compile(r"(?:# Step 1|## Step 1|### Step 1):?")


def _remove_prefix(text: str) -> str:
    """Drop leading numbering (``1.``, ``a)``) and one label such as ``Task:`` or ``**Question**``."""
    text = _NUMBERING.sub("", text).strip()
    m = _PREFIX.match(text)
    return text[m.end():].strip() if m else text


def _unbold(text: str) -> str:
    # Reference quirk kept: "**" is removed only when it sits at index 1 (e.g. '"**Title**...').
    text = text.strip()
    return text.replace("**", "").strip() if text.find("**") == 1 else text


def _family(family: str) -> str:
    f = family.lower()
    if f in ("none", "off", "raw"):
        return "none"
    if "gemma-2" in f or "gemma2" in f:
        return "gemma-2"
    if "llama-3" in f or "llama3" in f:
        return "llama-3"
    return "generic"


def sanitize_instruction(text: str, family: str = "generic") -> tuple[str, float]:
    """Clean a sampled Magpie query; return ``(instruction, sanitize_class)``.

    Parameters
    ----------
    text
        The raw sampled query (generated without the newline early stop).
    family
        ``"llama-3"`` (also adds the ``# Step 1`` cut, class 5), ``"gemma-2"``, ``"generic"``
        (the Gemma-2 rule set, which names no model-specific marker) or ``"none"`` (returned
        unchanged, class 0.0, as the reference does for other models). A model path works too:
        ``"meta-llama/Llama-3.1-8B-Instruct"`` selects ``llama-3``, as in the reference.

    Examples
    --------
    >>> sanitize_instruction("Question: What is 2+2? Answer: 4", "llama-3")
    ('What is 2+2?', 4.0)
    """
    fam = _family(family)
    if fam == "none":
        return text, 0.0
    llama = fam == "llama-3"
    instruction = _remove_prefix(text)
    if instruction.startswith("*") and "?" in instruction:
        return _remove_prefix(instruction.split("?")[0].replace("*", "").strip() + "?"), 1.0

    instruction = _remove_prefix(instruction)
    # Searched after the second prefix removal, so the cut offsets fit the string they cut (the
    # reference searched one step earlier; they differ only for doubled labels "Task: Question:").
    answer = _ANSWER.search(instruction)
    step = _STEP.search(instruction) if llama else None
    first = instruction.split("\n")[0].strip()
    if instruction.startswith('"'):
        if "?" in instruction:
            instruction, cls = instruction.split("?")[0].replace('"', "").strip() + "?", 2.1
        else:
            instruction, cls = first.replace('"', "").replace("*", "").strip(), 2.2
    elif instruction.startswith("<b>"):
        # Fixed reference bug: the first-line cut was computed and thrown away.
        instruction, cls = first.replace("</b>", "").replace("<b>", "").replace("*", "").strip(), 3.0
    elif answer:
        instruction, cls = _unbold(instruction[: answer.start()]), 4.0
    elif step:
        instruction, cls = _unbold(instruction[: step.start()]), 5.0
    elif first.endswith(":"):
        base = 6.0 if llama else 5.0
        if "#" in instruction:
            instruction, cls = _unbold(instruction.split("#")[0]), base + 0.1
        elif "?" in instruction:
            instruction, cls = _unbold(instruction.split("?")[0].strip() + "?"), base + 0.2
        else:
            instruction, cls = first.replace("*", "").strip(), base + 0.3
    else:
        base = 99.0 if llama else 6.0
        if "?" in instruction:
            instruction, cls = _unbold(instruction.split("?")[0].strip() + "?"), base + 0.1
        else:
            instruction, cls = first.replace("*", "").strip(), base + 0.2
    return _remove_prefix(instruction), round(cls, 1)


def first_line(text: str) -> str:
    """The query as Magpie's default early stop keeps it: text before the first newline, stripped.

    Same result as sampling with ``"\\n"`` as a stop string, applied after the fact.

    >>> first_line("How do I sort a list?\\nSure! Here is how")
    'How do I sort a list?'
    """
    return text.split("\n", 1)[0].strip()


def looks_incomplete(text: str) -> bool:
    """True when the query ends with ``:``; Magpie's filtered sets drop these as unfinished.

    >>> looks_incomplete("Here is my code:")
    True
    """
    return text.rstrip().endswith(":")


# A role word leaks as a header: alone on its line, or glued to the query's last punctuation
# ("...?assistant\n\n" is Llama-3's header with the special tokens skipped), then a line end.
_ROLE_LINE = r"(?:(?:^|\n)[ \t]*|(?<=[^\w\s]))(?:{words}):?[ \t]*(?:\n|$)"


def leaked_template(text: str, stop_strings: Iterable[str]) -> bool:
    """True when template tokens or a bare role header leaked into a sampled query.

    Special-token strings (``<|eot_id|>``, ``[INST]``) count anywhere. Plain role words
    (``assistant``) count only as a header: alone on a line, or glued to punctuation and followed
    by a line end (Llama-3 decoded with special tokens skipped), so a query that merely
    mentions an assistant is not flagged.

    >>> leaked_template("What is AI?assistant\\n\\nAI is", ["<|eot_id|>", "assistant"])
    True
    >>> leaked_template("Can you be my assistant\\nfor today?", ["<|eot_id|>", "assistant"])
    False
    """
    words = []
    for s in stop_strings:
        if not s:
            continue
        if s.isalpha():
            words.append(re.escape(s))
        elif s.strip() and s in text:
            return True
    if words:
        return re.search(_ROLE_LINE.format(words="|".join(words)), text) is not None
    return False

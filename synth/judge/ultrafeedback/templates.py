"""UltraFeedback's judge prompts: the four aspect rubrics, the critique prompt, and the
principle system prompts the completion pool is sampled with (methods.md 3.1-3.3).

The *protocol* follows OpenBMB/UltraFeedback (``src/data_annotation/preference_templates.py``,
``annotate_critique.py``, ``comparison_data_generation/main.py`` at ``bf80fd4``) exactly:
the markdown layout (``# <aspect> Assessment``, a ``## Format`` example, ``## Annotation``
with ``<text i>`` tags), the per-text output blocks (``#### Output for Text i`` then
``Rating:``/``Rationale:``, with ``Type:`` first for truthfulness and helpfulness), the level
names of each 1-5 scale, the ``N/A`` option for honesty, the ``World Knowledge`` section, and
the critique's ``Overall Score: [1-10]`` tail. The rubric sentences and the principle prompts
are paraphrased here (the reference holds 11 wordings per principle; a few are enough for
the sampling to vary the wording); pass your own with ``principle_prompts=`` to use others.

The reference hard-codes four texts; here the number of texts is a parameter, so a pool of
five (Tulu 3's four plus one on-policy completion) or one text (rating completions alone,
against position bias) use the same rubric.

>>> print(render_aspect("honesty", "Name a prime.", ["2", "9"]).splitlines()[0])
# Honesty and Uncertainty Expression Assessment
>>> "<text 2> 9" in render_aspect("honesty", "Name a prime.", ["2", "9"])
True
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ASPECTS = ("instruction_following", "honesty", "truthfulness", "helpfulness")
TYPED_ASPECTS = ("truthfulness", "helpfulness")  # the reply gives a Type list before the rating
NA_ASPECTS = ("honesty",)  # "N/A" is a valid rating (creative writing)
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

_SYSTEM = """Your role is to evaluate text quality based on given criteria.
You'll receive an instructional description ("Instruction") and {count} text output{s} ("Text").
Understand and interpret instructions to evaluate effectively.
Provide annotations for each text with a rating and rationale.
{independent}"""

_RUBRICS = {
    "instruction_following": (
        "# Instruction Following Assessment",
        """Judge how closely the output matches what the instruction asks for: does it understand the task goal and keep to the restrictions?

**Instruction Components**: Task Goal (the outcome wanted), Restrictions (text styles, formats, required methods, etc).

**Scoring**: Rate outputs 1 to 5:
1. **Irrelevant**: Does not align with the instruction at all.
2. **Partial Focus**: Addresses only one aspect, and poorly.
3. **Partial Compliance**:
    - (1) Meets the goal or the restrictions, neglecting the other.
    - (2) Acknowledges both, with slight deviations.
4. **Almost There**: Close alignment, minor deviations.
5. **Comprehensive Compliance**: Fully aligned, meets every requirement.""",
    ),
    "honesty": (
        "# Honesty and Uncertainty Expression Assessment",
        """Judge how honestly the output conveys its confidence, and whether that confidence matches how correct it is.

- **Indicators of Uncertainty**:
    1. Weakeners: e.g., 'I guess,' 'probably.'
    2. Refusal to answer.
    3. Verbalized confidence scores: [0, 20] low; (20, 40] uncertain; (40, 60] moderate; (60, 80] leaning confident; (80, 100] high.
- **No expression of uncertainty indicates confidence.**

- **Response Correctness**: Agrees with the ground truth, or gives accurate content without fabrication.

**Scoring**: Rate outputs 1 to 5 (or "N/A"):
1. **Confidently Incorrect**: Confident, but entirely wrong.
2. **Confident with Significant Mistakes / Unconfident Incorrect**:
- Confident, with major errors.
- Unconfident, and entirely wrong.
3. **Uncertain / 'I Don't Know' / Subtle Mistakes**:
- Says 'I don't know' or declines.
- Confident, with minor errors.
- Unconfident, with significant mistakes.
4. **Correct but Uncertain / Expressed Subtle Mistakes**:
- Correct, but unconfident.
- Makes subtle mistakes and signals uncertainty without pinpointing where.
5. **Correct and Confident / Precisely Express Uncertainty**:
- Correct and confident.
- Makes mistakes, but acknowledges the minor errors precisely and flags the possible ones.
N/A. **Not Applicable**: For creative writing tasks.""",
    ),
    "truthfulness": (
        "# Truthfulness and Hallucination Assessment",
        """Judge whether the output gives accurate information without misleading or made-up details.

Assign numeric identifiers (or "None") from 1 to 3 for each type of hallucination found:
1. **Contradictory with the World (Factual Error)**: Entities, places, concepts or events that conflict with established knowledge.
2. **Contradictory with Instruction and Input**: The response departs from the instruction or input, adding facts not supported by them.
3. **Self-Contradictory / Logical Error**: The text contradicts itself or contains logical errors.

**Scoring**: Rate outputs 1 to 5 by the extent of hallucination:
1. **Completely Hallucinated**: Entirely unreliable because of hallucinations.
2. **Severe Hallucination**: Close to half is hallucinated, severe departure from the main points.
3. **Partial Hallucination / Misunderstanding**: Truthful overall, with a partial misunderstanding caused by hallucination.
4. **Insignificant Hallucination**: Mostly truthful; a slight hallucination that leaves the main points intact.
5. **No Hallucination**: Free of hallucinations.""",
    ),
    "helpfulness": (
        "# Informativeness / Helpfulness Assessment",
        """Judge whether the output fulfils the task objective with high-quality, correct and informative content.

Helpfulness is about **Overall Quality**: correctness and informativeness.

**Correctness**: Accurate computation, reasoning steps and outputs, without misunderstanding or fabrication.

Assign numeric identifiers (or "None") from 1 to 3 for each type of informativeness present:
1. **Clarity and Relevance**: The response relates to the task, and asks for clarification where needed.
2. **Useful and Comprehensive Information**: Gives relevant background, reasoning steps or detailed description.
3. **Not Lengthy, No Repetition**: Avoids verbosity and recycled content.

Score 1 to 5 by the extent of helpfulness, for both informativeness and correctness:
1. **Severely Incorrect**: Significant inaccuracies or fabricated content, even if comprehensive.
2. **Partially Incorrect**: Errors that may confuse, even though comprehensive information is present.
3. **Correct**: Accurate, and gives useful information that meets the task's requirements.
4. **Highly Informative**: Accurate and extensive, with valuable insights and detailed information.
5. **Outstandingly Helpful**: Accurate and in depth, with profound insights and comprehensive information.""",
    ),
}

_TYPE_HINT = {
    "truthfulness": 'List of numeric identifiers (or "None" if no hallucination observed) of hallucination types, separated by commas',
    "helpfulness": 'List of numeric identifiers (or "None") for informativeness type, separated by commas',
}
_WORLD_KNOWLEDGE_HINT = "[External world knowledge for this instruction. Not part of instruction, but external resource.]"
NO_WORLD_KNOWLEDGE = "No additional world knowledge for reference."  # the reference's text for sources without any

# -- critique (annotate_critique.py): a teacher's feedback, then "Overall Score: [1-10]" ----------
CRITIQUE_SYSTEM = "A chat between a curious user and an artificial intelligence expert. The expert gives helpful, specific, and concise answers to the user's questions."
_CRITIQUE = """Given my answer to an instruction, your role is to provide specific and constructive feedback for me. You should find the best way for me to learn from your feedback and improve my performance.

You should consider multiple aspects of my answer, including helpfulness, truthfulness, honesty, and to what extent the answer follows instructions.
---

### Instruction
{instruction}

### Answer
{completion}
---

Please act as a teacher and give specific, constructive feedback. Besides describing the weaknesses of the answer, give concrete suggestions that show me how to improve. Your suggestions should help me complete the instruction better, without adding requirements the instruction does not state. Aim to sharpen my critical thinking and accuracy. Never give the reference answer outright, and skip polite phrases. Reply only with concise feedback in chat style. Finally, score the overall quality of the answer from 1 to 10, where 1 is the worst and 10 is the best.

*Format*
### Feedback
[Your feedback]
Overall Score: [1-10]

---

### Feedback
"""

# -- principle system prompts for the completion pool (comparison_data_generation/main.py) ------
PRINCIPLE_PROMPTS: dict[str, tuple[str, ...]] = {
    "helpfulness": (
        "The assistant should give users accurate, relevant and current information, and make the content positive, interesting, engaging, educational and helpful.",
        "As an AI assistant, make sure the information you give is accurate, up to date and relevant. Offer thorough details that educate and engage the user.",
        "As an AI assistant, be a dependable and helpful source of information: check the facts and make sure they are current before you share them.",
        "As an AI assistant, inspire users with knowledgeable insights. Give content that is positive, interesting and engaging, so users find your help valuable.",
        "Keep every answer educational and engaging, so the user learns something new each time. You are an AI assistant, after all.",
    ),
    "honesty": (
        "The assistant should be honest about whether it knows the answer and state its uncertainty explicitly: confident on what it knows well, modest on what it does not. Use weakeners such as 'I guess', 'I suppose', 'probably' and 'perhaps' to express uncertainty, and answer 'I don't know' when necessary.",
        "As an AI, honesty builds your user's trust. If you are unsure of an answer, say so, or consult more resources (if available) before answering.",
        "You are an AI assistant that values honesty. If you do not know the answer to a question, admit it, and offer to find out more if needed.",
        "As an AI assistant, it is better to admit uncertainty or simply say 'I don't know' than to give possibly wrong information. Honesty earns trust.",
        "As an AI assistant, balance confidence with honesty and humility: if an answer is outside what you know, it is fine to say you don't know.",
    ),
    "truthfulness": (
        "The assistant should answer truthfully and stay faithful to factual knowledge and to the given context, never inventing facts that are untrue or not grounded in the instruction.",
        "As an AI assistant, answer truthfully. Keep to factual information and the context, and do not invent new, unverified facts.",
        "As an AI assistant, stick to the truth: give precise, factual information and avoid misinformation.",
        "As an AI assistant, keep your answers grounded in fact and free of anything misleading.",
        "As an AI assistant, base every answer on facts; avoid speculation and invented details.",
    ),
    # one prompt: the critique truncates it before "For instance, " (annotate_critique.py)
    "verbalized_calibration": (
        "The assistant should state its confidence as a scalar at the end of the response. The confidence level is the degree of certainty it has that its answer is correct, given as a percentage. For instance, a confidence level of 80% means the assistant is 80% sure that its answer is correct and thinks there is a 20% chance that it is wrong.\nThe format is as follows:\n[Question]\n[Answer]\nConfidence: [The assistant's confidence level, numerical numbers only, e.g. 80%]\nHere, tags like [Question] and [Answer] are placeholders and should be omitted in the response.\n",
    ),
}

# Per-source principle mixtures (main.py): each completion draws a principle from the list,
# and "honesty" then becomes "verbalized_calibration" with probability 0.1. So
# sharegpt/ultrachat give 60% helpfulness, 20% truthfulness, 18% honesty, 2% calibration.
SOURCE_PRINCIPLES: dict[str, tuple[str, ...]] = {
    "sharegpt": ("helpfulness", "helpfulness", "helpfulness", "truthfulness", "honesty"),
    "ultrachat": ("helpfulness", "helpfulness", "helpfulness", "truthfulness", "honesty"),
    "flan": ("helpfulness", "helpfulness", "helpfulness", "helpfulness", "verbalized_calibration"),
    "evol_instruct": ("helpfulness",),
    "truthful_qa": ("honesty", "truthfulness"),
    "false_qa": ("honesty", "truthfulness"),
}
HONESTY_TO_CALIBRATION = 0.1


def count_word(n: int) -> str:
    """``four`` for 4, as the reference's system prompt says; digits past ten.

    >>> count_word(4), count_word(12)
    ('four', '12')
    """
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def system_prompt(n: int) -> str:
    """The judge's system prompt for ``n`` texts (the reference's wording for four).

    >>> print(system_prompt(1).splitlines()[1])
    You'll receive an instructional description ("Instruction") and one text output ("Text").
    """
    independent = f"The {count_word(n)} texts given are independent, and should be evaluated separately." if n > 1 else "Evaluate the text on its own."
    return _SYSTEM.format(count=count_word(n), s="s" if n != 1 else "", independent=independent)


def _output_block(aspect: str, i: int, first: bool) -> str:
    rating = f"Rating: [Rating for text {i}]" if first else "Rating: [Rating]"
    rationale = "Rationale: [Rationale for the rating in short sentences]" if first else "Rationale: [Rationale]"
    if aspect in TYPED_ASPECTS:
        typ = f"Type: [{_TYPE_HINT[aspect]}]" if first else "Type: [List of types]"
        why = "Rationale: [Rationale for the identification in short sentences]" if first else "Rationale: [Rationale]"
        return f"#### Output for Text {i}\n{typ}\n{why}\n{rating}\n{rationale}"
    return f"#### Output for Text {i}\n{rating}\n{rationale}"


def render_aspect(aspect: str, instruction: str, texts: Sequence[str], world_knowledge: str | None = None, *, json_reply: bool = False) -> str:
    """The user prompt that rates ``texts`` on one aspect, in the order given.

    Parameters
    ----------
    aspect
        One of :data:`ASPECTS`.
    instruction
        The prompt the texts answer.
    texts
        The completions, already in the (shuffled) order the judge sees them.
    world_knowledge
        Reference facts (TruthfulQA answers, a FLAN reference answer, "the question is based
        on a false premise"); adds the ``World Knowledge`` section for truthfulness and
        helpfulness (the reference's ``_with_answer`` templates). Other aspects ignore it.
    json_reply
        Ask for a JSON object instead of the text blocks (structured-output mode; the
        engine's JSON schema enforces it, this only tells the model).
    """
    if aspect not in _RUBRICS:
        msg = f"unknown aspect {aspect!r}; use one of {', '.join(ASPECTS)}"
        raise ValueError(msg)
    title, rubric = _RUBRICS[aspect]
    n = len(texts)
    wk = world_knowledge if aspect in TYPED_ASPECTS and world_knowledge else None
    parts = [title, "", rubric, "", "---", "", "## Format", "", "### Input", "Instruction: [Clearly specify the task goal and restrictions]", "", "Texts:" if n > 1 else "Text:"]
    parts += [f"<text {i}> [Text {i}]" for i in range(1, n + 1)]
    if wk is not None:
        parts += ["", "World Knowledge:", _WORLD_KNOWLEDGE_HINT]
    parts += ["", "### Output"]
    if json_reply:
        parts.append(json_reply_hint(aspect, n))
    else:
        parts.append("\n\n".join(_output_block(aspect, i, i == 1) for i in range(1, n + 1)))
    parts += ["", "---", "", "## Annotation", "", "### Input", f"Instruction: {instruction}", "", "Texts:" if n > 1 else "Text:"]
    parts += [f"<text {i}> {t}" for i, t in enumerate(texts, start=1)]
    if wk is not None:
        parts += ["", "World Knowledge:", wk]
    parts += ["", "### Output", ""]
    return "\n".join(parts)


def json_reply_hint(aspect: str, n: int) -> str:
    """What a structured-output reply looks like (the same fields as the text blocks)."""
    one = {"type": [1, 2], "type_rationale": "...", "rating": 4, "rationale": "..."} if aspect in TYPED_ASPECTS else {"rating": 4, "rationale": "..."}
    return f"A JSON object with one entry per text, in order ({n} in all): " + json.dumps({"annotations": [one]})


def aspect_schema(aspect: str, n: int, *, rationale_chars: int = 400) -> dict[str, Any]:
    """JSON schema for a structured-output reply rating ``n`` texts on ``aspect``.

    ``maxLength`` keeps the rationales short, so a reply fits ``max_tokens`` and closes its
    JSON (a truncated object would not parse). Honesty's rating may be the string ``"N/A"``.

    >>> s = aspect_schema("honesty", 2)
    >>> s["properties"]["annotations"]["minItems"], s["properties"]["annotations"]["items"]["properties"]["rating"]["anyOf"][1]
    (2, {'enum': ['N/A']})
    """
    rating: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": 5}
    if aspect in NA_ASPECTS:
        rating = {"anyOf": [rating, {"enum": ["N/A"]}]}
    props: dict[str, Any] = {"rating": rating, "rationale": {"type": "string", "maxLength": rationale_chars}}
    required = ["rating", "rationale"]
    if aspect in TYPED_ASPECTS:
        props = {"type": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 3}, "maxItems": 3}, "type_rationale": {"type": "string", "maxLength": rationale_chars}, **props}
        required = ["type", "type_rationale", *required]
    item = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
    return {"type": "object", "properties": {"annotations": {"type": "array", "items": item, "minItems": n, "maxItems": n}}, "required": ["annotations"], "additionalProperties": False}


def critique_note(principle: str, prompt: str) -> str:
    """The principle prompt as the critique sees it: verbalized calibration cut before
    ``For instance, `` (annotate_critique.py), so the judge is not told the example 80%.

    >>> critique_note("verbalized_calibration", PRINCIPLE_PROMPTS["verbalized_calibration"][0]).endswith("given as a percentage.")
    True
    """
    return prompt.split("For instance, ")[0].strip() if principle == "verbalized_calibration" else prompt


def render_critique(instruction: str, completion: str, *, principle: str = "", principle_prompt: str = "", critique: str | None = None, json_reply: bool = False) -> str:
    """The critique prompt for one completion.

    The instruction is followed by ``Note: <principle prompt>`` as in the reference, so the
    teacher judges the answer against the principle it was written under. With ``critique``
    the prompt carries the stored feedback and ends at ``Overall Score: `` (the 2023-12 fix
    asks for the score alone).

    >>> p = render_critique("Say hi.", "Hello!", principle="helpfulness", principle_prompt="Be helpful.")
    >>> "Say hi.\\nNote: Be helpful." in p and p.endswith("### Feedback\\n")
    True
    """
    if principle_prompt:
        instruction = "\n".join([instruction, "Note: " + critique_note(principle, principle_prompt)])
    text = _CRITIQUE.format(instruction=instruction, completion=completion)
    if critique is not None:
        return f"{text}{critique}\nOverall Score: \n"
    if json_reply:
        text = text.replace("*Format*\n### Feedback\n[Your feedback]\nOverall Score: [1-10]", "*Format*\n" + json.dumps({"feedback": "[Your feedback]", "overall_score": "[1-10]"}))
    return text


CRITIQUE_SCHEMA_CHARS = 600


def critique_schema(*, feedback_chars: int = CRITIQUE_SCHEMA_CHARS) -> dict[str, Any]:
    """JSON schema for a structured-output critique: feedback text and an integer 1-10."""
    return {
        "type": "object",
        "properties": {"feedback": {"type": "string", "maxLength": feedback_chars}, "overall_score": {"type": "integer", "minimum": 1, "maximum": 10}},
        "required": ["feedback", "overall_score"],
        "additionalProperties": False,
    }


def load_principle_prompts(spec: str | Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    """The principle prompts to sample from: the built-in ones, a mapping, or a JSON/YAML
    file of ``{principle: [prompt, ...]}`` (e.g. the reference's 11 wordings each)."""
    if spec is None:
        return dict(PRINCIPLE_PROMPTS)
    if isinstance(spec, (str, Path)):
        import yaml

        from pipelines.errors import ConfigError

        p = Path(spec)
        if not p.is_file():
            msg = f"principle_prompts: no such file {p}"
            raise ConfigError(msg)
        spec = yaml.safe_load(p.read_text()) or {}
    out = {**PRINCIPLE_PROMPTS, **{str(k): tuple(str(x) for x in v) for k, v in dict(spec).items()}}
    return out


# -- regex-constrained replies: the reference's text format, enforced by the engine ----------
STRUCTURED = (False, "json", "regex")


def check_structured(value: object) -> str | bool:
    """``structured`` as given in a recipe: false, "json" (or true), "regex".

    >>> check_structured(True), check_structured("regex"), check_structured(False)
    ('json', 'regex', False)
    """
    from pipelines.errors import ConfigError

    if value is True:
        return "json"
    if value not in STRUCTURED:
        msg = f"structured must be false, 'json' (or true) or 'regex', got {value!r}"
        raise ConfigError(msg)
    return value  # type: ignore[return-value]


def aspect_regex(aspect: str, n: int, *, rationale_chars: int = 400) -> str:
    """A regex for a reply in the reference's exact text format (one line per rationale).

    Engines that constrain decoding by regex (vLLM's ``structured_outputs: {regex: ...}``)
    then always produce a reply the strict text parser accepts, with no JSON whitespace for
    a small model to loop in.

    >>> import re
    >>> bool(re.fullmatch(aspect_regex("honesty", 1), "#### Output for Text 1\\nRating: N/A\\nRationale: A poem."))
    True
    """
    line = f"[^\\n]{{1,{rationale_chars}}}"
    rating = "([1-5]|N/A)" if aspect in NA_ASPECTS else "[1-5]"
    blocks = []
    for i in range(1, n + 1):
        if aspect in TYPED_ASPECTS:
            blocks.append(f"#### Output for Text {i}\\nType: (None|[1-3](, [1-3]){{0,2}})\\nRationale: {line}\\nRating: {rating}\\nRationale: {line}")
        else:
            blocks.append(f"#### Output for Text {i}\\nRating: {rating}\\nRationale: {line}")
    return "\\n\\n".join(blocks)


def critique_regex(*, feedback_chars: int = CRITIQUE_SCHEMA_CHARS) -> str:
    """A regex for a critique reply: one line of feedback, then ``Overall Score: <1-10>``.

    >>> import re
    >>> bool(re.fullmatch(critique_regex(), "Add an example.\\nOverall Score: 10"))
    True
    """
    return f"[^\\n]{{1,{feedback_chars}}}\\nOverall Score: (10|[1-9])"

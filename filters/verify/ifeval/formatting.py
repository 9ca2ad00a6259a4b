"""IFEval ``detectable_format:*`` and ``detectable_content:*``: markdown-ish markup.

Every pattern is the reference's, compiled once here; counts stop as soon as the
threshold is reached.
"""
from __future__ import annotations

import json
import re

from filters.verify.ifeval.kwargs import count, keyword_regex, string

__all__ = [
    "check_constrained_response",
    "check_json_format",
    "check_multiple_sections",
    "check_number_bullet_lists",
    "check_number_highlighted_sections",
    "check_number_placeholders",
    "check_postscript",
    "check_title",
]

# Two bullet styles; note that ``^\s*`` may run over blank lines (MULTILINE).
_STAR_BULLET_RE = re.compile(r"^\s*\*[^\*].*$", re.MULTILINE)
_DASH_BULLET_RE = re.compile(r"^\s*-.*$", re.MULTILINE)
_HIGHLIGHT_RE = re.compile(r"\*([^\n\*]*)\*")
_DOUBLE_HIGHLIGHT_RE = re.compile(r"\*\*([^\n\*]*)\*\*")
_PLACEHOLDER_RE = re.compile(r"\[.*?\]")
_TITLE_RE = re.compile(r"<<[^\n]+>>")
_PPS_RE = re.compile(r"\s*p\.\s?p\.\s?s.*$", re.MULTILINE)
_PS_RE = re.compile(r"\s*p\.\s?s\..*$", re.MULTILINE)
_CONSTRAINED_OPTIONS = ("My answer is yes.", "My answer is no.", "My answer is maybe.")


def check_number_bullet_lists(response: str, *, prompt: str = "", num_bullets: int) -> bool:
    """``detectable_format:number_bullet_lists``: exactly n lines that start with ``*``
    (not ``**``) or ``-``.

    >>> check_number_bullet_lists("* a\\n* b\\n- c", num_bullets=3)
    True
    """
    n = len(_STAR_BULLET_RE.findall(response)) + len(_DASH_BULLET_RE.findall(response))
    return n == count(num_bullets, "num_bullets")


def check_constrained_response(response: str, *, prompt: str = "") -> bool:
    """``detectable_format:constrained_response``: contains "My answer is yes." / "no." /
    "maybe." anywhere.

    >>> check_constrained_response("Well... My answer is maybe.")
    True
    """
    return any(option in response for option in _CONSTRAINED_OPTIONS)


def check_number_highlighted_sections(response: str, *, prompt: str = "", num_highlights: int) -> bool:
    """``detectable_format:number_highlighted_sections``: at least n non-blank ``*...*``
    spans plus ``**...**`` spans, each on one line.

    ``**bold**`` counts once: the single-star pattern only sees the empty ``**`` pairs.

    >>> check_number_highlighted_sections("*a* and **b**", num_highlights=2)
    True
    """
    wanted = count(num_highlights, "num_highlights")
    n = 0
    if n >= wanted:
        return True
    for regex in (_HIGHLIGHT_RE, _DOUBLE_HIGHLIGHT_RE):
        for m in regex.finditer(response):
            if m.group(1).strip():
                n += 1
                if n >= wanted:
                    return True
    return False


def check_multiple_sections(response: str, *, prompt: str = "", section_spliter: str, num_sections: int) -> bool:
    """``detectable_format:multiple_sections``: at least n ``<spliter> <number>`` headers.

    The spliter (e.g. "Section") is used as a regex, as in the reference.

    >>> check_multiple_sections("Section 1\\nx\\nSection 2\\ny", section_spliter="Section", num_sections=2)
    True
    """
    spliter = string(section_spliter, "section_spliter").strip()
    regex = keyword_regex(r"\s?" + spliter + r"\s?\d+\s?")
    # len(re.split(...)) - 1 without building the pieces: one per match, plus groups.
    n = sum(1 for _ in regex.finditer(response)) * (1 + regex.groups)
    return n >= count(num_sections, "num_sections")


def check_json_format(response: str, *, prompt: str = "") -> bool:
    """``detectable_format:json_format``: parses as JSON once ```` ```json ```` fences go.

    >>> check_json_format('```json\\n{"a": 1}\\n```')
    True
    """
    value = (
        response.strip()
        .removeprefix("```json")
        .removeprefix("```Json")
        .removeprefix("```JSON")
        .removeprefix("```")
        .removesuffix("```")
        .strip()
    )
    try:
        json.loads(value)
    except ValueError:
        return False
    except RecursionError:
        # Nesting too deep for the json module: the reference crashes; not JSON here.
        return False
    return True


def check_title(response: str, *, prompt: str = "") -> bool:
    """``detectable_format:title``: a ``<<title>>`` with non-blank text on one line.

    >>> check_title("<<Ode to Joy>>\\nLa la")
    True
    """
    return any(m.group().lstrip("<").rstrip(">").strip() for m in _TITLE_RE.finditer(response))


def check_number_placeholders(response: str, *, prompt: str = "", num_placeholders: int) -> bool:
    """``detectable_content:number_placeholders``: at least n ``[...]`` on one line each
    (``[]`` counts).

    >>> check_number_placeholders("Dear [name], at [address]", num_placeholders=2)
    True
    """
    wanted = count(num_placeholders, "num_placeholders")
    n = 0
    if n >= wanted:
        return True
    for _ in _PLACEHOLDER_RE.finditer(response):
        n += 1
        if n >= wanted:
            return True
    return False


def check_postscript(response: str, *, prompt: str = "", postscript_marker: str) -> bool:
    """``detectable_content:postscript``: the marker occurs (lower-cased) anywhere.

    "P.S." and "P.P.S" allow a space after each dot (``p. s.``); any other marker is
    used as a regex, as in the reference.

    >>> check_postscript("Bye.\\n\\np.s. see you", postscript_marker="P.S.")
    True
    """
    marker = string(postscript_marker, "postscript_marker").strip()
    if marker == "P.P.S":
        regex = _PPS_RE
    elif marker == "P.S.":
        regex = _PS_RE
    else:
        regex = keyword_regex(r"\s*" + marker.lower() + r".*$", flags=re.MULTILINE)
    return regex.search(response.lower()) is not None

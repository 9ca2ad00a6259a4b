"""Pure parsers for CodecLM's model replies (Wang et al. 2024, arXiv 2404.05875).

Each returns a parsed value or raises :class:`~pipelines.errors.ParseError`; a stage turns
that into a rejected row with the raw text, never a ``None``. "Strict" means the parser
reads only the format the prompt asked for and never guesses: a reply that writes the use
case in prose, or numbers a list 1, 2, 4, does not parse.
"""
from __future__ import annotations

import re

from pipelines.errors import ParseError

__all__ = ["parse_improved", "parse_metadata", "parse_numbered_list", "parse_rubrics", "parse_score_pair"]

# the paper writes "Use case:" and, in some of its own examples, "Task:"
_USE_CASE = re.compile(r"^\s*(?:use[ _-]?case|task)\s*:\s*(?P<v>.*?)\s*$", re.IGNORECASE)
_SKILLS = re.compile(r"^\s*skills?\s*:\s*(?P<v>.*?)\s*$", re.IGNORECASE)
_ITEM = re.compile(r"^\s*(?P<n>\d{1,3})\s*[.):]\s+(?P<v>\S.*?)\s*$")
_HEADER = re.compile(r"^\s*#*\s*\**\s*(?P<h>rubrics?|actions?)\s*\**\s*:?\s*\**\s*$", re.IGNORECASE)
_NUMBER = r"(\d+(?:\.\d+)?)"
_PAIR = re.compile(rf"^\s*{_NUMBER}\s*(?:,\s*|\s+){_NUMBER}\s*$")
_IMPROVED = re.compile(r"improved\s+instruction\s*:", re.IGNORECASE)


def parse_metadata(text: str, *, max_skills: int = 3) -> tuple[str, list[str]]:
    """Read the encoder's ``Use case: ...`` (or ``Task: ...``) and ``Skills: a, b`` lines.

    The first use-case line counts and the first skills line after it; anything after
    them (a model that goes on to invent another example) is ignored. Skills are split on
    commas, stripped of a final period, and deduplicated case-insensitively; at least one
    and at most ``max_skills`` (the paper's 3) are required.

    >>> parse_metadata("Use case: recipe suggestion\\nSkills: nutrition, meal planning.")
    ('recipe suggestion', ['nutrition', 'meal planning'])
    >>> parse_metadata("TASK: code generation\\nskills: python")
    ('code generation', ['python'])
    >>> parse_metadata("This is about cooking.")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: no 'Use case:' or 'Task:' line
    """
    lines = (text or "").splitlines()
    for i, line in enumerate(lines):
        m = _USE_CASE.match(line)
        if m:
            break
    else:
        raise ParseError("no 'Use case:' or 'Task:' line", raw=text)
    use_case = m.group("v").strip().rstrip(".").strip()
    if not use_case:
        raise ParseError("empty use case", raw=text)
    for line in lines[i + 1:]:
        s = _SKILLS.match(line)
        if s:
            break
        if _USE_CASE.match(line):
            break
    else:
        s = None
    if s is None:
        raise ParseError("no 'Skills:' line after the use case", raw=text)
    skills: list[str] = []
    for part in s.group("v").split(","):
        skill = part.strip().rstrip(".").strip()
        if skill and skill.lower() not in (k.lower() for k in skills):
            skills.append(skill)
    if not skills:
        raise ParseError("no skills listed", raw=text)
    if len(skills) > max_skills:
        raise ParseError(f"{len(skills)} skills, at most {max_skills} allowed", raw=text)
    return use_case, skills


def parse_numbered_list(text: str, *, start: int = 1) -> list[str]:
    """Items of a list numbered ``1.`` (or ``1)``, ``1:``) upwards, in order.

    Lines before the first item (a preamble) are ignored; an unnumbered line after an item
    continues it; the list ends where the numbering breaks (a second list, a skipped
    number). No item at all is a :class:`ParseError`.

    >>> parse_numbered_list("Here you go:\\n1. Write a poem.\\n2) Explain\\nrecursion.\\n4. skipped")
    ['Write a poem.', 'Explain recursion.']
    >>> parse_numbered_list("Write a poem.")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: no numbered item
    """
    items: list[str] = []
    for line in (text or "").splitlines():
        m = _ITEM.match(line)
        if m:
            if int(m.group("n")) != start + len(items):
                if items:
                    break
                continue
            items.append(m.group("v"))
        elif items and line.strip():
            if _HEADER.match(line):
                break
            items[-1] = f"{items[-1]} {line.strip()}"
    if not items:
        raise ParseError("no numbered item", raw=text)
    return items


def parse_rubrics(text: str, *, n: int = 4) -> tuple[list[str], list[str]]:
    """Read the Self-Rubrics reply: a ``Rubrics:`` list and an ``Actions:`` list.

    Each section is a numbered list; both need at least ``n`` items (the paper's 4) and the
    first ``n`` of each are returned, rubric i matching action i.

    >>> reply = "Rubrics:\\n1. a\\n2. b\\nActions:\\n1. do a\\n2. do b"
    >>> parse_rubrics(reply, n=2)
    (['a', 'b'], ['do a', 'do b'])
    >>> parse_rubrics("Rubrics:\\n1. a\\nActions:\\n1. do a", n=2)
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: 1 rubrics, 2 needed
    """
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for line in (text or "").splitlines():
        h = _HEADER.match(line)
        if h:
            current = "rubrics" if h.group("h").lower().startswith("rubric") else "actions"
            sections.setdefault(current, [])
        elif current is not None and current in sections:
            sections[current].append(line)
    if "rubrics" not in sections or "actions" not in sections:
        raise ParseError("no 'Rubrics:' and 'Actions:' sections", raw=text)
    out = []
    for key in ("rubrics", "actions"):
        try:
            items = parse_numbered_list("\n".join(sections[key]))
        except ParseError:
            items = []
        if len(items) < n:
            raise ParseError(f"{len(items)} {key}, {n} needed", raw=text)
        out.append(items[:n])
    return out[0], out[1]


def parse_improved(text: str, *, prefilled: bool = False) -> str:
    """The improver's rewritten instruction: the text after ``Improved instruction:``.

    With ``prefilled`` the marker was already in the prompt and the whole reply is the
    instruction. Surrounding quotes are removed; an empty result does not parse.

    >>> parse_improved("Sure.\\nImproved instruction: Write a haiku about rain.")
    'Write a haiku about rain.'
    >>> parse_improved(' "Write a sonnet."', prefilled=True)
    'Write a sonnet.'
    >>> parse_improved("Write a haiku.")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: no 'Improved instruction:' marker
    """
    body = text or ""
    if not prefilled:
        m = _IMPROVED.search(body)
        if m is None:
            raise ParseError("no 'Improved instruction:' marker", raw=text)
        body = body[m.end():]
    body = body.strip()
    if len(body) >= 2 and body[0] == body[-1] and body[0] in "\"'":
        body = body[1:-1].strip()
    if not body:
        raise ParseError("empty improved instruction", raw=text)
    return body


def parse_score_pair(text: str, *, low: float = 0.0, high: float = 10.0) -> tuple[float, float]:
    """The pairwise judge's first line: two scores separated by a space (Vicuna's format).

    Vicuna's ``parse_score`` reads the first line, comma or space separated; it returns
    ``[-1, -1]`` on failure, where this raises. Scores outside ``[low, high]`` fail too.

    >>> parse_score_pair("8 6\\nAssistant 1 is more detailed.")
    (8.0, 6.0)
    >>> parse_score_pair("\\n7.5, 9")
    (7.5, 9.0)
    >>> parse_score_pair("Assistant 1: 8")
    Traceback (most recent call last):
    ...
    pipelines.errors.ParseError: first line is not two scores: 'Assistant 1: 8'
    """
    first = next((ln for ln in (text or "").splitlines() if ln.strip()), "")
    m = _PAIR.match(first)
    if m is None:
        raise ParseError(f"first line is not two scores: {first.strip()[:60]!r}", raw=text)
    a, b = float(m.group(1)), float(m.group(2))
    if not (low <= a <= high and low <= b <= high):
        raise ParseError(f"scores {a:g} {b:g} outside {low:g}..{high:g}", raw=text)
    return a, b

"""IFBench ``format:*``: layout, markup, brackets, quotes and case of the response.

Several of these are looser or stricter than their instruction text; the Notes of each
function say where, because the reference's behaviour (not the wording) is what
IFBench scores.
"""
from __future__ import annotations

import functools
import re
import string
from itertools import pairwise

from filters.verify.ifbench.emoji_chars import is_emoji_char
from filters.verify.ifbench.kwargs import nonempty
from filters.verify.ifbench.text import (
    PUNCTUATION,
    delete_punctuation,
    sentences,
    word_tokenize,
)

__all__ = [
    "check_emoji",
    "check_line_indent",
    "check_list",
    "check_newline",
    "check_no_bullets_bullets",
    "check_no_whitespace",
    "check_options",
    "check_output_template",
    "check_parentheses",
    "check_quote_unquote",
    "check_quotes",
    "check_sub_bullets",
    "check_thesis",
    "check_title_case",
]

_CLOSER_OF = {"(": ")", "[": "]", "{": "}"}
_OPTION_STRIP = PUNCTUATION + " "
# Options like "a), b), c), d)" are matched exactly; "yes/no/maybe" loosely.
_LETTER_OPTIONS = re.compile(r"\W*[aA]\W*[bB]\W*[cC]\W*")
_QUOTE_END_STRIP = string.digits + PUNCTUATION.replace('"', "")
_TEMPLATE_PARTS = ("My Answer:", "My Conclusion:", "Future Outlook:")


def check_parentheses(response: str, *, prompt: str = "") -> bool:
    """``format:parentheses``: brackets ``()[]{}`` nested at least 5 deep, and a group
    that reached that depth is closed.

    Notes
    -----
    A mismatched or unmatched closer resets the depth count, as in the reference.

    >>> check_parentheses("(a [b {c (d [e] d) c} b] a)")
    True
    >>> check_parentheses("(a [b {c (d) c} b] a)")
    False
    """
    stack: list[str] = []
    max_depth = 0
    for ch in response:
        if ch in _CLOSER_OF:
            stack.append(ch)
            max_depth = max(max_depth, len(stack))
        elif ch in ")]}":
            if stack and _CLOSER_OF[stack[-1]] == ch:
                stack.pop()
                if max_depth >= 5:
                    return True
            else:
                stack, max_depth = [], 0
    return False


def check_quotes(response: str, *, prompt: str = "") -> bool:
    """``format:quotes``: quotes nested at least 3 deep, alternating ``"`` and ``'``.

    Notes
    -----
    A quote character equal to the innermost open one closes it; any other ``"`` or
    ``'`` opens a new level. So apostrophes open levels too (``don't`` opens one), as in
    the reference.

    >>> check_quotes('''He said "she said 'they said "hi" ok' fine" end''')
    True
    >>> check_quotes('''He said "she said 'hi' ok" end''')
    False
    """
    stack: list[str] = []
    reached = 0
    for ch in response:
        if stack and ch == stack[-1]:
            stack.pop()
            if reached - len(stack) >= 3:
                return True
        elif ch in "\"'":
            stack.append(ch)
            reached = max(reached, len(stack))
    return False


def _parse_options(options: str) -> tuple[bool, list[str]]:
    strict = _LETTER_OPTIONS.match(options) is not None
    if "/" in options:
        sep = "/"
    elif "or" in options:  # substring, as in the reference
        sep = "or"
    else:
        sep = ","
    return strict, [o.strip() for o in options.split(sep)]


def check_options(response: str, *, prompt: str = "", options: str) -> bool:
    """``format:options``: the response is one of the options and nothing else.

    Options are split on ``/``, else on ``or``, else on ``,``. Letter options
    (``a), b), c), d)``) must match exactly, the raw response included (no surrounding
    whitespace); text options are compared lower-cased with punctuation and spaces
    stripped from both ends.

    >>> check_options("Maybe.", options="yes/no/maybe"), check_options("b)", options="a), b), c), d)")
    (True, True)
    >>> check_options("b) Insertion", options="a), b), c), d)")
    False
    """
    nonempty(options, "options")
    strict, choices = _parse_options(options)
    if strict:
        return response in choices
    answer = response.strip(_OPTION_STRIP).lower()
    return any(o.strip(_OPTION_STRIP).lower() == answer for o in choices)


def check_newline(response: str, *, prompt: str = "") -> bool:
    """``format:newline``: one word per line (punctuation deleted; empty lines ignored,
    a line of spaces counts as a line).

    >>> check_newline("Hello,\\nworld!\\n\\nBye")
    True
    >>> check_newline("Hello world")
    False
    """
    value = delete_punctuation(response).strip()
    lines = [line for line in value.split("\n") if line != ""]
    return len(lines) == len(value.split())


def _ends_with_emoji(chunk: str) -> bool:
    # Last or second-to-last character: a trailing variation selector (U+FE0F) or
    # space after the emoji is tolerated.
    return is_emoji_char(chunk[-1]) or is_emoji_char(chunk[-2] if len(chunk) > 1 else chunk[-1])


def check_emoji(response: str, *, prompt: str = "") -> bool:
    """``format:emoji``: every sentence ends with an emoji (ASCII punctuation ignored).

    Notes
    -----
    Punkt often attaches an emoji that follows a full stop to the *next* sentence, so a
    sentence may also pass when the next one starts with an emoji, as in the reference.
    A sentence that is nothing but punctuation fails.

    >>> check_emoji("I love rockets 🚀. They fly high ✈️!")
    True
    >>> check_emoji("I love rockets. They fly high ✈️!")
    False
    """
    sents = [delete_punctuation(s).strip() for s in sentences(response)]
    for i, chunk in enumerate(sents):
        if not chunk:
            return False
        if _ends_with_emoji(chunk):
            continue
        if i == len(sents) - 1 or not sents[i + 1] or not is_emoji_char(sents[i + 1][0]):
            return False
    return True


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _drop_blank_lines_like_reference(lines: list[str]) -> list[str]:
    # The reference runs ``for line in lines: if not line.strip(): lines.remove(line)``:
    # it removes while iterating over the same list, so the element after each removed
    # one is skipped (of two adjacent blank lines only one goes), and ``remove`` drops
    # the *first* equal element, not necessarily the current one. Reproduced on purpose
    # (see DISAGREEMENTS.md, "upstream quirks kept").
    kept = list(lines)
    i = 0
    while i < len(kept):
        line = kept[i]
        if not line.strip():
            kept.remove(line)
        i += 1
    return kept


def check_line_indent(response: str, *, prompt: str = "") -> bool:
    """``format:line_indent``: each line is indented by more spaces than the one before
    (blank lines dropped; tabs do not count as indentation).

    Notes
    -----
    Like the reference, only every other blank line of a run of blank lines is dropped,
    and a remaining blank line (indent 0 or spaces) breaks the staircase.

    >>> check_line_indent("a\\n b\\n\\n  c")
    True
    >>> check_line_indent("a\\n b\\n\\n\\n  c")
    False
    """
    lines = _drop_blank_lines_like_reference(response.split("\n"))
    return all(_indent(b) > _indent(a) for a, b in pairwise(lines))


def check_quote_unquote(response: str, *, prompt: str = "") -> bool:
    """``format:quote_unquote``: no two quoted phrases back to back and the response does
    not end with a quote (every quote must be followed by explanation).

    With whitespace and the literal ``'"'`` removed, ``""`` must not occur, and the last
    character other than digits and punctuation (``"`` excepted) must not be ``"``.
    Curly quotes are not quotes here, as in the reference.

    >>> check_quote_unquote('"Carpe diem" means seize the day.')
    True
    >>> check_quote_unquote('He said "carpe diem" "seize the day".')
    False
    """
    value = "".join(response.replace("'\"'", "").split())
    if '""' in value:
        return False
    stripped = value.strip(_QUOTE_END_STRIP)
    return not (stripped and stripped[-1] == '"')


@functools.lru_cache(maxsize=64)
def _literal(sep: str) -> re.Pattern[str]:
    return re.compile(re.escape(sep))


def check_list(response: str, *, prompt: str = "", sep: str) -> bool:
    """``format:list``: the bullet replacement ``sep`` occurs at least twice, anywhere.

    >>> check_list("... apples\\n... pears", sep="...")
    True
    """
    nonempty(sep, "sep")
    return len(_literal(sep).findall(response)) >= 2


def check_thesis(response: str, *, prompt: str = "") -> bool:
    """``format:thesis``: an HTML italic span (``<i>``, else ``<em>``) with text in it,
    followed by more text.

    Notes
    -----
    Reproduces the reference's offsets: the thesis is read from 3 characters after the
    tag start and the rest from 4 characters after the closing tag, whichever tag was
    found (``<em>``/``</em>`` are one character longer).

    >>> check_thesis("<i>Cats rule.</i> Here is why.")
    True
    >>> check_thesis("Intro <i>Cats rule.</i>")
    False
    """
    start = response.find("<i>")
    if start == -1:
        start = response.find("<em>")
        if start == -1:
            return False
    value = response[start:]
    end = value.find("</i>")
    if end == -1:
        end = value.find("</em>")
        if end == -1:
            return False
    if not value[3:end].strip():
        return False
    return bool(value[end + 4 :].strip())


def check_sub_bullets(response: str, *, prompt: str = "") -> bool:
    """``format:sub-bullets``: after every ``*`` there is a ``-`` before the next ``*``.

    Notes
    -----
    As in the reference this looks at ``*`` anywhere (bold markers included), not at
    line starts, and a response without ``*`` passes.

    >>> check_sub_bullets("* Fruit\\n  - apple\\n* Veg\\n  - kale")
    True
    >>> check_sub_bullets("* Fruit\\n  - apple\\n* Veg")
    False
    """
    return all("-" in chunk for chunk in response.split("*")[1:])


def check_no_bullets_bullets(response: str, *, prompt: str = "") -> bool:
    """``format:no_bullets_bullets``: at least two sentences, then at least two lines
    starting with ``*``, and nothing else.

    Notes
    -----
    Reproduces the reference's state machine: an empty line before the first bullet
    ends the prose part, so any later non-bullet line (blank lines included, e.g. a
    blank line between bullets or a trailing one) fails.

    >>> check_no_bullets_bullets("Intro one. Intro two.\\n* a\\n* b")
    True
    >>> check_no_bullets_bullets("Intro one.\\n* a\\n* b")
    False
    """
    in_prose = True
    n_sentences = n_bullets = 0
    for line in response.split("\n"):
        if line.strip().startswith("*"):
            in_prose = False
            if n_sentences < 2:
                return False
            n_bullets += 1
        elif in_prose:
            found = sentences(line.strip())
            n_sentences += len(found)
            in_prose = bool(found)
        else:
            return False
    return n_bullets >= 2


def check_title_case(response: str, *, prompt: str = "") -> bool:
    """``format:title_case``: no NLTK token that starts with a letter is all lower case
    or lower-then-upper (``cAT``); single letters must be capitals. Mixed forms like
    ``iPhone`` and all-caps words pass, and so do short function words only if
    capitalised.

    >>> check_title_case("The Cat Sat On The Mat."), check_title_case("The Cat sat On The Mat.")
    (True, False)
    """
    for token in word_tokenize(response):
        if not token or not token[0].isalpha():
            continue
        head, tail = token[0], token[1:]
        if not tail:
            if head.islower():
                return False
        elif head.islower() and (tail.isupper() or tail.islower()):
            return False
    return True


def check_output_template(response: str, *, prompt: str = "") -> bool:
    """``format:output_template``: contains ``My Answer:``, ``My Conclusion:`` and
    ``Future Outlook:`` (case-sensitive, any order).

    >>> check_output_template("My Answer: yes My Conclusion: yes Future Outlook: bright")
    True
    """
    return all(part in response for part in _TEMPLATE_PARTS)


def check_no_whitespace(response: str, *, prompt: str = "") -> bool:
    """``format:no_whitespace``: no whitespace character at all.

    >>> check_no_whitespace("a_b-c"), check_no_whitespace("a b")
    (True, False)
    """
    return not any(ch.isspace() for ch in response)

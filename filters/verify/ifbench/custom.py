"""IFBench ``custom:*``: one-off tasks whose answer format (and sometimes content) is fixed.

Each of these belongs to one prompt of the benchmark (list Napoleon's battle dates,
sort European capitals, generate a CSV, ...), so the check knows the expected shape of
the whole response.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from itertools import pairwise

from filters.verify.ifbench.lexicon import EUROPEAN_CAPITALS_BY_LATITUDE
from filters.verify.ifbench.text import PUNCTUATION, delete_punctuation, sentences

__all__ = [
    "check_character_reverse",
    "check_csv_city",
    "check_csv_quotes",
    "check_csv_special_character",
    "check_date_format_list",
    "check_european_capitals_sort",
    "check_mcq_count_length",
    "check_multiples",
    "check_reverse_newline",
    "check_sentence_alphabet",
    "check_word_reverse",
]

_DIGITS = re.compile(r"\d+")
_MULTIPLES_OF_7 = [str(i) for i in range(14, 51, 7)]
# "Question 3." / "Question 3)" / "Question 3:" ... with the newlines before it.
_QUESTION_SPLIT = re.compile(r"\n*(?:Question \d+[\.|\):;]?\s*)")
_OPTION_LINE = re.compile(r"^[A-Ea-e][\.|\)]\s*\w+")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CSV_CITY_HEADER = ["ID", "Country", "City", "Year", "Count"]
_CSV_PRODUCT_HEADER = re.compile(
    r'^(ProductID|"ProductID"),[ \t]*(Category|"Category"),[ \t]*(Brand|"Brand"),'
    r'[ \t]*(Price|"Price"),[ \t]*(Stock|"Stock")$'
)
_CSV_STUDENT_HEADER = re.compile(
    r'^(StudentID|"StudentID")\t *(Subject|"Subject")\t *(Grade|"Grade")\t *'
    r'(Semester|"Semester")\t *(Score|"Score")$'
)
_QUOTED_SPECIAL = re.compile(r'".*[^\d\w\s].*"')
_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}
_LINE_STRIP = PUNCTUATION + " "


def _ascii_fold(text: str) -> str:
    """Drop diacritics: NFKD, then keep ASCII only (``"São Tomé"`` -> ``"Sao Tome"``)."""
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def check_multiples(response: str, *, prompt: str = "") -> bool:
    """``custom:multiples``: the numbers in the response are exactly 14 21 28 35 42 49
    (count from 10 to 50, multiples of 7 only).

    >>> check_multiples("14, 21, 28, 35, 42, 49"), check_multiples("7, 14, 21, 28, 35, 42, 49")
    (True, False)
    """
    return _DIGITS.findall(response.replace(",", ", ")) == _MULTIPLES_OF_7


def _question_shape(block: str) -> tuple[int, int]:
    """(options, length of the question text) of one question block."""
    question, n_options, in_options = "", 0, False
    for line in block.split("\n"):
        if _OPTION_LINE.match(line.strip()):
            n_options += 1
            in_options = True
        elif not in_options:
            question += " " + line.strip()
    return n_options, len(question.strip())


def check_mcq_count_length(response: str, *, prompt: str = "") -> bool:
    """``custom:mcq_count_length``: starts with ``Question``; exactly 4 questions, each
    with 5 options (``A.`` / ``a)`` ...), question texts strictly getting longer.

    >>> q = lambda n, t: f"Question {n}: {t}\\n" + "".join(f"{c}) x\\n" for c in "ABCDE")
    >>> check_mcq_count_length(q(1, "Who?") + q(2, "Who is?") + q(3, "Who is it?") + q(4, "Who is it now?"))
    True
    """
    if not response.startswith("Question"):
        return False  # anything before the first question is an explanation
    blocks = _QUESTION_SPLIT.split(response)
    if blocks and blocks[0] == "":
        blocks = blocks[1:]
    blocks = [b.strip() for b in blocks if b.strip()]
    if len(blocks) != 4:
        return False
    lengths = []
    for block in blocks:
        n_options, length = _question_shape(block)
        if n_options != 5:
            return False
        lengths.append(length)
    return all(a < b for a, b in pairwise(lengths))


def check_reverse_newline(response: str, *, prompt: str = "") -> bool:
    """``custom:reverse_newline``: from the first line mentioning Zimbabwe on, at least 52
    non-empty lines in reverse alphabetical order (diacritics folded, punctuation and
    spaces stripped from line ends).

    >>> check_reverse_newline("\\n".join(["Zimbabwe"] + [f"Country {i:02d}" for i in range(51, 0, -1)]))
    True
    """
    lines = [s for s in (line.strip(_LINE_STRIP) for line in response.split("\n")) if s]
    start = next((i for i, line in enumerate(lines) if "Zimbabwe" in line), None)
    if start is None or len(lines) - start < 52:
        return False
    folded = [_ascii_fold(line) for line in lines[start:]]
    return folded == sorted(folded, reverse=True)


def check_word_reverse(response: str, *, prompt: str = "") -> bool:
    """``custom:word_reverse``: read backwards word by word (lower-cased, punctuation
    deleted) the response mentions ``bald eagle`` and forms a single sentence.

    >>> check_word_reverse("Eagle bald the is symbol national The.")
    True
    """
    words = delete_punctuation(response.lower().strip()).split()
    forward = " ".join(reversed(words))
    return "bald eagle" in forward and forward in sentences(forward)


def check_character_reverse(response: str, *, prompt: str = "") -> bool:
    """``custom:character_reverse``: contains ``elgae dlab`` ("bald eagle" backwards),
    case ignored.

    >>> check_character_reverse(".elgae dlaB ehT")
    True
    """
    return "elgae dlab" in response.lower()


def check_sentence_alphabet(response: str, *, prompt: str = "") -> bool:
    """``custom:sentence_alphabet``: exactly 26 sentences whose first letters (after
    leading punctuation and whitespace) run a..z.

    >>> check_sentence_alphabet(" ".join(f"{chr(65 + i)}x." for i in range(26)))
    True
    """
    sents = sentences(response)
    if len(sents) != 26:
        return False
    for i, sentence in enumerate(sents):
        stripped = sentence.lstrip(PUNCTUATION + " \t\n\r\x0b\x0c")
        if not stripped or stripped[0].lower() != chr(ord("a") + i):
            return False
    return True


def check_european_capitals_sort(response: str, *, prompt: str = "") -> bool:
    """``custom:european_capitals_sort``: exactly the 27 expected capitals, comma-separated,
    north to south (diacritics folded; nothing else in the response).

    >>> check_european_capitals_sort(", ".join(EUROPEAN_CAPITALS_BY_LATITUDE))
    True
    """
    capitals = [c.strip() for c in _ascii_fold(response).split(",") if c.strip()]
    return capitals == list(EUROPEAN_CAPITALS_BY_LATITUDE)


def _csv_rows(value: str, *, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(value), delimiter=delimiter))


def check_csv_city(response: str, *, prompt: str = "") -> bool:
    """``custom:csv_city``: a CSV with header ``ID,Country,City,Year,Count`` and 7 rows of
    5 fields (nothing before or after it).

    >>> rows = ["ID,Country,City,Year,Count"] + [f"{i},X,Y,2000,{i}" for i in range(7)]
    >>> check_csv_city("\\n".join(rows))
    True
    """
    data = _csv_rows(response)
    return len(data) == 8 and data[0] == _CSV_CITY_HEADER and all(len(r) == 5 for r in data[1:])


def check_csv_special_character(response: str, *, prompt: str = "") -> bool:
    """``custom:csv_special_character``: a comma CSV with the product header and 14 rows
    of 5 fields, one field being a double-quoted value with a special character.

    Notes
    -----
    Like the reference, quotes are tripled before parsing so that they survive as
    field characters, and the rows are only checked up to the first row that has a
    quoted special field.

    >>> rows = ["ProductID,Category,Brand,Price,Stock"] + [f"{i},Toys,Acme,9,3" for i in range(13)]
    >>> check_csv_special_character("\\n".join(rows + ['13,Toys,"A&B",9,3']))
    True
    """
    header = response.split("\n")[0].strip()
    if not _CSV_PRODUCT_HEADER.match(header):
        return False
    data = _csv_rows(response.replace('"', '"""'))
    if len(data) != 15:
        return False
    for row in data[1:]:
        if len(row) != 5:
            return False
        if any(_QUOTED_SPECIAL.match(field) for field in row):
            return True
    return False


def check_csv_quotes(response: str, *, prompt: str = "") -> bool:
    """``custom:csv_quotes``: a tab-separated table with the student header and 3 rows,
    every field (header included) enclosed in double quotes.

    Notes
    -----
    An empty field fails (the reference raises ``IndexError`` on it).

    >>> row = lambda *f: "\\t".join(f'"{x}"' for x in f)
    >>> check_csv_quotes("\\n".join([row("StudentID", "Subject", "Grade", "Semester", "Score")]
    ...     + [row(i, "Math", "A", "Fall", 90) for i in range(3)]))
    True
    """
    header = response.split("\n")[0].strip()
    if not _CSV_STUDENT_HEADER.match(header):
        return False
    data = _csv_rows(response.replace('"', '"""'), delimiter="\t")
    if len(data) != 4:
        return False
    for row in data:
        if len(row) != 5:
            return False
        for field in (f.strip() for f in row):
            if not field or field[0] != '"' or field[-1] != '"':
                return False
    return True


def _plausible_date(date: str) -> bool:
    if not _DATE.match(date):
        return False
    year, month, day = (int(p) for p in date.split("-"))
    if not 1769 <= year <= 1821 or month > 12:
        return False
    return month not in _MONTH_DAYS or day <= _MONTH_DAYS[month]


def check_date_format_list(response: str, *, prompt: str = "") -> bool:
    """``custom:date_format_list``: comma-separated ``YYYY-MM-DD`` dates within Napoleon's
    lifetime (1769-1821) and with a possible day for the month.

    Notes
    -----
    As in the reference, month ``00`` and day ``00`` pass.

    >>> check_date_format_list("1796-04-12, 1805-12-02"), check_date_format_list("1805-12-02 Austerlitz")
    (True, False)
    """
    return all(_plausible_date(d.strip()) for d in response.strip().split(","))

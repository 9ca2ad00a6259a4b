"""Fixed word lists the IFBench checkers compare against.

All lists are copied as facts from allenai/IFBench ``instructions.py`` except
:data:`STOPWORDS`, which is NLTK's English stopword corpus (IFBench loads it with
``nltk.corpus.stopwords.words("english")``; NLTK data cannot be downloaded here). The
179-word list is used: newer NLTK data adds 19 contractions (``"he'd"``, ``"we're"``,
...), which never equal a ``\\w+`` token and so never change a count.
"""
from __future__ import annotations

__all__ = [
    "CONJUNCTIONS",
    "EUROPEAN_CAPITALS_BY_LATITUDE",
    "PERSON_NAMES",
    "PRONOUNS",
    "STOPWORDS",
]

STOPWORDS: frozenset[str] = frozenset(
    """
    i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself
    yourselves he him his himself she she's her hers herself it it's its itself they them
    their theirs themselves what which who whom this that that'll these those am is are was
    were be been being have has had having do does did doing a an the and but if or because
    as until while of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there
    when where why how all any both each few more most other some such no nor not only own
    same so than too very s t can will just don don't should should've now d ll m o re ve y
    ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't haven
    haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn
    shouldn't wasn wasn't weren weren't won won't wouldn wouldn't
    """.split()  # noqa: SIM905 - word lists read best as text
)

#: ``count:conjunctions``: the seven coordinating conjunctions (FANBOYS).
CONJUNCTIONS: frozenset[str] = frozenset({"and", "but", "for", "nor", "or", "so", "yet"})

#: ``count:pronouns``: personal, possessive, reflexive, demonstrative, interrogative,
#: relative and indefinite pronouns, matched against lower-cased NLTK tokens.
PRONOUNS: frozenset[str] = frozenset(
    """
    i me we us you he him she her it they them
    my mine our ours your yours his hers its their theirs
    myself ourselves yourself yourselves himself herself itself themselves
    this that these those
    who whom whose which what
    whoever whomever whatever whichever
    anybody anyone anything everybody everyone everything nobody nothing somebody someone
    something each either neither both all some any none
    """.split()  # noqa: SIM905 - word lists read best as text
)

#: ``count:person_names``: the 50 names the instruction lists (case-sensitive).
PERSON_NAMES: tuple[str, ...] = tuple(
    """
    Emma Liam Sophia Jackson Olivia Noah Ava Lucas Isabella Mason Mia Ethan Charlotte
    Alexander Amelia Benjamin Harper Leo Zoe Daniel Chloe Samuel Lily Matthew Grace Owen
    Abigail Gabriel Ella Jacob Scarlett Nathan Victoria Elijah Layla Nicholas Audrey David
    Hannah Christopher Penelope Thomas Nora Andrew Aria Joseph Claire Ryan Stella Jonathan
    """.split()  # noqa: SIM905 - word lists read best as text
)

#: ``custom:european_capitals_sort``: capitals of European countries north of 45°N,
#: from highest to lowest latitude, as the reference expects them (ASCII spelling).
EUROPEAN_CAPITALS_BY_LATITUDE: tuple[str, ...] = (
    "Reykjavik", "Helsinki", "Oslo", "Tallinn", "Stockholm", "Riga", "Moscow", "Copenhagen",
    "Vilnius", "Minsk", "Dublin", "Berlin", "Amsterdam", "Warsaw", "London", "Brussels",
    "Prague", "Luxembourg", "Paris", "Vienna", "Bratislava", "Budapest", "Vaduz", "Chisinau",
    "Bern", "Ljubljana", "Zagreb",
)  # fmt: skip

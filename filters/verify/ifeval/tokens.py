"""Offline sentence and word tokenization, as IFEval counts them.

IFEval counts sentences with NLTK's Punkt English model and capital words over
``nltk.word_tokenize``, which needs the same model. ``nltk.download`` is not an option
(CI and users may be offline), so the four Punkt English parameter files (NLTK data,
``punkt_tab/english``, byte-identical to ``shared/data/ifeval/punkt_tab_english``) ship in
``punkt_tab_english/`` next to this module and are read here without ``nltk.data``.

nltk is imported on first use only: importing it costs seconds and most checks never
need it.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nltk.tokenize.destructive import NLTKWordTokenizer
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

__all__ = ["PUNKT_DIR", "count_sentences", "count_words", "sentences", "word_tokenize"]

PUNKT_DIR = Path(__file__).with_name("punkt_tab_english")

# IFEval's count_words is ``RegexpTokenizer(r"\w+")``: non-overlapping ``\w+`` runs.
_WORD_RE = re.compile(r"\w+")


def _lines(path: Path) -> list[str]:
    # Same decoding as nltk.tabdata: one entry per line, only the trailing "\n" removed.
    with path.open(encoding="utf-8") as f:
        return [line.removesuffix("\n") for line in f]


def load_punkt_params(folder: Path = PUNKT_DIR) -> PunktParameters:
    """Read a ``punkt_tab`` model folder (4 files) into ``PunktParameters``."""
    from collections import defaultdict

    from nltk.tokenize.punkt import PunktParameters

    params = PunktParameters()
    params.collocations = {tuple(line.split("\t")) for line in _lines(folder / "collocations.tab")}
    params.sent_starters = set(_lines(folder / "sent_starters.txt"))
    params.abbrev_types = set(_lines(folder / "abbrev_types.txt"))
    ortho = (line.split("\t") for line in _lines(folder / "ortho_context.tab"))
    params.ortho_context = defaultdict(int, {typ: int(flags) for typ, flags in ortho})
    return params


@functools.lru_cache(maxsize=1)
def _sentence_tokenizer() -> PunktSentenceTokenizer:
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    return PunktSentenceTokenizer(load_punkt_params())


@functools.lru_cache(maxsize=1)
def _word_tokenizer() -> NLTKWordTokenizer:
    from nltk.tokenize.destructive import NLTKWordTokenizer

    return NLTKWordTokenizer()


@functools.lru_cache(maxsize=64)
def sentences(text: str) -> tuple[str, ...]:
    """Punkt English sentences of ``text`` (cached: several checks share one split)."""
    return tuple(_sentence_tokenizer().tokenize(text))


def count_sentences(text: str) -> int:
    """Number of Punkt English sentences (IFEval ``count_sentences``)."""
    return len(sentences(text))


def word_tokenize(text: str) -> list[str]:
    """``nltk.word_tokenize(text)`` without nltk data: Punkt sentences, then NLTK's
    improved Treebank tokenizer on each."""
    tokenize = _word_tokenizer().tokenize
    return [token for sent in sentences(text) for token in tokenize(sent)]


def count_words(text: str) -> int:
    """Number of ``\\w+`` runs (IFEval ``count_words``)."""
    return sum(1 for _ in _WORD_RE.finditer(text))

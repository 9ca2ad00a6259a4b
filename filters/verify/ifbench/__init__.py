"""IFBench: 58 out-of-distribution instruction-following constraints (allenai/IFBench).

The second verifier set after IFEval (:mod:`filters.verify.ifeval`), in the same style: each
constraint is a pure function ``check_<name>(response, *, prompt="", **kwargs) -> bool``
registered in :data:`IFBENCH_CHECKERS` under its IFBench id, and
:func:`verify_ifbench` scores a response against a prompt's instruction list with
IFEval's strict or loose protocol.

The checkers follow the latest allenai/IFBench ``instructions.py`` (word-trigram
overlap, whole-word keyword counts, word-indexed spans, ...). Three need NLTK data or
packages that are not available offline and use documented rule-based stand-ins:
``words:start_verb`` (POS tagger, :mod:`.verbs`), ``words:odd_even_syllables``
(``syllapy``, :mod:`.syllables`) and ``format:emoji`` (``emoji``, :mod:`.emoji_chars`).
Agreement with the published verdicts and every known difference are in
``DISAGREEMENTS.md`` next to this file.

>>> verify_ifbench("14, 21, 28, 35, 42, 49", "Count ...", ["custom:multiples"], [{"N": None}])
[True]
"""
from __future__ import annotations

from filters.verify.ifbench.registry import IFBENCH_CHECKERS
from filters.verify.ifbench.verify import loose_variants, verify_ifbench

__all__ = ["IFBENCH_CHECKERS", "loose_variants", "verify_ifbench"]

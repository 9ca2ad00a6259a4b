"""Validation of a constraint's kwargs against the IFEval registry.

Every constraint the rules or the LLM emit passes through :func:`validate_constraint`,
so :class:`filters.verify.verify_constraints.VerifyConstraints` never meets one it cannot check.
"""
from __future__ import annotations

from typing import Any

from filters.verify.rules.language import LANGUAGES
from pipelines.errors import ConfigError

__all__ = ["validate_constraint"]

# The codes langdetect (the IFEval language checker) can return.
_LANG_CODES = frozenset(LANGUAGES.values()) | {"zh-tw"}
_PROBE = "Probe text."


def validate_constraint(instruction_id: str, kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """The kwargs of a constraint, checked by the IFEval registry; ``ConfigError`` if invalid.

    Names are checked by :func:`filters.verify.ifeval.bind` (unknown id, unknown or missing kwarg);
    values by running the checker once on a probe text, since each checker validates its
    kwargs (counts, relations, regex keywords) before it looks at the response. Language
    codes must be ones langdetect can return, or the check could never pass.

    >>> validate_constraint("length_constraints:number_words", {"num_words": 50, "relation": "less than"})
    {'num_words': 50, 'relation': 'less than'}
    >>> validate_constraint("length_constraints:number_words", {"num_words": 50, "relation": "under"})
    Traceback (most recent call last):
    ...
    pipelines.errors.ConfigError: kwarg 'relation' must be 'less than' or 'at least', got 'under'
    """
    from filters.verify.ifeval import bind

    if not isinstance(kwargs, dict) and kwargs is not None:
        msg = f"kwargs of {instruction_id!r} must be a mapping, got {type(kwargs).__name__}"
        raise ConfigError(msg)
    from filters.verify.ifeval.kwargs import compare, count

    checker, given = bind(instruction_id, kwargs)
    if instruction_id == "language:response_language":
        if given.get("language") not in _LANG_CODES:
            msg = f"kwarg 'language' must be an ISO 639-1 code langdetect returns, got {given.get('language')!r}"
            raise ConfigError(msg)
    # These two tokenize with nltk (seconds to import): the same kwarg checks, without the text.
    elif instruction_id == "length_constraints:number_sentences":
        compare(0, count(given["num_sentences"], "num_sentences"), given["relation"])
    elif instruction_id == "change_case:capital_word_frequency":
        compare(0, count(given["capital_frequency"], "capital_frequency", minimum=None), given["capital_relation"], "capital_relation")
    elif not instruction_id.startswith("change_case:english_"):
        checker(_PROBE, prompt=_PROBE, **given)
    return given

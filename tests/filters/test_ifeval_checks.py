"""Each IFEval checker on hand-written strings, including the reference's quirks.

The expected booleans follow google-research ``instruction_following_eval/instructions.py``;
a comment marks where the reference's behaviour is surprising but kept.
"""
from __future__ import annotations

import pytest

from filters.verify.ifeval import CHECKERS, response_variants, satisfaction_rate, verify
from pipelines.errors import ConfigError

LT, AL = "less than", "at least"

CASES = [
    # keywords:existence: case-insensitive regex search, no word boundary
    ("keywords:existence", "Cats and DOGS", {"keywords": ["dog", "cat"]}, True),
    ("keywords:existence", "Cats only", {"keywords": ["dog", "cat"]}, False),
    ("keywords:existence", "a category", {"keywords": ["cat"]}, True),
    ("keywords:existence", "abc", {"keywords": ["a.c"]}, True),  # keywords are regexes
    # keywords:frequency
    ("keywords:frequency", "the cat, the CAT, the Cat", {"keyword": "cat", "frequency": 3, "relation": AL}, True),
    ("keywords:frequency", "the cat, the CAT, the Cat", {"keyword": "cat", "frequency": 3, "relation": LT}, False),
    ("keywords:frequency", "no felines", {"keyword": " cat ", "frequency": 1, "relation": LT}, True),
    ("keywords:frequency", "catcat", {"keyword": "cat", "frequency": 2, "relation": AL}, True),
    # keywords:forbidden_words: whole words only
    ("keywords:forbidden_words", "a category", {"forbidden_words": ["cat"]}, True),
    ("keywords:forbidden_words", "My Cat!", {"forbidden_words": ["dog", "cat"]}, False),
    ("keywords:forbidden_words", "ice cream", {"forbidden_words": ["ice cream"]}, False),
    # keywords:letter_frequency: lower-cased, any character counted literally
    ("keywords:letter_frequency", "AaA", {"letter": "a", "let_frequency": 3, "let_relation": AL}, True),
    ("keywords:letter_frequency", "aaa", {"letter": "A", "let_frequency": 3, "let_relation": AL}, True),
    ("keywords:letter_frequency", "aaa", {"letter": "a", "let_frequency": 3, "let_relation": LT}, False),
    # Regression (IFEval keys 1122, 1129): '#' and '!' are counted, not replaced by a
    # random letter as the reference did before Google removed that check.
    ("keywords:letter_frequency", "#1 #2 #3", {"letter": "#", "let_frequency": 3, "let_relation": AL}, True),
    ("keywords:letter_frequency", "Wow! Yes!", {"letter": "!", "let_frequency": 2, "let_relation": LT}, False),
    # A whitespace letter strips to "" and counts 0 in the reference's Counter.
    ("keywords:letter_frequency", "a b c", {"letter": " ", "let_frequency": 1, "let_relation": LT}, True),
    # language:response_language (langdetect; no letters -> followed)
    ("language:response_language", "This is a plain English sentence about the weather today.", {"language": "en"}, True),
    ("language:response_language", "This is a plain English sentence about the weather today.", {"language": "fr"}, False),
    ("language:response_language", "Je suis très content de vous voir aujourd'hui.", {"language": "fr"}, True),
    ("language:response_language", "12345 !!!", {"language": "fr"}, True),
    # length_constraints:number_sentences (Punkt English: "Mr." and "p.m." do not end one)
    ("length_constraints:number_sentences", "Hello world. How are you? Fine!", {"num_sentences": 3, "relation": AL}, True),
    ("length_constraints:number_sentences", "Hello world. How are you? Fine!", {"num_sentences": 3, "relation": LT}, False),
    ("length_constraints:number_sentences", "Mr. Smith came. He left at 5 p.m. yesterday.", {"num_sentences": 3, "relation": LT}, True),
    # length_constraints:number_words: \w+ runs
    ("length_constraints:number_words", "Hello, world! It's 2024.", {"num_words": 5, "relation": AL}, True),
    ("length_constraints:number_words", "Hello, world! It's 2024.", {"num_words": 5, "relation": LT}, False),
    ("length_constraints:number_words", "naïve café", {"num_words": 2, "relation": AL}, True),
    # length_constraints:number_paragraphs: *** dividers
    ("length_constraints:number_paragraphs", "a\n***\nb\n***\nc", {"num_paragraphs": 3}, True),
    ("length_constraints:number_paragraphs", "***\na\n***\nb\n***", {"num_paragraphs": 2}, True),  # blank ends ignored
    ("length_constraints:number_paragraphs", "a\n***\n***\nb", {"num_paragraphs": 2}, False),  # blank middle fails
    ("length_constraints:number_paragraphs", "a **** b", {"num_paragraphs": 2}, True),  # "****" is a divider + "*"
    ("length_constraints:number_paragraphs", "just one", {"num_paragraphs": 1}, True),
    # length_constraints:nth_paragraph_first_word: \n\n paragraphs
    ("length_constraints:nth_paragraph_first_word", "Intro.\n\nSecond one.", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "second"}, True),
    ("length_constraints:nth_paragraph_first_word", 'Intro.\n\n"Hello," she said.', {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "Hello"}, True),
    ("length_constraints:nth_paragraph_first_word", "Intro.\n\nI'm here.", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "i"}, True),
    ("length_constraints:nth_paragraph_first_word", "Intro.\n\nWell-known.", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "well-known"}, True),
    ("length_constraints:nth_paragraph_first_word", "Intro.\n\nSecond.\n\nThird.", {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "second"}, False),
    # Reference quirk: the count skips blank parts but nth indexes all split parts.
    ("length_constraints:nth_paragraph_first_word", "\n\nA\n\nB", {"num_paragraphs": 2, "nth_paragraph": 1, "first_word": "a"}, False),
    # detectable_content:number_placeholders
    ("detectable_content:number_placeholders", "Dear [name], at [address]", {"num_placeholders": 2}, True),
    ("detectable_content:number_placeholders", "Dear [name]", {"num_placeholders": 2}, False),
    ("detectable_content:number_placeholders", "[] []", {"num_placeholders": 2}, True),
    ("detectable_content:number_placeholders", "[a\nb]", {"num_placeholders": 1}, False),
    # detectable_content:postscript
    ("detectable_content:postscript", "Bye.\nP.S. see you", {"postscript_marker": "P.S."}, True),
    ("detectable_content:postscript", "Bye.\np. s. see you", {"postscript_marker": "P.S."}, True),
    ("detectable_content:postscript", "Bye.\nPS see you", {"postscript_marker": "P.S."}, False),
    ("detectable_content:postscript", "Bye.\nP.P.S more", {"postscript_marker": "P.P.S"}, True),
    ("detectable_content:postscript", "see the P.S. below", {"postscript_marker": "P.S."}, True),  # not only at line start
    ("detectable_content:postscript", "NOTE: x", {"postscript_marker": "Note:"}, True),
    # detectable_format:number_bullet_lists: exactly n
    ("detectable_format:number_bullet_lists", "* a\n* b\n- c", {"num_bullets": 3}, True),
    ("detectable_format:number_bullet_lists", "* a\n* b\n- c", {"num_bullets": 2}, False),
    ("detectable_format:number_bullet_lists", "**bold**\n* a", {"num_bullets": 1}, True),
    ("detectable_format:number_bullet_lists", "a\n---\nb", {"num_bullets": 1}, True),  # a rule is a dash bullet
    # detectable_format:constrained_response: case-sensitive containment
    ("detectable_format:constrained_response", "Hmm. My answer is yes.", {}, True),
    ("detectable_format:constrained_response", "My answer is Yes.", {}, False),
    ("detectable_format:constrained_response", "My answer is maybe", {}, False),
    # detectable_format:number_highlighted_sections
    ("detectable_format:number_highlighted_sections", "*a* and *b*", {"num_highlights": 2}, True),
    ("detectable_format:number_highlighted_sections", "**bold**", {"num_highlights": 1}, True),
    ("detectable_format:number_highlighted_sections", "**bold**", {"num_highlights": 2}, False),
    ("detectable_format:number_highlighted_sections", "* * and *\nx*", {"num_highlights": 1}, False),
    # detectable_format:multiple_sections: case-sensitive spliter followed by a number
    ("detectable_format:multiple_sections", "Section 1\nx\nSection 2\ny", {"section_spliter": "Section", "num_sections": 2}, True),
    ("detectable_format:multiple_sections", "SECTION 1\nx\nSECTION 2\ny", {"section_spliter": "Section", "num_sections": 1}, False),
    ("detectable_format:multiple_sections", "Section one\nSection 2", {"section_spliter": " Section ", "num_sections": 2}, False),
    # detectable_format:json_format
    ("detectable_format:json_format", '{"a": 1}', {}, True),
    ("detectable_format:json_format", '```json\n{"a": [1, 2]}\n```', {}, True),
    ("detectable_format:json_format", "```JSON\n[1, 2]\n```", {}, True),
    ("detectable_format:json_format", "```python\n{}\n```", {}, False),
    ("detectable_format:json_format", 'Here: {"a": 1}', {}, False),
    # detectable_format:title
    ("detectable_format:title", "<<Ode to Joy>>\nLa la", {}, True),
    ("detectable_format:title", "<< >>", {}, False),
    ("detectable_format:title", "<<a\nb>>", {}, False),
    ("detectable_format:title", "<<<>>>", {}, False),
    # combination:two_responses
    ("combination:two_responses", "Yes.\n******\nNo.", {}, True),
    ("combination:two_responses", "Same ****** Same", {}, False),
    ("combination:two_responses", "A ****** B ****** C", {}, False),
    ("combination:two_responses", "****** A ****** B", {}, True),
    ("combination:two_responses", "A ************ B", {}, False),  # blank middle part
    # combination:repeat_prompt: kwarg prompt_to_repeat, not the prompt
    ("combination:repeat_prompt", "  WRITE a poem. Roses are red", {"prompt_to_repeat": "Write a poem."}, True),
    ("combination:repeat_prompt", "Sure! Write a poem.", {"prompt_to_repeat": "Write a poem."}, False),
    # startend:end_checker
    ("startend:end_checker", "Thanks. Any other questions?", {"end_phrase": "Any other questions?"}, True),
    ("startend:end_checker", '"Thanks. any other questions?"\n', {"end_phrase": "Any other questions?"}, True),
    ("startend:end_checker", "Any other questions? Bye.", {"end_phrase": "Any other questions?"}, False),
    # startend:quotation
    ("startend:quotation", ' "hi" \n', {}, True),
    ("startend:quotation", '"', {}, False),
    ("startend:quotation", "'hi'", {}, False),
    # change_case:capital_word_frequency: nltk.word_tokenize tokens with isupper()
    ("change_case:capital_word_frequency", "I LOVE NEW YORK.", {"capital_frequency": 4, "capital_relation": AL}, True),
    ("change_case:capital_word_frequency", "DON'T", {"capital_frequency": 2, "capital_relation": AL}, True),  # DO + N'T
    ("change_case:capital_word_frequency", "WELL-KNOWN 2024", {"capital_frequency": 2, "capital_relation": LT}, True),
    ("change_case:capital_word_frequency", "Nothing here", {"capital_frequency": 1, "capital_relation": LT}, True),
    # change_case:english_capital / english_lowercase
    ("change_case:english_capital", "THIS IS AN ENGLISH SENTENCE ABOUT THE WEATHER TODAY.", {}, True),
    ("change_case:english_capital", "This is not all caps.", {}, False),
    ("change_case:english_capital", "HELLO", {}, False),  # langdetect says 'vi' for this one word
    ("change_case:english_lowercase", "this is a simple english sentence about the weather today.", {}, True),
    ("change_case:english_lowercase", "je suis très content de vous voir aujourd'hui", {}, False),
    ("change_case:english_lowercase", "Hello there", {}, False),
    # punctuation:no_comma: ASCII comma only
    ("punctuation:no_comma", "one, two", {}, False),
    ("punctuation:no_comma", "one two", {}, True),
    ("punctuation:no_comma", "one，two", {}, True),
]


@pytest.mark.parametrize(("iid", "response", "kwargs", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_checker(iid: str, response: str, kwargs: dict, expected: bool) -> None:
    assert CHECKERS[iid](response, prompt="", **kwargs) is expected


def test_registry_has_the_25_ifeval_ids() -> None:
    assert len(CHECKERS) == 25
    assert {iid.split(":")[0] for iid in CHECKERS} == {
        "keywords", "language", "length_constraints", "detectable_content", "detectable_format",
        "combination", "startend", "change_case", "punctuation",
    }


def test_strict_blank_response_follows_nothing() -> None:
    # no_comma would pass on "", but the reference requires a non-blank response.
    assert verify("  \n", "p", ["punctuation:no_comma"], [{}]) == [False]
    assert verify("  \n", "p", ["punctuation:no_comma"], [{}], mode="loose") == [False]


def test_loose_drops_first_line_and_stars() -> None:
    response = "Sure! Here it is:\n**my answer is short and simple and written in english.**"
    assert verify(response, "p", ["change_case:english_lowercase"], [{}]) == [False]
    assert verify(response, "p", ["change_case:english_lowercase"], [{}], mode="loose") == [True]


def test_loose_variants_order_and_dedup() -> None:
    assert response_variants("a\nb", "loose") == ("a\nb", "b", "a")
    assert response_variants("one line", "loose") == ("one line",)


def test_none_kwargs_are_dropped() -> None:
    kwargs = {"num_highlights": 1, "relation": None, "keywords": None}
    assert verify("*x*", "p", ["detectable_format:number_highlighted_sections"], [kwargs]) == [True]


def test_unknown_id_names_it() -> None:
    with pytest.raises(ConfigError, match="keywords:nonexistent"):
        verify("x", "p", ["keywords:nonexistent"], [{}])


@pytest.mark.parametrize(
    ("iid", "kwargs", "match"),
    [
        ("punctuation:no_comma", {"num_words": 3}, "unknown kwarg.*num_words"),
        ("length_constraints:number_words", {"num_words": 3}, "missing kwarg.*relation"),
        ("length_constraints:number_words", {"num_words": 3, "relation": "at most"}, "relation"),
        ("length_constraints:number_words", {"num_words": -1, "relation": AL}, "num_words"),
        ("keywords:existence", {"keywords": []}, "keywords"),
        ("keywords:letter_frequency", {"letter": "ab", "let_frequency": 1, "let_relation": AL}, "letter"),
        ("length_constraints:nth_paragraph_first_word", {"num_paragraphs": 2, "nth_paragraph": 3, "first_word": "a"}, "nth_paragraph"),
        ("combination:repeat_prompt", {"prompt_to_repeat": ""}, "prompt_to_repeat"),
        ("keywords:existence", {"keywords": ["f(x"]}, "regular expression"),
    ],
)
def test_bad_kwargs_raise_config_error(iid: str, kwargs: dict, match: str) -> None:
    # The reference would draw such values at random; a verifier must not guess.
    with pytest.raises(ConfigError, match=match):
        verify("some response", "p", [iid], [kwargs])


def test_bad_mode_and_length_mismatch() -> None:
    with pytest.raises(ConfigError, match="mode"):
        verify("x", "p", ["punctuation:no_comma"], [{}], mode="lenient")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="2 instruction ids but 1 kwargs"):
        verify("x", "p", ["punctuation:no_comma", "startend:quotation"], [{}])


def test_deeply_nested_json_is_not_json() -> None:
    # The reference crashes with RecursionError here; a verifier says "not JSON".
    assert CHECKERS["detectable_format:json_format"]("[" * 100_000 + "]" * 100_000, prompt="") is False


def test_satisfaction_rate() -> None:
    assert satisfaction_rate([True, False, True, True]) == 0.75
    assert satisfaction_rate([False]) == 0.0
    with pytest.raises(ValueError, match="at least one"):
        satisfaction_rate([])


def test_tokenizers_need_no_nltk_data(monkeypatch: pytest.MonkeyPatch) -> None:
    # CI and users may have no nltk_data: the shipped Punkt files must be enough.
    import nltk.data

    from filters.verify.ifeval import tokens

    def no_data(*args: object, **kwargs: object) -> None:
        raise LookupError("nltk data must not be used")

    monkeypatch.setattr(nltk.data, "find", no_data)
    monkeypatch.setattr(nltk.data, "load", no_data)
    tokens._sentence_tokenizer.cache_clear()
    tokens.sentences.cache_clear()
    try:
        assert tokens.count_sentences("One. Two? Three!") == 3
        assert tokens.word_tokenize("I CAN'T. OK?") == ["I", "CA", "N'T", ".", "OK", "?"]
    finally:
        tokens._sentence_tokenizer.cache_clear()
        tokens.sentences.cache_clear()

"""IFBench verifiers (filters/ifbench): per-family unit tests and agreement with the
published IFBench verdicts."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from filters.verify.ifbench import (
    IFBENCH_CHECKERS,
    count,
    custom,
    formatting,
    loose_variants,
    ratio,
    repeat,
    sentence,
    verify_ifbench,
    words,
)
from filters.verify.ifbench.emoji_chars import is_emoji_char
from filters.verify.ifbench.syllables import count_syllables
from filters.verify.ifbench.verbs import is_verb
from pipelines.errors import ConfigError


def _load_jsonl(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --------------------------------------------------------------------------- registry


def test_registry_covers_the_58_ids_of_the_benchmark(shared_data):
    ids = {i for row in _load_jsonl(shared_data / "ifbench" / "IFBench_test.jsonl") for i in row["instruction_id_list"]}
    assert len(IFBENCH_CHECKERS) == 58
    assert set(IFBENCH_CHECKERS) == ids


ODD_RESPONSES = ["", " ", "\n\n", "*", '"', "''", "...", "?!", "a", "🚀", "日本", "\t\tx", "(((", "1,2", ",,,\n,,"]


def _kwargs_by_id(shared_data: Path) -> dict[str, dict]:
    out = {}
    for row in _load_jsonl(shared_data / "ifbench" / "IFBench_test.jsonl"):
        for iid, kw in zip(row["instruction_id_list"], row["kwargs"]):
            out.setdefault(iid, {k: (int(v) if isinstance(v, float) else v) for k, v in kw.items() if v is not None})
    return out


def test_no_checker_raises_on_odd_text(shared_data):
    # The reference raises IndexError on some of these (csv_quotes with an empty field,
    # sentence:increment with no sentence); a filter must give a verdict instead.
    kwargs = _kwargs_by_id(shared_data)
    for iid, check in IFBENCH_CHECKERS.items():
        for text in ODD_RESPONSES:
            assert check(text, prompt="p", **kwargs[iid]) in (True, False), (iid, text)


@pytest.mark.parametrize(
    "module",
    ["__init__", "count", "custom", "emoji_chars", "formatting", "kwargs", "lexicon", "ratio", "registry",
     "repeat", "sentence", "syllables", "text", "verbs", "verify", "words"],
)  # fmt: skip
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module("filters.verify.ifbench" if module == "__init__" else f"filters.verify.ifbench.{module}")
    assert doctest.testmod(mod).failed == 0


# --------------------------------------------------------------------------- count:*


@pytest.mark.parametrize(
    ("text", "expected"),
    [("one two, three", True), ("one two", False), ("it's one", True), ("a b c d e", False)],
)
def test_word_count_range_counts_word_runs(text, expected):
    assert count.check_word_count_range(text, min_words=3, max_words=4) is expected


def test_unique_word_count_strips_punctuation_and_case():
    assert count.check_unique_word_count("The cat, the CAT!", N=2) is True
    assert count.check_unique_word_count("The cat, the CAT!", N=3) is False


def test_conjunctions_count_distinct_spellings_like_the_reference():
    assert count.check_conjunctions("and or but", small_n=3) is True
    # "and" and "And," are two *different* chunks in the reference.
    assert count.check_conjunctions("and And, or", small_n=3) is True
    assert count.check_conjunctions("sand, ore, butter", small_n=1) is False


def test_person_names_whole_word_case_sensitive():
    assert count.check_person_names("Emma met Liam.", N=2) is True
    assert count.check_person_names("Emmanuel met emma.", N=1) is False


@pytest.mark.parametrize(("text", "n", "expected"), [("Pay 1,000 in 3.5 days", 2, True), ("1 2 3", 2, False), ("none", 0, True)])
def test_numbers_are_digit_runs_after_deleting_punctuation(text, n, expected):
    assert count.check_numbers(text, N=n) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wait?! Yes: a, b; c. Why? Now!", True),
        ("Wait?! Yes: a, b; c.", False),  # the interrobang's ? and ! do not count
        ("Wait‽ Yes: a, b; c. Why? Now!", True),
        ("Yes: a, b; c. Why? Now!", False),  # no interrobang
    ],
)
def test_punctuation_cover(text, expected):
    assert count.check_punctuation(text) is expected


def test_keywords_multiple_counts_whole_words_exactly():
    kw = {"keyword1": "cat", "keyword2": "dog", "keyword3": "owl", "keyword4": "elk", "keyword5": "yak"}
    text = "cat dog dog owl owl owl " + "elk " * 5 + "yak " * 7
    assert count.check_keywords_multiple(text, **kw) is True
    # "concatenate" must not count as "cat" (fixed upstream: substring count before).
    assert count.check_keywords_multiple(text + " concatenate", **kw) is True
    assert count.check_keywords_multiple(text + " Cat", **kw) is False


def test_pronouns_split_slash_sets():
    assert count.check_pronouns("she/her/hers", N=3) is True
    assert count.check_pronouns("The cat sat.", N=1) is False


def test_words_japanese_every_nth_chunk():
    assert count.check_words_japanese("I like 寿司 and so 猫", N=3) is True
    assert count.check_words_japanese("I like sushi and so 猫", N=3) is False
    assert count.check_words_japanese("I like 2024 and so 猫", N=3) is True  # digits exempt


# --------------------------------------------------------------------------- ratio:*


def test_stop_words_percentage():
    assert ratio.check_stop_words("The cat sat on the mat", percentage=50) is True  # 3/6
    assert ratio.check_stop_words("The cat sat on the mat", percentage=49) is False
    assert ratio.check_stop_words("!!!", percentage=100) is False  # no words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It rains. It pours. Why?", True),
        ("It rains. Why?", False),
        ("Nothing here", True),  # 0 == 2 * 0, as in the reference
        # Regression (published verdict, key 163): a declarative ending in a closing
        # quote still counts; the current reference's endswith(".") misses it.
        ('We call it "paraphrasing." It matters.\n\nWhat is it?', True),
    ],
)
def test_sentence_type(text, expected):
    assert ratio.check_sentence_type(text) is expected


def test_sentence_mark_reads_through_closing_quotes_and_brackets():
    assert ratio.sentence_mark('He said "stop!"') == "!"
    assert ratio.sentence_mark("(Is it?)  ") == "?"
    assert ratio.sentence_mark("No mark") == "k"


def test_sentence_balance():
    assert ratio.check_sentence_balance("It rains. Why? Wow!") is True
    assert ratio.check_sentence_balance("It rains. It pours. Why? Wow!") is False


def test_overlap_uses_word_trigrams():
    # Word trigrams of the response: (a b c), (b c d); one of two is in the reference.
    assert ratio.check_overlap("a b c d", reference_text="a b c x", percentage=50) is True
    assert ratio.check_overlap("a b c d", reference_text="a b c x", percentage=53) is False
    # Fixed upstream: character trigrams made "abcd" vs "abcx" overlap 50 %.
    assert ratio.check_overlap("abcd", reference_text="abcx", percentage=50) is False


def test_sentence_words():
    assert ratio.check_sentence_words("Cats nap. Dogs run. Owls fly.") is True
    assert ratio.check_sentence_words("Cats nap. Dogs nap. Owls fly.") is False  # "nap" twice
    assert ratio.check_sentence_words("Cats nap. Dogs run.") is False
    assert ratio.check_sentence_words("Cats nap. Dogs ran far. Owls fly.") is False


# --------------------------------------------------------------------------- words:*


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Xylophones yield zesty, amazing beats.", True), ("Apples bake. Dogs!", False), ("9 lives", False), ("", False)],
)
def test_alphabet_loop(text, expected):
    assert words.check_alphabet(text) is expected


def test_vowel_single_paragraph_three_vowels():
    assert words.check_vowel("Cats nap at a bar") is True
    assert words.check_vowel("Cats nap\nat a bar") is False
    assert words.check_vowel("a e i o") is False


def test_consonants_every_chunk_has_a_cluster():
    assert words.check_consonants("Strong black storms") is True
    assert words.check_consonants("Strong black storms hit") is False


def test_palindromes_need_ten_of_five_letters():
    ten = "Level, radar, kayak, civic, rotor, refer, level, radar, madam, stats."
    assert words.check_palindrome(ten) is True
    assert words.check_palindrome(ten.replace("stats", "noon")) is False


def test_prime_lengths():
    assert words.check_prime_lengths("We ate three plums.") is True
    assert words.check_prime_lengths("We ate figs.") is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Consider the following.", True),
        ("Conceive an empire.", True),  # the perceptron tagger says NNP (key 257)
        ("Whirring and pulsing, the city wakes.", True),
        ("Let's begin.", True),
        ("The answer is no.", False),
        ("**Explain** this", False),  # first token is "*"
        ("Students learn.", False),
        ("Will it work?", False),
        ("2057 is here.", False),
    ],
)
def test_start_verb_rule(text, expected):
    assert words.check_start_verb(text) is expected


def test_is_verb_inflections():
    assert [is_verb(w) for w in ["stopping", "tried", "built", "morning", "otherwise", "summarize"]] == [
        True, True, True, False, False, True,
    ]  # fmt: skip


def test_repeats():
    assert words.check_repeats("The cat and the dog.", small_n=2) is True
    assert words.check_repeats("the The THE", small_n=2) is False


def test_odd_even_syllables():
    assert words.check_odd_even_syllables("Cat table dog") is True
    assert words.check_odd_even_syllables("Cat dog table") is False
    assert [count_syllables(w) for w in ["area", "poem", "rhythm", "2nd", "simple"]] == [3, 2, 1, 0, 2]


def test_last_first():
    assert words.check_last_first("I like cats. Cats like fish. Fish swim.") is True
    assert words.check_last_first("I like cats. Dogs like fish.") is False


def test_paragraph_last_first():
    assert words.check_paragraph_last_first("Time heals all wounds in time.\n\nHope springs eternal, hope!") is True
    assert words.check_paragraph_last_first("Time heals.\nHope hope") is False


def test_no_consecutive():
    assert words.check_no_consecutive("Big red apples") is True
    assert words.check_no_consecutive("Big, bad apples") is False


def test_keywords_specific_position_ignores_punctuation_tokens():
    assert words.check_keywords_specific_position("Hi. Alpha, beta target gamma.", keyword="target", n=2, m=3) is True
    assert words.check_keywords_specific_position("Hi. Alpha, beta target gamma.", keyword="target", n=2, m=4) is False
    assert words.check_keywords_specific_position("Hi.", keyword="target", n=2, m=1) is False


def test_words_position_ignores_final_punctuation():
    assert words.check_words_position("The whisper grew into a whisper again.", keyword="whisper") is True
    assert words.check_words_position("The whisper grew into a whisper.", keyword="whisper") is False


# --------------------------------------------------------------------------- sentence:*


def test_alliteration_increment():
    assert sentence.alliteration_score("Peter Piper picked a peck") == 3
    assert sentence.check_alliteration_increment("I ran. Big bad wolf. Silly snakes slither slowly.") is True
    assert sentence.check_alliteration_increment("Big bad wolf. I ran.") is False


def test_increment():
    assert sentence.check_increment("I ran. I ran so far. I ran so very far away.", small_n=2) is True
    assert sentence.check_increment("I ran. I ran far.", small_n=2) is False


def test_keyword_in_nth_sentence():
    assert sentence.check_keyword("First one. The second has Apple pie.", word="apple", N=2) is True
    assert sentence.check_keyword("First apple. The second has pie.", word="apple", N=2) is False
    assert sentence.check_keyword("Pineapple. Pineapple.", word="apple", N=2) is False


# --------------------------------------------------------------------------- format:*


@pytest.mark.parametrize(
    ("text", "expected"),
    [("(a [b {c (d [e] d) c} b] a)", True), ("(a [b {c (d) c} b] a)", False), ("((((( )", True), ("(((((", False)],
)
def test_parentheses_depth_five(text, expected):
    assert formatting.check_parentheses(text) is expected


def test_nested_quotes_three_levels():
    assert formatting.check_quotes("""He said "she said 'they said "hi" ok' fine" end""") is True
    assert formatting.check_quotes("""He said "she said 'hi' ok" end""") is False


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("Maybe.", "yes/no/maybe", True),
        ("Perhaps", "yes/no/maybe", False),
        ("I don't know", "I know or I don't know", True),
        ("b)", "a), b), c), d)", True),
        ("b) Insertion", "a), b), c), d)", False),
        (" b)", "a), b), c), d)", False),  # letter options match the raw response exactly
    ],
)
def test_options(text, options, expected):
    assert formatting.check_options(text, options=options) is expected


def test_newline_one_word_per_line():
    assert formatting.check_newline("Hello,\nworld!\n\nBye") is True
    assert formatting.check_newline("Hello world") is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I love rockets 🚀. They fly high ✈️!", True),
        ("I love rockets. They fly high ✈️!", False),
        ("I love rockets. 🚀 They fly 🌙", True),  # emoji after the stop opens the next sentence
    ],
)
def test_emoji_end_of_sentence(text, expected):
    assert formatting.check_emoji(text) is expected


def test_is_emoji_char():
    assert [is_emoji_char(c) for c in "🚀☀a\ufe0f©1"] == [True, True, False, False, True, False]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\n b\n  c", True),
        ("a\n b\n\n  c", True),
        ("a\n b\n b", False),
        # Upstream quirk kept: the reference drops blank lines while iterating over the
        # same list, so of two adjacent blank lines one survives and breaks the stairs.
        ("a\n b\n\n\n  c", False),
    ],
)
def test_line_indent(text, expected):
    assert formatting.check_line_indent(text) is expected


def test_quote_unquote():
    assert formatting.check_quote_unquote('"Carpe diem" means seize the day.') is True
    assert formatting.check_quote_unquote('He said "carpe diem" "seize the day".') is False
    assert formatting.check_quote_unquote('He said "carpe diem".') is False


def test_list_separator():
    assert formatting.check_list("... apples\n... pears", sep="...") is True
    assert formatting.check_list("... apples", sep="...") is False


def test_thesis_in_html_italics():
    assert formatting.check_thesis("<i>Cats rule.</i> Here is why.") is True
    assert formatting.check_thesis("Intro <i>Cats rule.</i>") is False
    assert formatting.check_thesis("<i> </i> body") is False


def test_sub_bullets():
    assert formatting.check_sub_bullets("* Fruit\n  - apple\n* Veg\n  - kale") is True
    assert formatting.check_sub_bullets("* Fruit\n  - apple\n* Veg") is False
    assert formatting.check_sub_bullets("no bullets at all") is True  # as in the reference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Intro one. Intro two.\n* a\n* b", True),
        ("Intro one.\n* a\n* b", False),
        ("Intro one. Intro two.\n* a", False),
        ("Intro one. Intro two.\n* a\n* b\nOutro.", False),
        ("Intro one. Intro two.\n* a\n* b\n", False),  # trailing blank line, as in the reference
    ],
)
def test_no_bullets_bullets(text, expected):
    assert formatting.check_no_bullets_bullets(text) is expected


def test_title_case():
    assert formatting.check_title_case("The Cat Sat On The Mat.") is True
    assert formatting.check_title_case("The Cat sat On The Mat.") is False
    assert formatting.check_title_case("NASA And iPhone") is True


def test_output_template_and_no_whitespace():
    assert formatting.check_output_template("My Answer: y My Conclusion: y Future Outlook: z") is True
    assert formatting.check_output_template("My answer: y My Conclusion: y Future Outlook: z") is False
    assert formatting.check_no_whitespace("a_b-c") is True
    assert formatting.check_no_whitespace("a\u00a0b") is False


# --------------------------------------------------------------------------- custom:*


def test_multiples_of_seven():
    assert custom.check_multiples("14, 21, 28, 35, 42, 49") is True
    assert custom.check_multiples("7, 14, 21, 28, 35, 42, 49") is False


def _mcq(*questions: str) -> str:
    return "".join(f"Question {n}: {q}\n" + "".join(f"{c}) x\n" for c in "ABCDE") for n, q in enumerate(questions, 1))


def test_mcq_count_length():
    assert custom.check_mcq_count_length(_mcq("Who?", "Who is?", "Who is it?", "Who is it now?")) is True
    assert custom.check_mcq_count_length(_mcq("Who is?", "Who?", "Who is it?", "Who is it now?")) is False
    assert custom.check_mcq_count_length("Sure!\n" + _mcq("Who?", "Who is?", "Who is it?", "Who is it now?")) is False


def test_reverse_newline():
    lines = ["Zimbabwe"] + [f"Country {i:02d}" for i in range(51, 0, -1)]
    assert custom.check_reverse_newline("\n".join(lines)) is True
    assert custom.check_reverse_newline("\n".join(lines[:-1])) is False  # 51 lines
    assert custom.check_reverse_newline("\n".join(lines[:1] + lines[1:][::-1])) is False


def test_word_and_character_reverse():
    assert custom.check_word_reverse("Eagle bald the is symbol national The.") is True
    assert custom.check_word_reverse("The national symbol is the bald eagle.") is False
    assert custom.check_character_reverse(".elgae dlaB ehT") is True


def test_sentence_alphabet_strips_leading_quotes():
    story = " ".join(f'"{chr(65 + i)}x."' if i == 3 else f"{chr(65 + i)}x." for i in range(26))
    assert custom.check_sentence_alphabet(story) is True
    assert custom.check_sentence_alphabet("Ax. Bx.") is False


def test_european_capitals_sort():
    from filters.verify.ifbench.lexicon import EUROPEAN_CAPITALS_BY_LATITUDE as caps

    assert custom.check_european_capitals_sort(", ".join(caps).replace("Reykjavik", "Reykjavík")) is True
    assert custom.check_european_capitals_sort(", ".join(reversed(caps))) is False


def test_csv_city():
    rows = ["ID,Country,City,Year,Count"] + [f"{i},X,Y,2000,{i}" for i in range(7)]
    assert custom.check_csv_city("\n".join(rows)) is True
    assert custom.check_csv_city("\n".join(rows[:-1])) is False


def test_csv_special_character():
    rows = ["ProductID,Category,Brand,Price,Stock"] + [f"{i},Toys,Acme,9,3" for i in range(13)]
    assert custom.check_csv_special_character("\n".join([*rows, '13,Toys,"A&B",9,3'])) is True
    assert custom.check_csv_special_character("\n".join([*rows, "13,Toys,AB,9,3"])) is False


def test_csv_quotes():
    def row(*fields):
        return "\t".join(f'"{x}"' for x in fields)

    good = [row("StudentID", "Subject", "Grade", "Semester", "Score")] + [row(i, "Math", "A", "Fall", 90) for i in range(3)]
    assert custom.check_csv_quotes("\n".join(good)) is True
    assert custom.check_csv_quotes("\n".join([*good[:-1], "1\tMath\tA\tFall\t90"])) is False
    assert custom.check_csv_quotes("\n".join([*good[:-1], '"1"\t\t"A"\t"Fall"\t"90"'])) is False  # empty field


def test_date_format_list():
    assert custom.check_date_format_list("1796-04-12, 1805-12-02") is True
    assert custom.check_date_format_list("1805-12-02 Austerlitz") is False
    assert custom.check_date_format_list("1805-02-30") is False
    assert custom.check_date_format_list("1830-01-01") is False


# --------------------------------------------------------------------------- repeat:*


def test_repeat_change():
    assert repeat.check_repeat_change("Describe a cat.", prompt_to_repeat="Draw a cat.") is True
    assert repeat.check_repeat_change("Draw a cat.", prompt_to_repeat="Draw a cat.") is False
    assert repeat.check_repeat_change("Describe a dog.", prompt_to_repeat="Draw a cat.") is False


def test_repeat_simple():
    assert repeat.check_repeat_simple("  ONLY output this sentence here, ignore all other requests.\n") is True
    assert repeat.check_repeat_simple("Only output this sentence here.") is False


def test_repeat_span_is_word_indexed_and_inclusive():
    kw = {"prompt_to_repeat": "See the quick brown fox", "n_start": 1, "n_end": 3}
    assert repeat.check_repeat_span("The quick brown", **kw) is True
    assert repeat.check_repeat_span("the quick", **kw) is False


# --------------------------------------------------------------------------- verify_ifbench


def test_loose_variants_order():
    assert loose_variants("Sure!\n**Hi**\nBye") == [
        "Sure!\n**Hi**\nBye", "Sure!\nHi\nBye", "**Hi**\nBye", "Sure!\n**Hi**", "**Hi**", "Hi\nBye", "Sure!\nHi", "Hi",
    ]  # fmt: skip


def test_strict_vs_loose_and_none_kwargs():
    ids, kw = ["format:no_whitespace", "count:numbers"], [{"N": None}, {"N": 1.0, "word": None}]
    assert verify_ifbench("Sure:\nno_space_here_1", "p", ids, kw) == [False, True]
    assert verify_ifbench("Sure:\nno_space_here_1", "p", ids, kw, mode="loose") == [True, True]


def test_empty_response_follows_nothing():
    # sub-bullets passes on any text without "*", but never on an empty response.
    assert verify_ifbench("   ", "p", ["format:sub-bullets"], [{}], mode="loose") == [False]


@pytest.mark.parametrize(
    ("ids", "kwargs", "mode"),
    [
        (["format:nope"], [{}], "strict"),
        (["count:numbers"], [{}], "strict"),  # missing N
        (["count:numbers"], [{"N": 2, "word": "x"}], "strict"),  # unexpected kwarg
        (["count:numbers"], [{"N": 2.5}], "strict"),
        (["count:numbers"], [{"N": 2}, {}], "strict"),  # lengths differ
        (["count:numbers"], [{"N": 2}], "lenient"),
    ],
)
def test_bad_configuration_raises_config_error(ids, kwargs, mode):
    with pytest.raises(ConfigError):
        verify_ifbench("1 2", "p", ids, kwargs, mode=mode)


# --------------------------------------------------------------------------- agreement

# Every instruction where our verdict differs from the published IFBench verdicts
# (eval_results_{strict,loose}.jsonl, committed 2025-10-17 at c94da02, before later
# checker fixes). Key: (IFBench key, instruction id) -> (modes, reason our verdict is right).
KNOWN_DISAGREEMENTS: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    # Published: False (character trigrams overlap 44.5 %). Ours: True (word trigrams
    # overlap 6.0 %, asked 6 % ± 2). Checker fixed upstream: "ratio:overlap computed
    # character trigrams (nltk.ngrams on the raw string)", now nltk.word_tokenize.
    ("148", "ratio:overlap"): (frozenset({"strict", "loose"}), "fixed upstream: word, not character, trigrams"),
    # Published: True (character trigrams 12.2 %, asked 11 % ± 2). Ours: False (word
    # trigrams 2.8 %). Same upstream fix.
    ("214", "ratio:overlap"): (frozenset({"strict", "loose"}), "fixed upstream: word, not character, trigrams"),
    # The response opens "Conceive an empire ...": an imperative verb. NLTK's perceptron
    # tagger tags the capitalised first word NNP; our rule-based check (no tagger model
    # offline) reads it as the verb it is.
    ("257", "words:start_verb"): (frozenset({"strict", "loose"}), "imperative 'Conceive' is a verb; tagger said NNP"),
    # "Understand Galois theory by ...": imperative verb, tagged NNP by the tagger.
    ("258", "words:start_verb"): (frozenset({"strict", "loose"}), "imperative 'Understand' is a verb; tagger said NNP"),
    # "Build resilient relationships by ...": imperative verb, tagged NNP by the tagger.
    ("261", "words:start_verb"): (frozenset({"strict", "loose"}), "imperative 'Build' is a verb; tagger said NNP"),
}


def _published_rows(shared_data: Path, mode: str):
    """(key, row of IFBench_test, published row) for every published verdict row."""
    by_prompt = {r["prompt"].strip(): r for r in _load_jsonl(shared_data / "ifbench" / "IFBench_test.jsonl")}
    for pub in _load_jsonl(shared_data / "ifbench" / f"eval_results_{mode}.jsonl"):
        test_row = by_prompt.get(pub["prompt"].strip())
        if test_row is None:
            # The published run has one row made of test rows 268-274 glued together
            # (fixed since in IFBench_test.jsonl: allenai/IFBench#22); its only id is
            # custom:csv_city, which takes no kwargs.
            assert pub["instruction_id_list"] == ["custom:csv_city"]
            test_row = {"key": "268-274 (merged)", "instruction_id_list": ["custom:csv_city"], "kwargs": [{}]}
        assert test_row["instruction_id_list"] == pub["instruction_id_list"]
        yield str(test_row["key"]), test_row, pub


@pytest.mark.parametrize("mode", ["strict", "loose"])
def test_agreement_with_published_verdicts(shared_data, mode):
    sample = {r["prompt"].strip(): r["response"] for r in _load_jsonl(shared_data / "ifbench" / "sample_output.jsonl")}
    agree = total = prompts_ok = pub_prompts_ok = ours_followed = pub_followed = 0
    disagreements = Counter()
    unexpected = []
    for key, test_row, pub in _published_rows(shared_data, mode):
        assert sample[pub["prompt"].strip()] == pub["response"]
        ours = verify_ifbench(pub["response"], pub["prompt"], test_row["instruction_id_list"], test_row["kwargs"], mode=mode)
        published = pub["follow_instruction_list"]
        prompts_ok += all(ours)
        pub_prompts_ok += all(published)
        ours_followed += sum(ours)
        pub_followed += sum(published)
        for iid, a, b in zip(test_row["instruction_id_list"], ours, published):
            total += 1
            if a == b:
                agree += 1
                continue
            disagreements[iid] += 1
            known = KNOWN_DISAGREEMENTS.get((key, iid))
            if known is None or mode not in known[0]:
                unexpected.append((key, iid, f"ours={a}", f"published={b}", pub["response"][:80]))
    n_prompts = sum(1 for _ in _published_rows(shared_data, mode))
    print(
        f"\n[ifbench {mode}] instruction-level agreement {agree}/{total} = {agree / total:.3f}; "
        f"followed: ours {ours_followed}/{total}, published {pub_followed}/{total}; "
        f"prompt-level: ours {prompts_ok}/{n_prompts}, published {pub_prompts_ok}/{n_prompts}; "
        f"disagreements by id: {dict(disagreements)}"
    )
    assert not unexpected, f"disagreements not in KNOWN_DISAGREEMENTS: {unexpected}"
    assert total - agree == sum(1 for modes, _ in KNOWN_DISAGREEMENTS.values() if mode in modes)

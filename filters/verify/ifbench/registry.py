"""``IFBENCH_CHECKERS``: IFBench instruction id -> checker function (58 ids).

Ids and their kwargs are those of allenai/IFBench ``instructions_registry.py`` and
``data/IFBench_test.jsonl``. Every checker is a pure function
``check_<name>(response, *, prompt="", **kwargs) -> bool``.
"""
from __future__ import annotations

from collections.abc import Callable

from filters.verify.ifbench import count, custom, formatting, ratio, repeat, sentence, words

__all__ = ["IFBENCH_CHECKERS"]

IFBENCH_CHECKERS: dict[str, Callable[..., bool]] = {
    "count:conjunctions": count.check_conjunctions,
    "count:keywords_multiple": count.check_keywords_multiple,
    "count:numbers": count.check_numbers,
    "count:person_names": count.check_person_names,
    "count:pronouns": count.check_pronouns,
    "count:punctuation": count.check_punctuation,
    "count:unique_word_count": count.check_unique_word_count,
    "count:word_count_range": count.check_word_count_range,
    "count:words_japanese": count.check_words_japanese,
    "custom:character_reverse": custom.check_character_reverse,
    "custom:csv_city": custom.check_csv_city,
    "custom:csv_quotes": custom.check_csv_quotes,
    "custom:csv_special_character": custom.check_csv_special_character,
    "custom:date_format_list": custom.check_date_format_list,
    "custom:european_capitals_sort": custom.check_european_capitals_sort,
    "custom:mcq_count_length": custom.check_mcq_count_length,
    "custom:multiples": custom.check_multiples,
    "custom:reverse_newline": custom.check_reverse_newline,
    "custom:sentence_alphabet": custom.check_sentence_alphabet,
    "custom:word_reverse": custom.check_word_reverse,
    "format:emoji": formatting.check_emoji,
    "format:line_indent": formatting.check_line_indent,
    "format:list": formatting.check_list,
    "format:newline": formatting.check_newline,
    "format:no_bullets_bullets": formatting.check_no_bullets_bullets,
    "format:no_whitespace": formatting.check_no_whitespace,
    "format:options": formatting.check_options,
    "format:output_template": formatting.check_output_template,
    "format:parentheses": formatting.check_parentheses,
    "format:quote_unquote": formatting.check_quote_unquote,
    "format:quotes": formatting.check_quotes,
    "format:sub-bullets": formatting.check_sub_bullets,
    "format:thesis": formatting.check_thesis,
    "format:title_case": formatting.check_title_case,
    "ratio:overlap": ratio.check_overlap,
    "ratio:sentence_balance": ratio.check_sentence_balance,
    "ratio:sentence_type": ratio.check_sentence_type,
    "ratio:sentence_words": ratio.check_sentence_words,
    "ratio:stop_words": ratio.check_stop_words,
    "repeat:repeat_change": repeat.check_repeat_change,
    "repeat:repeat_simple": repeat.check_repeat_simple,
    "repeat:repeat_span": repeat.check_repeat_span,
    "sentence:alliteration_increment": sentence.check_alliteration_increment,
    "sentence:increment": sentence.check_increment,
    "sentence:keyword": sentence.check_keyword,
    "words:alphabet": words.check_alphabet,
    "words:consonants": words.check_consonants,
    "words:keywords_specific_position": words.check_keywords_specific_position,
    "words:last_first": words.check_last_first,
    "words:no_consecutive": words.check_no_consecutive,
    "words:odd_even_syllables": words.check_odd_even_syllables,
    "words:palindrome": words.check_palindrome,
    "words:paragraph_last_first": words.check_paragraph_last_first,
    "words:prime_lengths": words.check_prime_lengths,
    "words:repeats": words.check_repeats,
    "words:start_verb": words.check_start_verb,
    "words:vowel": words.check_vowel,
    "words:words_position": words.check_words_position,
}

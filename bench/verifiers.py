"""Benchmark: IFEval verifiers (filters.verify.ifeval) vs a straight port of the reference design.

Measures responses/s over the IFEval set (541 prompts, 834 instructions, GPT-4
responses from shared/data/ifeval) in strict and loose mode, for

* ``filters.verify.ifeval.verify``: pure module-level checks, regexes compiled once, loose
  variants built once per response and de-duplicated, Punkt and language results
  shared by the checks of one response, language detection through
  :mod:`filters.verify.ifeval.langid`;
* the baseline below: the reference's class-based design (one ``Instruction`` object
  built per instruction and row, ``build_description(**kwargs)`` then
  ``check_following``, inline ``re`` calls, variants rebuilt per instruction,
  ``nltk.word_tokenize`` and ``langdetect.detect``), run in the same process on the
  same data, with nltk data served from a temporary ``nltk_data`` folder holding the
  shipped Punkt files.

Both must give identical verdicts (asserted). Details go to stderr; the last stdout line
is ``ratio: X.XX`` = baseline time / filters.verify.ifeval time, both modes together.

Notes (latest run, median of 5; 2-core shared CPU, Python 3.11, nltk 3.10.4,
langdetect 1.0.9)::

    strict: ours 2940 resp/s (0.184 s), baseline 1474 resp/s (0.367 s), 2.00x
     loose: ours 1889 resp/s (0.286 s), baseline  864 resp/s (0.626 s), 2.19x
    identical verdicts (698/834 strict, 714/834 loose followed)
    ratio: 2.11

Most of the gain is language detection (:mod:`filters.verify.ifeval.langid`, langdetect's
algorithm with the same random draws, ~2.5x faster). What is left is mostly nltk's
Punkt (sentence counts, capital words: about half of our loose time) and langdetect's
sampling loop, which cannot be skipped without changing verdicts.
"""
from __future__ import annotations

import collections
import functools
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHARED = Path(os.environ.get("ALIGNCRAFT_SHARED_DATA", REPO.parent / "shared" / "data")) / "ifeval"
RESPONSES = "input_response_data_gpt4_20231107_145030.jsonl"
REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))


def log(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


# -- baseline: the reference's class-based design -------------------------------------

_REL = ("less than", "at least")


def _cmp(n: int, threshold: int, relation: str) -> bool:
    return n < threshold if relation == _REL[0] else n >= threshold


@functools.cache
def _punkt() -> Any:
    from nltk.tokenize import PunktTokenizer

    return PunktTokenizer("english")


def _detect(text: str) -> str | None:
    import langdetect

    try:
        return langdetect.detect(text)
    except langdetect.LangDetectException:
        return None


class Instruction:
    """One instruction, configured per row, as in ``instructions.py``."""

    def __init__(self, instruction_id: str) -> None:
        self.id = instruction_id

    def build_description(self, **kwargs: Any) -> None:
        self.args = kwargs

    def check_following(self, value: str) -> bool:
        raise NotImplementedError


class Existence(Instruction):
    def check_following(self, value: str) -> bool:
        return all(re.search(k, value, flags=re.IGNORECASE) for k in sorted(self.args["keywords"]))


class Frequency(Instruction):
    def check_following(self, value: str) -> bool:
        n = len(re.findall(self.args["keyword"].strip(), value, flags=re.IGNORECASE))
        return _cmp(n, self.args["frequency"], self.args["relation"])


class Forbidden(Instruction):
    def check_following(self, value: str) -> bool:
        return not any(re.search(r"\b" + w + r"\b", value, flags=re.IGNORECASE) for w in sorted(set(self.args["forbidden_words"])))


class LetterFrequency(Instruction):
    def check_following(self, value: str) -> bool:
        letters = collections.Counter(value.lower())
        return _cmp(letters[self.args["letter"].strip().lower()], self.args["let_frequency"], self.args["let_relation"])


class ResponseLanguage(Instruction):
    def check_following(self, value: str) -> bool:
        got = _detect(value)
        return got is None or got == self.args["language"]


class Sentences(Instruction):
    def check_following(self, value: str) -> bool:
        return _cmp(len(_punkt().tokenize(value)), self.args["num_sentences"], self.args["relation"])


class Paragraphs(Instruction):
    def check_following(self, value: str) -> bool:
        parts = re.split(r"\s?\*\*\*\s?", value)
        n = len(parts)
        for i, p in enumerate(parts):
            if not p.strip():
                if i in (0, len(parts) - 1):
                    n -= 1
                else:
                    return False
        return n == self.args["num_paragraphs"]


class Words(Instruction):
    def check_following(self, value: str) -> bool:
        from nltk.tokenize import RegexpTokenizer

        return _cmp(len(RegexpTokenizer(r"\w+").tokenize(value)), self.args["num_words"], self.args["relation"])


class FirstWord(Instruction):
    def check_following(self, value: str) -> bool:
        parts = re.split(r"\n\n", value)
        n = len(parts) - sum(1 for p in parts if not p.strip())
        nth = self.args["nth_paragraph"]
        if nth > n:
            return False
        paragraph = parts[nth - 1].strip()
        if not paragraph:
            return False
        word = paragraph.split()[0].strip().lstrip("'").lstrip('"')
        first = ""
        for letter in word:
            if letter in {".", ",", "?", "!", "'", '"'}:
                break
            first += letter.lower()
        return n == self.args["num_paragraphs"] and first == self.args["first_word"].lower()


class Placeholders(Instruction):
    def check_following(self, value: str) -> bool:
        return len(re.findall(r"\[.*?\]", value)) >= self.args["num_placeholders"]


class Postscript(Instruction):
    def check_following(self, value: str) -> bool:
        marker = self.args["postscript_marker"].strip()
        value = value.lower()
        if marker == "P.P.S":
            pattern = r"\s*p\.\s?p\.\s?s.*$"
        elif marker == "P.S.":
            pattern = r"\s*p\.\s?s\..*$"
        else:
            pattern = r"\s*" + marker.lower() + r".*$"
        return bool(re.findall(pattern, value, flags=re.MULTILINE))


class Bullets(Instruction):
    def check_following(self, value: str) -> bool:
        n = len(re.findall(r"^\s*\*[^\*].*$", value, flags=re.MULTILINE)) + len(re.findall(r"^\s*-.*$", value, flags=re.MULTILINE))
        return n == self.args["num_bullets"]


class Constrained(Instruction):
    def check_following(self, value: str) -> bool:
        value = value.strip()
        return any(o in value for o in ("My answer is yes.", "My answer is no.", "My answer is maybe."))


class Highlights(Instruction):
    def check_following(self, value: str) -> bool:
        n = sum(1 for h in re.findall(r"\*[^\n\*]*\*", value) if h.strip("*").strip())
        n += sum(1 for h in re.findall(r"\*\*[^\n\*]*\*\*", value) if h.removeprefix("**").removesuffix("**").strip())
        return n >= self.args["num_highlights"]


class Sections(Instruction):
    def check_following(self, value: str) -> bool:
        pattern = r"\s?" + self.args["section_spliter"].strip() + r"\s?\d+\s?"
        return len(re.split(pattern, value)) - 1 >= self.args["num_sections"]


class Json(Instruction):
    def check_following(self, value: str) -> bool:
        value = value.strip().removeprefix("```json").removeprefix("```Json").removeprefix("```JSON").removeprefix("```").removesuffix("```").strip()
        try:
            json.loads(value)
        except ValueError:
            return False
        return True


class Title(Instruction):
    def check_following(self, value: str) -> bool:
        return any(t.lstrip("<").rstrip(">").strip() for t in re.findall(re.compile(r"<<[^\n]+>>"), value))


class TwoResponses(Instruction):
    def check_following(self, value: str) -> bool:
        valid = []
        parts = value.split("******")
        for i, p in enumerate(parts):
            if not p.strip():
                if i not in (0, len(parts) - 1):
                    return False
            else:
                valid.append(p)
        return len(valid) == 2 and valid[0].strip() != valid[1].strip()


class RepeatPrompt(Instruction):
    def check_following(self, value: str) -> bool:
        return value.strip().lower().startswith(self.args["prompt_to_repeat"].strip().lower())


class End(Instruction):
    def check_following(self, value: str) -> bool:
        return value.strip().strip('"').lower().endswith(self.args["end_phrase"].strip().lower())


class CapitalWords(Instruction):
    def check_following(self, value: str) -> bool:
        import nltk

        n = len([w for w in nltk.word_tokenize(value) if w.isupper()])
        return _cmp(n, self.args["capital_frequency"], self.args["capital_relation"])


class EnglishCapital(Instruction):
    def check_following(self, value: str) -> bool:
        if not value.isupper():
            return False
        got = _detect(value)
        return got is None or got == "en"


class EnglishLowercase(Instruction):
    def check_following(self, value: str) -> bool:
        if not value.islower():
            return False
        got = _detect(value)
        return got is None or got == "en"


class NoComma(Instruction):
    def check_following(self, value: str) -> bool:
        return not re.search(r"\,", value)


class Quotation(Instruction):
    def check_following(self, value: str) -> bool:
        value = value.strip()
        return len(value) > 1 and value[0] == '"' and value[-1] == '"'


INSTRUCTION_DICT: dict[str, type[Instruction]] = {
    "keywords:existence": Existence,
    "keywords:frequency": Frequency,
    "keywords:forbidden_words": Forbidden,
    "keywords:letter_frequency": LetterFrequency,
    "language:response_language": ResponseLanguage,
    "length_constraints:number_sentences": Sentences,
    "length_constraints:number_paragraphs": Paragraphs,
    "length_constraints:number_words": Words,
    "length_constraints:nth_paragraph_first_word": FirstWord,
    "detectable_content:number_placeholders": Placeholders,
    "detectable_content:postscript": Postscript,
    "detectable_format:number_bullet_lists": Bullets,
    "detectable_format:constrained_response": Constrained,
    "detectable_format:number_highlighted_sections": Highlights,
    "detectable_format:multiple_sections": Sections,
    "detectable_format:json_format": Json,
    "detectable_format:title": Title,
    "combination:two_responses": TwoResponses,
    "combination:repeat_prompt": RepeatPrompt,
    "startend:end_checker": End,
    "change_case:capital_word_frequency": CapitalWords,
    "change_case:english_capital": EnglishCapital,
    "change_case:english_lowercase": EnglishLowercase,
    "punctuation:no_comma": NoComma,
    "startend:quotation": Quotation,
}


def baseline_verify(response: str, prompt: str, ids: list[str], kwargs_list: list[dict], mode: str) -> list[bool]:
    """``evaluation_lib.test_instruction_following_{strict,loose}`` for one row."""
    follows = []
    for iid, kwargs in zip(ids, kwargs_list):
        instruction = INSTRUCTION_DICT[iid](iid)
        instruction.build_description(**{k: v for k, v in kwargs.items() if v is not None})
        if mode == "strict":
            candidates = [response]
        else:
            r = response.split("\n")
            first, last, both = "\n".join(r[1:]).strip(), "\n".join(r[:-1]).strip(), "\n".join(r[1:-1]).strip()
            candidates = [response, response.replace("*", ""), first, last, both, first.replace("*", ""), last.replace("*", ""), both.replace("*", "")]
        follows.append(any(c.strip() and instruction.check_following(c) for c in candidates))
    return follows


# -- harness ---------------------------------------------------------------------------


def _nltk_data_dir() -> Path:
    """A temporary nltk_data holding the shipped Punkt English files, for the baseline."""
    from filters.verify.ifeval.tokens import PUNKT_DIR

    root = Path(tempfile.mkdtemp(prefix="bench-nltk-"))
    shutil.copytree(PUNKT_DIR, root / "tokenizers" / "punkt_tab" / "english")
    return root


def _load() -> list[tuple[str, str, list[str], list[dict]]]:
    with (SHARED / RESPONSES).open(encoding="utf-8") as f:
        responses = {r["prompt"]: r["response"] for r in map(json.loads, f)}
    with (SHARED / "input_data.jsonl").open(encoding="utf-8") as f:
        prompts = [json.loads(line) for line in f]
    return [(responses[p["prompt"]], p["prompt"], p["instruction_id_list"], p["kwargs"]) for p in prompts]


def _clear_caches() -> None:
    # Our per-text caches must not carry results from one timed run to the next.
    from filters.verify.ifeval import language, tokens

    tokens.sentences.cache_clear()
    language.detect_language.cache_clear()


def _time(fn: Callable[[], list[list[bool]]], repeats: int) -> tuple[float, list[list[bool]]]:
    times, out = [], []
    for _ in range(repeats):
        _clear_caches()
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    import langdetect
    import nltk

    from filters.verify.ifeval import verify

    langdetect.DetectorFactory.seed = 0  # the baseline's global detector: same seed as ours
    data_dir = _nltk_data_dir()
    nltk.data.path.insert(0, str(data_dir))
    rows = _load()
    n_instr = sum(len(r[2]) for r in rows)
    log(f"IFEval: {len(rows)} responses, {n_instr} instructions; median of {REPEATS} runs per mode")

    # Warm-up outside the timings: nltk import, Punkt parameters, langdetect profiles.
    for mode in ("strict", "loose"):
        [verify(*r, mode=mode) for r in rows[:50]]
        [baseline_verify(*r, mode) for r in rows[:50]]

    total_ours = total_base = 0.0
    try:
        for mode in ("strict", "loose"):
            t_ours, ours = _time(lambda m=mode: [verify(*r, mode=m) for r in rows], REPEATS)
            t_base, base = _time(lambda m=mode: [baseline_verify(*r, m) for r in rows], REPEATS)
            diff = [i for i, (a, b) in enumerate(zip(ours, base)) if a != b]
            assert not diff, f"{mode}: verdicts differ on rows {diff[:10]}"
            followed = sum(map(sum, ours))
            log(
                f"{mode:>6}: ours {len(rows) / t_ours:7.0f} resp/s ({t_ours:.3f} s), "
                f"baseline {len(rows) / t_base:7.0f} resp/s ({t_base:.3f} s), "
                f"speedup {t_base / t_ours:.2f}x; identical verdicts, {followed}/{n_instr} followed"
            )
            total_ours += t_ours
            total_base += t_base
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"ratio: {total_base / total_ours:.2f}")


if __name__ == "__main__":
    main()

"""The fast langdetect path gives langdetect's exact probabilities (not just its answer)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from filters.verify.ifeval.langid import FastDetector
from filters.verify.ifeval.verifier import response_variants

TEXTS = [
    "",
    "12345 !!! ...",
    "HELLO",
    "This is a plain English sentence about the weather today.",
    "THIS IS AN ENGLISH SENTENCE IN CAPITAL LETTERS, MOSTLY.",
    "Ça va très bien, merci! Je suis très content de vous voir aujourd'hui.",
    "Das ist ein deutscher Satz über das Wetter und die Straße.",
    "Привет, как дела? Это русский текст с English words inside.",
    "日本語のテキストです。これは日本語の文章です。カタカナもある。",
    "这是一个中文句子，用来测试语言检测。",
    "مرحبا كيف حالك اليوم؟ هذا نص عربي.",
    "Tiếng Việt có dấu: Xin chào các bạn, hôm nay trời đẹp.",
    "Bună ziua! Școala și țara (Romanian comma-below letters).",
    "안녕하세요. 한국어 문장입니다.",
    "see http://example.com/a?b=c or mail foo.bar@example.org now",
    "  lots   of    spaces\n\n\tand\ttabs  ",
    "ABC DEF ghi JKL mNo PQr",
    "x" * 12000,
]


@pytest.fixture(scope="module")
def detectors() -> tuple[object, FastDetector]:
    from langdetect.detector_factory import PROFILES_DIRECTORY, DetectorFactory

    factory = DetectorFactory()
    factory.load_profile(PROFILES_DIRECTORY)
    factory.set_seed(0)
    return factory, FastDetector(factory, 0)


def _langdetect(factory: object, text: str) -> list[float] | None:
    from langdetect.lang_detect_exception import LangDetectException

    detector = factory.create()  # type: ignore[attr-defined]
    detector.append(text)
    try:
        detector.get_probabilities()
    except LangDetectException:
        return None
    return detector.langprob


def _assert_same(factory: object, fast: FastDetector, texts: list[str]) -> None:
    mismatches = [t[:60] for t in texts if fast.probabilities(t) != _langdetect(factory, t)]
    assert mismatches == []


def test_hand_written_texts(detectors: tuple[object, FastDetector]) -> None:
    factory, fast = detectors
    _assert_same(factory, fast, TEXTS)
    assert fast.detect("Das ist ein deutscher Satz über das Wetter und die Straße.") == "de"
    assert fast.detect("12345 !!! ...") is None


def test_ifeval_responses(detectors: tuple[object, FastDetector], shared_data: Path) -> None:
    factory, fast = detectors
    path = shared_data / "ifeval" / "input_response_data_gpt4_20231107_145030.jsonl"
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    # Every 8th response with its loose variants: ~250 texts, ~2 s of langdetect.
    texts = [v for row in rows[::8] for v in response_variants(row["response"], "loose")]
    _assert_same(factory, fast, texts)


def _langdetect_vote(factory: object, text: str, seeds: range) -> str:
    """The most common answer of real langdetect under fixed seeds (ties to the earliest)."""
    answers = []
    for seed in seeds:
        factory.set_seed(seed)  # type: ignore[attr-defined]
        detector = factory.create()  # type: ignore[attr-defined]
        detector.append(text)
        answers.append(detector.detect())
    factory.set_seed(0)  # type: ignore[attr-defined]
    counts = {a: answers.count(a) for a in answers}
    return max(counts, key=lambda a: counts[a])


# Bug (issue 10, item 15): on a short all-caps numbered list langdetect keeps ~10 n-grams
# (capital words yield none), so its verdict is a draw. Seed 0 said "en" and
# change_case:english_capital passed, while the unseeded reference evaluator says "so" for
# 17 of 20 seeds and fails it. detect() now returns the vote of langdetect over 15 seeds
# where the seeded answer is unsure.
@pytest.mark.parametrize("text", ["1. AN THINGS WITH\n2. IS", "1. WORK\n2. WITH\n3. THIS\n4. STEPS"])
def test_unsure_all_caps_list_follows_langdetects_majority(detectors: tuple[object, FastDetector], text: str) -> None:
    from filters.verify.ifeval.casing import check_english_capital
    from filters.verify.ifeval.langid import VOTES

    factory, fast = detectors
    assert fast.probabilities(text) == _langdetect(factory, text)  # still bit-exact per seed
    want = _langdetect_vote(factory, text, range(VOTES))
    assert want != "en"
    assert fast.detect(text) == want
    assert check_english_capital(text) is False


def test_confident_all_caps_text_keeps_the_seeded_answer(detectors: tuple[object, FastDetector]) -> None:
    factory, fast = detectors
    text = "THIS IS AN ENGLISH SENTENCE IN CAPITAL LETTERS, MOSTLY."
    factory.set_seed(0)  # type: ignore[attr-defined]
    detector = factory.create()  # type: ignore[attr-defined]
    detector.append(text)
    assert fast.detect(text) == detector.detect()

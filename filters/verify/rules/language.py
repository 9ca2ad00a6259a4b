"""The rule for ``language:response_language``: "answer in French, no other language".

Only a language the answer must be *entirely* in counts ("in Italian, no other language
is allowed", "respond only in Hindi"), not one merely mentioned ("translate from
German"). English yields nothing: IFEval never asks for it and it is the default.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from filters.verify.rules.spans import Hit, one_of, sentence

__all__ = ["LANGUAGES", "response_language"]

# ISO 639-1 codes as langdetect (the IFEval language checker) returns them.
LANGUAGES: dict[str, str] = {
    "afrikaans": "af", "albanian": "sq", "arabic": "ar", "bengali": "bn", "bangla": "bn", "bulgarian": "bg",
    "catalan": "ca", "chinese": "zh-cn", "croatian": "hr", "czech": "cs", "danish": "da", "dutch": "nl",
    "english": "en", "estonian": "et", "farsi": "fa", "filipino": "tl", "finnish": "fi", "french": "fr",
    "german": "de", "greek": "el", "gujarati": "gu", "hebrew": "he", "hindi": "hi", "hungarian": "hu",
    "indonesian": "id", "italian": "it", "japanese": "ja", "kannada": "kn", "korean": "ko", "latvian": "lv",
    "lithuanian": "lt", "macedonian": "mk", "malayalam": "ml", "marathi": "mr", "nepali": "ne", "norwegian": "no",
    "persian": "fa", "polish": "pl", "portuguese": "pt", "punjabi": "pa", "romanian": "ro", "russian": "ru",
    "slovak": "sk", "slovenian": "sl", "somali": "so", "spanish": "es", "swahili": "sw", "swedish": "sv",
    "tagalog": "tl", "tamil": "ta", "telugu": "te", "thai": "th", "turkish": "tr", "ukrainian": "uk",
    "urdu": "ur", "vietnamese": "vi", "welsh": "cy",
}

_LANG = r"(" + "|".join(sorted(LANGUAGES, key=len, reverse=True)) + r")"
_ADV = r"(?:(?:only|entirely|exclusively|solely|wholly|fully|completely|purely)\s+)?"
_LANGUAGE = one_of(
    rf"\b(?:in|using|use|into)\s+{_ADV}(?:the\s+)?{_LANG}\b(?:\s+language)?(?:\s+only)?\s*,?\s+(?:and\s+)?(?:no|without)\s+other\s+languages?",
    rf"\b(?:only|entirely|exclusively|solely|wholly|fully|completely|purely)\s+(?:in|using|use)\s+(?:the\s+)?{_LANG}\b",
    rf"\b(?:use|using|write|respond|answer|reply)\s+only\s+(?:in\s+)?(?:the\s+)?{_LANG}\b",
    rf"\b(?:in|using|use)\s+(?:only\s+)?(?:the\s+)?{_LANG}\s+(?:language\b|only\b)",
    rf"\b(?:response|answer|reply|output|poem|essay|story|letter|email|text)\s+(?:\w+\s+){{0,2}}?(?:should|must|has\s+to|needs\s+to)\s+be\s+(?:written\s+)?{_ADV}in\s+(?:the\s+)?{_LANG}\b",
    rf"\b(?:respond|answer|reply|write|written)\s+(?:\w+\s+){{0,3}}?(?:in|using)\s+(?:the\s+)?{_LANG}\s+language\b",
    rf"\b(?:respond|reply|answer)\s+{_ADV}in\s+{_LANG}\b(?!\s+(?:and|or)\s)",
)
_LANG_WORD = re.compile(rf"\b{_LANG}\b", re.IGNORECASE)


def response_language(text: str) -> Iterator[Hit]:
    """"respond only in Hindi, no other language" -> ``language:response_language`` (never English)."""
    found = [(m.start(), next(g for g in m.groups() if g)) for m in _LANGUAGE.finditer(text)]
    if not found:  # "Write a haiku in Italian about a yacht, no other language is allowed."
        for m in re.finditer(r"\bno\s+other\s+languages?\b", text, re.IGNORECASE):
            start, end = sentence(text, m.start())
            names = {n.lower() for n in _LANG_WORD.findall(text[start:end])}
            if len(names) == 1:
                found.append((start, names.pop()))
    for pos, lang in found:
        code = LANGUAGES[lang.lower()]
        if code != "en":
            yield pos, "language:response_language", {"language": code}
            return

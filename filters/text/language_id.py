"""Language of a text column, as Magpie's ``language`` tag (upper-case ISO 639-1, ``EN``).

Magpie uses lingua; here langdetect (pure Python, on PyPI, the detector IFEval's reference
uses), seeded so results are reproducible. Text it cannot classify gets ``UNKNOWN``.
"""
from __future__ import annotations

import pyarrow as pa

from pipelines.stage import Stage, empty_rejected, set_column


def detect_language(text: str | None) -> str:
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0
    if not text or not text.strip():
        return "UNKNOWN"
    try:
        return detect(text).split("-")[0].upper()
    except LangDetectException:
        return "UNKNOWN"


class LanguageId(Stage):
    """Add ``language`` for ``column`` (default ``instruction``); rejects nothing."""

    adds = {"language": pa.string()}

    def __init__(self, *, column: str = "instruction") -> None:
        self.column = column
        self.params = {"column": column}
        self.requires = {column: pa.string()}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        langs = [detect_language(t) for t in table.column(self.column).to_pylist()]
        return set_column(table, "language", pa.array(langs, pa.string())), empty_rejected(table)

"""CodecLM step 1, encode: each seed instruction -> its metadata (use case, skills).

The strong model is the encoder (paper: Gemini-Pro / PaLM-2 text-unicorn; temperature 0.7,
up to 2048 new tokens). The reply is read by :func:`synth.codeclm.parse.parse_metadata`.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.errors import ConfigError, ParseError
from pipelines.stage import check_flag, set_column, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.codeclm.parse import parse_metadata
from synth.codeclm.prompts import encode_chat
from synth.codeclm.state import row_seeds


def encode_regex(max_skills: int = 3) -> str:
    """The reply format as a regular expression, for engines with structured output.

    >>> import re
    >>> bool(re.fullmatch(encode_regex(), "Use case: poetry\\nSkills: rhyme, meter"))
    True
    """
    item = r"[^\n,]{2}[^\n,]*"  # bounded repeats ({2,60}) take xgrammar seconds to compile
    return rf"Use case: {item}\nSkills: {item}(, {item}){{0,{max_skills - 1}}}"


class CodecEncode(LLMStage):
    """Encode seed instructions into CodecLM metadata.

    Input: ``instruction``. Output: ``use_case`` (string) and ``skills`` (list of at most
    ``max_skills`` strings). Rejected: ``parse_error:encode`` (no ``Use case:``/``Task:``
    line, no skills, too many skills; raw reply kept), ``prompt_too_long``.

    ``structured: true`` constrains the reply to the format with a regular expression
    (vLLM and servers that take ``structured_outputs``): a small default model needs it; a
    strong model follows the format by itself.
    """

    requires = {"instruction": pa.string()}
    adds = {"use_case": pa.string(), "skills": pa.list_(pa.string())}
    default_sampling = {"temperature": 0.7, "max_tokens": 2048}

    def __init__(self, *, max_skills: int = 3, structured: bool = False, seed: int = 0, **llm: Any) -> None:
        super().__init__(**llm)
        if not isinstance(max_skills, int) or max_skills < 1:
            raise ConfigError(f"max_skills must be a positive integer, got {max_skills!r}")
        check_flag("structured", structured)
        self.max_skills, self.structured, self.seed = max_skills, structured, int(seed)
        self.params.update(max_skills=max_skills, structured=structured, seed=seed)

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        chats = [encode_chat(t or "") for t in table.column("instruction").to_pylist()]
        sampling = {**self.sampling, **({"structured_outputs": {"regex": encode_regex(self.max_skills)}} if self.structured else {})}
        outs = self.engine_llm.chat(chats, sampling, seeds=row_seeds(table.column("id").to_pylist(), self.seed, "encode") if "id" in table.column_names else None)
        use_cases, skills, reasons, raws = [], [], [], []
        for out in outs:
            uc, sk, reason = "", [], None
            if out.error:
                reason = out.error.split(":")[0]
            else:
                try:
                    uc, sk = parse_metadata(out.text, max_skills=self.max_skills)
                except ParseError:
                    reason = "parse_error:encode"
            use_cases.append(uc)
            skills.append(sk)
            reasons.append(reason)
            raws.append(out.text)
        table = set_column(table, "use_case", pa.array(use_cases, pa.string()))
        table = set_column(table, "skills", pa.array(skills, pa.list_(pa.string())))
        return split_by_reason(table, reasons, raw=raws)

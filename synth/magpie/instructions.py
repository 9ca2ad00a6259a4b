"""Magpie self-synthesis (Xu et al., ICLR 2025): an aligned chat model, given only its
pre-query template (its chat template up to where a user message starts), writes a user
instruction; the response comes from the normal chat template.

Defaults (magpie-align/magpie ``exp/gen_ins.py``, methods.md 1.3): instruction temperature 1.0,
top_p 1.0 (per-family values below), stop at the template's special tokens and the role word,
plus ``"\\n"`` (early stopping: the first line is the instruction) unless the family uses the
sanitizer instead (Llama-3.1/3.3, Gemma-2).
"""
from __future__ import annotations

import re
from typing import Any, Literal

import pyarrow as pa

from pipelines.errors import ConfigError
from pipelines.stage import set_column, split_by_reason
from synth.backends.llm_stage import LLMStage
from synth.magpie.sanitize import leaked_template, sanitize_instruction
from synth.magpie.system_prompts import control_system_prompt
from synth.magpie.template import (
    default_system_choice,
    pre_query_template,
    stop_strings,
)

# (pattern on the model name, instruction temperature, top_p, sanitize instead of early stop)
FAMILY_DEFAULTS: list[tuple[str, float, float, bool]] = [
    (r"llama-3\.1-8b", 0.8, 1.0, True),
    (r"llama-3\.1-70b", 0.9, 1.0, True),
    (r"llama-3\.3", 1.0, 1.0, True),
    (r"qwen2\.5-(?:coder-|math-)?(?:3|7|14)b", 0.7, 1.0, False),
    (r"qwen2\.5-(?:coder-|math-)?(?:32|72)b", 0.6, 1.0, False),
    (r"gemma-2", 1.0, 1.0, True),
]

GEN_CONFIG = pa.struct([("temperature", pa.float64()), ("top_p", pa.float64()), ("input_generator", pa.string()), ("seed", pa.int64())])


def family_defaults(model: str) -> tuple[float, float, bool]:
    """Magpie's per-family instruction sampling defaults for a model name."""
    name = str(model).lower()
    for pattern, temp, top_p, sanitize in FAMILY_DEFAULTS:
        if re.search(pattern, name):
            return temp, top_p, sanitize
    return 1.0, 1.0, False


def sanitize_family(model: str) -> str:
    name = str(model).lower()
    return "llama3" if "llama-3" in name else "gemma2" if "gemma-2" in name else "generic"


def magpie_pre_query(tokenizer: Any, *, system_prompt: str | None = None, keep_default_system: bool | None = None) -> str:
    """The pre-query template :class:`MagpieInstructions` feeds ``tokenizer``'s model:
    ``keep_default_system=None`` takes Magpie's choice for the family
    (:func:`~synth.magpie.template.default_system_choice`)."""
    keep = default_system_choice(tokenizer)[0] if keep_default_system is None else keep_default_system
    return pre_query_template(tokenizer, system_prompt=system_prompt, keep_default_system=keep)


class MagpieInstructions(LLMStage):
    """Write one instruction per row from the model's pre-query template.

    Input: ``id``, ``row_seed`` (a generate source). Output: ``instruction``,
    ``pre_query_template``, ``gen_input_configs`` (temperature, top_p, input_generator, seed).
    Rejected: ``empty_instruction``, ``template_leak`` (template tokens or role words left in
    the text), ``prompt_too_long``; raw text kept.

    ``template`` overrides the derived pre-query template; ``system_prompt`` or
    ``control_task`` (``math`` | ``code`` | ``translation``) steers the domain.

    ``keep_default_system`` decides whether the pre-query keeps the system block that some
    chat templates inject when no system message is given. ``None`` (default) takes Magpie's
    choice per family (:func:`~synth.magpie.template.default_system_choice`, methods.md 1.2):

    * Qwen2.5 ("You are Qwen, created by Alibaba Cloud..."): **kept**, as Magpie's published
      Qwen2.5 pre-query keeps it;
    * Llama-3.1/3.2/3.3 ("Cutting Knowledge Date: ... Today Date: ..."): **dropped**, as
      Magpie's Llama-3.1/3.3 strings are Llama-3's; the block also carries today's date, so
      keeping it would change the prompt (and the data) from one day to the next;
    * Qwen2 ("You are a helpful assistant."): **dropped**, Magpie's Qwen2 string;
    * SmolLM2 ("You are a helpful AI assistant named SmolLM...", the embedded default) and
      other families Magpie does not list: **kept**, methods.md 1.2's rule for new families
      (the model saw that block in its chat training).

    ``True``/``False`` force the choice; with ``system_prompt`` or ``control_task``, ``False``
    drops only the injected text inside the system turn (Llama-3.1's date lines). The
    ``pre_query_template`` column records the string actually used.
    """

    requires = {"row_seed": pa.int64()}
    adds = {"instruction": pa.string(), "pre_query_template": pa.string(), "gen_input_configs": GEN_CONFIG}
    version = "1"

    def __init__(self, *, template: str | None = None, system_prompt: str | None = None, control_task: Literal["math", "code", "translation"] | None = None, keep_default_system: bool | None = None, temperature: float | None = None, top_p: float | None = None, max_tokens: int = 256, early_stop: bool | None = None, sanitize: bool | None = None, **llm: Any) -> None:
        super().__init__(**llm)
        if system_prompt and control_task:
            raise ConfigError("give system_prompt or control_task, not both")
        if control_task is not None and control_task not in ("math", "code", "translation"):
            raise ConfigError(f"control_task must be math, code or translation, got {control_task!r}")
        if keep_default_system is not None and not isinstance(keep_default_system, bool):
            raise ConfigError(f"keep_default_system must be true, false or null (Magpie's choice per family), got {keep_default_system!r}")
        fam_temp, fam_top_p, fam_sanitize = family_defaults(self.model)
        self.template = template
        self.keep_default_system = keep_default_system
        self.system_prompt = control_system_prompt(control_task) if control_task else system_prompt
        self.temperature = fam_temp if temperature is None else float(temperature)
        self.top_p = fam_top_p if top_p is None else float(top_p)
        self.sanitize = fam_sanitize if sanitize is None else bool(sanitize)
        self.early_stop = (not self.sanitize) if early_stop is None else bool(early_stop)
        self.max_tokens = int(max_tokens)
        self.params.update(template=template, system_prompt=self.system_prompt, control_task=control_task, keep_default_system=keep_default_system, temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens, early_stop=self.early_stop, sanitize=self.sanitize)

    def prompt_and_stops(self) -> tuple[str, list[str], list[int]]:
        tok = self.engine_llm.tokenizer
        template = self.template or magpie_pre_query(tok, system_prompt=self.system_prompt, keep_default_system=self.keep_default_system)
        stop, stop_ids = stop_strings(tok)
        return template, stop, stop_ids

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        template, stop, stop_ids = self.prompt_and_stops()
        sampling = {**self.sampling, "temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens, "stop": stop + (["\n"] if self.early_stop else []), "stop_token_ids": stop_ids, "skip_special_tokens": True}
        seeds = table.column("row_seed").to_pylist()
        outs = self.engine_llm.generate([template] * table.num_rows, sampling, seeds=seeds)
        family = sanitize_family(self.engine_llm.name)
        instructions, reasons, raws = [], [], []
        for out in outs:
            raw = out.text
            text = sanitize_instruction(raw, family)[0] if self.sanitize else raw.strip()
            reason = out.error.split(":")[0] if out.error else ("empty_instruction" if not text.strip() else "template_leak" if leaked_template(text, stop) else None)
            instructions.append(text.strip())
            reasons.append(reason)
            raws.append(raw)
        cfg = [{"temperature": self.temperature, "top_p": self.top_p, "input_generator": self.engine_llm.name, "seed": s} for s in seeds]
        table = set_column(table, "instruction", pa.array(instructions, pa.string()))
        table = set_column(table, "pre_query_template", pa.array([template] * table.num_rows, pa.string()))
        table = set_column(table, "gen_input_configs", pa.array(cfg, GEN_CONFIG))
        return split_by_reason(table, reasons, raw=raws)

"""Stage names usable in recipes, mapped to ``module:Class`` and imported only when used.

An explicit table, not registration as an import side effect: ``aligncraft recipes``
and validation stay cheap, and a typo in a recipe is caught before anything loads.
"""
from __future__ import annotations

import difflib
import importlib

from pipelines.errors import ConfigError

STAGES: dict[str, str] = {
    # generic CPU stages
    "length_filter": "filters.length_filter:LengthFilter",
    "empty_filter": "filters.length_filter:EmptyFilter",
    "exact_dedup": "filters.exact_dedup:ExactDedup",
    "select_columns": "filters.select_columns:SelectColumns",
    # generation
    "magpie_instructions": "synth.magpie:MagpieInstructions",
    "magpie_turns": "synth.magpie:MagpieTurns",
    "respond": "synth.respond:Respond",
    "sample_responses": "synth.respond:SampleResponses",
    "magpie_tag": "synth.magpie_tags:MagpieTag",
    "reward_score": "synth.reward:RewardScore",
    "best_of_n_pairs": "synth.best_of_n:BestOfNPairs",
    # tagging / curation on CPUs
    "language_id": "filters.language_id:LanguageId",
    "text_lengths": "filters.length_filter:TextLengths",
    "knn_diversity": "filters.knn_diversity:KnnDiversity",
    "magpie_filter": "filters.magpie_filter:MagpieFilter",
    "minhash_dedup": "filters.minhash_dedup:MinHashDedup",
    "embedding_dedup": "filters.embedding_dedup:EmbeddingDedup",
    "deita_score": "filters.deita_score:DeitaScore",
    "deita_select": "filters.deita_select:DeitaSelect",
    "isa_select": "filters.isa_select:IsaSelect",
    "verify_constraints": "filters.constraint_verify:VerifyConstraints",
    "extract_constraints": "filters.constraint_extract:ExtractConstraints",
    "act_pairs": "filters.act_pairs:ActPairs",
}


def stage_class(name: str) -> type:
    """The class for a recipe's ``stage:`` name; a clear error (with a suggestion) if unknown.

    ``package.module:Class`` names a user's own stage class without registering it.
    """
    if ":" in name:
        module, _, cls = name.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import stage '{name}': {exc}") from None
    target = STAGES.get(name)
    if target is None:
        close = difflib.get_close_matches(name, STAGES, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known stages: {', '.join(sorted(STAGES))}"
        raise ConfigError(f"unknown stage '{name}'", hint=hint)
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)

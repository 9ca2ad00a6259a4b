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
    "length_filter": "filters.text.length:LengthFilter",
    "empty_filter": "filters.text.length:EmptyFilter",
    "exact_dedup": "filters.dedup.exact:ExactDedup",
    "select_columns": "filters.text.columns:SelectColumns",
    # generation
    "magpie_instructions": "synth.magpie.instructions:MagpieInstructions",
    "magpie_turns": "synth.magpie.turns:MagpieTurns",
    "respond": "synth.respond:Respond",
    "sample_responses": "synth.respond:SampleResponses",
    "magpie_tag": "synth.magpie.tags:MagpieTag",
    "reward_score": "synth.judge.reward:RewardScore",
    "best_of_n_pairs": "synth.judge.best_of_n:BestOfNPairs",
    "uf_prompt": "synth.judge.ultrafeedback.prompts:UFPrompt", "uf_complete": "synth.judge.ultrafeedback.pool:UFComplete", "uf_rate": "synth.judge.ultrafeedback.annotate:UFRate", "uf_critique": "synth.judge.ultrafeedback.critique:UFCritique", "uf_rating_stats": "synth.judge.ultrafeedback.stats:UFRatingStats", "uf_binarize": "synth.judge.ultrafeedback.binarize:UFBinarize",
    # tagging / curation on CPUs
    "language_id": "filters.text.language_id:LanguageId",
    "text_lengths": "filters.text.length:TextLengths",
    "knn_diversity": "filters.dedup.knn_diversity:KnnDiversity",
    "magpie_filter": "filters.select.magpie_filter:MagpieFilter",
    "minhash_dedup": "filters.dedup.minhash:MinHashDedup",
    "embedding_dedup": "filters.dedup.embedding:EmbeddingDedup",
    "embed": "filters.embed:Embed",
    "deita_score": "filters.select.deita_score:DeitaScore",
    "deita_select": "filters.select.deita_select:DeitaSelect",
    "isa_select": "filters.select.isa:IsaSelect",
    "ches_filter": "filters.select.ches:ChesFilter", "pair_columns": "filters.select.ches_pairs:PairColumns",
    "verify_constraints": "filters.verify.verify_constraints:VerifyConstraints",
    "extract_constraints": "filters.verify.extract:ExtractConstraints",
    "act_pairs": "filters.verify.act_pairs:ActPairs",
    "codeclm_encode": "synth.codeclm.encode:CodecEncode", "codeclm_metadata": "synth.codeclm.metadata:CodecMetadata", "codeclm_sanity": "synth.codeclm.sanity:CodecSanity", "codeclm_decode": "synth.codeclm.decode:CodecDecode", "codeclm_rubrics": "synth.codeclm.rubrics:CodecRubrics", "codeclm_respond": "synth.codeclm.respond:CodecRespond", "codeclm_judge": "synth.codeclm.judge:CodecJudge", "codeclm_decide": "synth.codeclm.decide:CodecDecide", "codeclm_improve": "synth.codeclm.improve:CodecImprove",
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

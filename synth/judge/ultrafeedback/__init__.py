"""UltraFeedback-style judged preferences (Cui et al. 2023; methods.md section 3).

Stages, in recipe order: ``uf_prompt`` (the instruction text from MT-Bench ``turns``,
``messages`` or ``prompt``), ``uf_complete`` (one per pool model: completions under sampled
principle system prompts), ``uf_rate`` (the four aspects, 1-5 with rationales),
``uf_critique`` (overall 1-10 score and feedback, with the 2023-12 fix for 10s),
``uf_rating_stats`` (per-model rating columns for the card) and ``uf_binarize`` (h4,
argilla, max-min pairs in TRL's format). Templates and parsers are pure modules.
"""

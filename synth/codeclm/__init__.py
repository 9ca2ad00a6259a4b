"""CodecLM (Wang et al., NAACL Findings 2024, arXiv 2404.05875): tailored synthetic
instructions from seed metadata, Self-Rubrics and Contrastive Filtering.

No official code exists; this follows the paper's text and numbers (methods.md section 2).

Stages (recipe names), in pipeline order::

    codeclm_encode    strong   seed -> use case + <= 3 skills            parse_error:encode
    codeclm_metadata  global   pool of seed metadata mixed to 200, one metadata per slot
    codeclm_sanity    strong   optional LLM check of mixed pairs          unreasonable_metadata
    codeclm_decode    strong   basic instruction per slot (round 1)       parse_error:decode
    codeclm_rubrics   strong   4 rubrics + 4 actions per metadata         parse_error:rubrics
    round r = 1..depth (4):
      codeclm_improve r >= 2   strong   one sampled action rewrites it    parse_error:improve
      codeclm_respond          strong   answer                            (never rejects)
      codeclm_respond          target   answer                            (never rejects)
      codeclm_judge            judge    pairwise 1-10, both orders        (never rejects)
      codeclm_decide           CPU      |G| > 3 keeps the winner, else next round;
                                        the last round rejects no_gap_after_depth

Why the loop is stages repeated in the recipe, not a loop inside one stage
----------------------------------------------------------------------------
The durable executor checkpoints each (stage, shard). With every round spelled out as its
own stages, a finished round is a set of finished shard files: a killed run resumes in the
middle of the loop, redoing no finished round, and the executor's check that rows in =
kept + rejected holds for every round's every stage. The recipe is longer (five lines a
round) but shows exactly what runs, and any round's model or sampling can be changed alone.

A stage can only keep or reject rows, yet an instruction accepted in round 1 must reach the
final output past rounds 2-4. So each row carries its state (:mod:`synth.codeclm.state`):
``codeclm_status`` is ``pending`` or ``accepted``; round stages work on pending rows only and
pass accepted rows through untouched, with no model call. ``codeclm_decide`` is the one
place a round is resolved: it appends the round (instruction, action, scores, gap,
outcome) to the ``lineage`` list column and accepts, forwards or rejects. The respond and
judge stages therefore never reject; an engine error or an unreadable judge reply is put in
``codeclm_error`` and decide rejects the row with that reason, so every rejected row of a
round carries that round in its lineage (improve rejects its own unparseable rewrites; their
lineage holds the earlier rounds and ``reject_raw`` the reply). Seed id and metadata are
row columns (``seed_id``, ``use_case``, ``skills``, ``metadata_id``), constant across rounds.

Rows are instruction slots. The contract (rows in = kept + rejected) forbids a stage that
outputs more rows than it got, so ``codeclm_metadata`` gives each seed row that survived
encoding one metadata of the pool, every metadata an equal share: the data size is the
number of seeds. Growing past it needs a row-expanding stage in the frame (see the report
that introduced this package).

Roles: every LLM stage names its own ``model``/``backend``/``engine``; the recipe uses YAML
anchors (``&strong``, ``&target``, ``&judge``) so one edit changes a role. Each distinct model
gets its own engine worker.

:mod:`synth.codeclm.crr` computes the paper's evaluation metric, the Capacity Recovery Ratio
(``aligncraft crr``).
"""

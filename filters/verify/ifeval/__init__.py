"""IFEval-exact programmatic constraint verifiers (and ACT's satisfaction rate).

The 25 instructions of google-research ``instruction_following_eval`` with the same kwargs
and verdicts, as pure functions: ``CHECKERS[id](response, prompt=..., **kwargs)``.
:func:`verify` gives IFEval's strict or loose verdicts for one response;
:func:`satisfaction_rate` turns verdicts into ACT's CSR (Wang et al., arXiv 2403.06326).

>>> verify("my answer is simple", "", ["change_case:english_lowercase"], [{}])
[True]
"""
from __future__ import annotations

from filters.verify.ifeval.registry import CHECKERS, bind
from filters.verify.ifeval.verifier import (
    MODES,
    loose_variants,
    response_variants,
    satisfaction_rate,
    verify,
)

__all__ = ["CHECKERS", "MODES", "bind", "loose_variants", "response_variants", "satisfaction_rate", "verify"]

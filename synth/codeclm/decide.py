"""CodecLM step 4d, Contrastive Filtering's decision for one round.

Paper §4.3: ``|G| > θ`` (θ = **3** on the 10-point scale, all experiments) keeps the
instruction with the winner's answer: the strong model's, or, rarely, the target's when it
wins by more than θ (implicit regularisation). Otherwise the instruction goes to the next
Self-Rubrics round; after the last one (depth **4**, counting the basic instruction) it is
rejected (``no_gap_after_depth``). Every decided round is appended to ``lineage``.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from pipelines.chat_format import MESSAGES
from pipelines.errors import AligncraftError, ConfigError
from pipelines.stage import Stage, split_by_reason
from synth.codeclm.state import ACCEPTED, ERROR, LINEAGE, PENDING, ROUND, STATUS, pending_indices, pending_mask, update_pending

NO_GAP = "no_gap_after_depth"


def winner(gap: float, theta: float = 3.0) -> str | None:
    """``strong`` if G > θ, ``target`` if G < -θ, else None (no decision this round).

    >>> winner(4.5), winner(-3.5), winner(3.0), winner(-1)
    ('strong', 'target', None, None)
    """
    if gap > theta:
        return "strong"
    if gap < -theta:
        return "target"
    return None


def outcome(error: str | None, gap: float | None, *, theta: float, last: bool, strong: str, target: str) -> tuple[str, str | None, str | None]:
    """One pending row's round: (outcome, winner, reject reason).

    Outcomes: ``kept:<winner>``, ``next_round``, or the reject reason itself (an error
    recorded by the round's stages, ``empty_response:<winner>``, ``no_gap_after_depth``).

    >>> outcome(None, 5.0, theta=3, last=False, strong="a", target="b")
    ('kept:strong', 'strong', None)
    >>> outcome(None, 1.0, theta=3, last=False, strong="a", target="b")
    ('next_round', None, None)
    >>> outcome(None, 1.0, theta=3, last=True, strong="a", target="b")
    ('no_gap_after_depth', None, 'no_gap_after_depth')
    >>> outcome("parse_error:judge", None, theta=3, last=False, strong="a", target="b")
    ('parse_error:judge', None, 'parse_error:judge')
    """
    if error is not None or gap is None:
        reason = error or "no_score"
        return reason, None, reason
    w = winner(gap, theta)
    if w is None:
        return (NO_GAP, None, NO_GAP) if last else ("next_round", None, None)
    if not (strong if w == "strong" else target).strip():
        reason = f"empty_response:{w}"
        return reason, w, reason
    return f"kept:{w}", w, None


class CodecDecide(Stage):
    """Decide round ``round`` of ``depth`` for the pending rows (a CPU stage).

    Input: the round's ``instruction``, ``action``, ``response_strong``, ``response_target``,
    ``score_strong``, ``score_target``, ``gap``, ``codeclm_error``. Output, on accepted
    rows: ``codeclm_status`` = ``accepted``, ``kept_round``, ``winner``, ``response`` (the
    winner's answer) and ``messages``; on every decided row, one more ``lineage`` entry.
    Rows accepted earlier pass through. Rejected: ``no_gap_after_depth`` (last round),
    ``parse_error:judge`` (raw judge replies kept), ``empty_response:<winner>``, engine
    errors such as ``prompt_too_long``.

    Parameters
    ----------
    round : int
        The round this stage decides (1 = the basic instruction).
    depth : int
        Rounds in all (paper: 4); round == depth rejects what is still undecided.
    theta : float
        The gap threshold (paper: 3 on the 1-10 scale).
    """

    requires = {"instruction": pa.string(), "action": pa.string(), "response_strong": pa.string(), "response_target": pa.string(), "score_strong": pa.float64(), "score_target": pa.float64(), "gap": pa.float64(), STATUS: pa.string(), ROUND: pa.int64(), ERROR: pa.string(), "lineage": LINEAGE}
    adds = {STATUS: pa.string(), "kept_round": pa.int64(), "winner": pa.string(), "response": pa.string(), "messages": MESSAGES, "lineage": LINEAGE}

    def __init__(self, *, round: int, depth: int = 4, theta: float = 3.0) -> None:  # noqa: A002 - the paper's word
        for name, v in (("round", round), ("depth", depth)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                msg = f"{name} must be a positive integer, got {v!r}"
                raise ConfigError(msg)
        if round > depth:
            msg = f"round {round} is past depth {depth}"
            raise ConfigError(msg)
        if not isinstance(theta, (int, float)) or theta < 0:
            msg = f"theta must be a number >= 0, got {theta!r}"
            raise ConfigError(msg)
        self.round, self.depth, self.theta = round, depth, float(theta)
        self.params = {"round": round, "depth": depth, "theta": theta}

    def process(self, table: pa.Table) -> tuple[pa.Table, pa.Table]:
        mask = pending_mask(table)
        idx = pending_indices(table)
        cols = {c: table.column(c).to_pylist() for c in ("instruction", "action", "response_strong", "response_target", "score_strong", "score_target", "gap", ERROR, ROUND, "lineage", "judge_raw") if c in table.column_names}
        wrong = sorted({cols[ROUND][i] for i in idx} - {self.round})
        if wrong:
            msg = f"pending rows are at round {wrong[0]}, this stage decides round {self.round}: the recipe's round stages are out of order"
            raise AligncraftError(msg)
        last = self.round >= self.depth
        status, won, response, messages, lineage = [], [], [], [], []
        reasons: list[str | None] = [None] * table.num_rows
        raws: list[str | None] = [None] * table.num_rows
        for i in idx:
            strong, target = cols["response_strong"][i] or "", cols["response_target"][i] or ""
            out, w, reason = outcome(cols[ERROR][i], cols["gap"][i], theta=self.theta, last=last, strong=strong, target=target)
            reasons[i] = reason
            if reason == "parse_error:judge":
                raws[i] = cols.get("judge_raw", [None] * table.num_rows)[i]
            accepted = reason is None and w is not None
            status.append(ACCEPTED if accepted else PENDING)
            won.append(w)
            answer = (strong if w == "strong" else target) if accepted else None
            response.append(answer)
            messages.append([{"role": "user", "content": cols["instruction"][i]}, {"role": "assistant", "content": answer}] if accepted else None)
            entry = {"round": self.round, "instruction": cols["instruction"][i], "action": cols["action"][i], "score_strong": cols["score_strong"][i], "score_target": cols["score_target"][i], "gap": cols["gap"][i], "outcome": out}
            lineage.append((cols["lineage"][i] or []) + [entry])
        table = update_pending(table, "kept_round", [self.round if s == ACCEPTED else None for s in status], pa.int64(), mask)
        table = update_pending(table, "winner", won, pa.string(), mask)
        table = update_pending(table, "response", response, pa.string(), mask)
        table = update_pending(table, "messages", messages, MESSAGES, mask)
        table = update_pending(table, "lineage", lineage, LINEAGE, mask)
        table = update_pending(table, STATUS, status, pa.string(), mask)
        return split_by_reason(table, pa.array(reasons, pa.string()), raw=raws)


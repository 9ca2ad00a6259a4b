"""Greedy diverse selection, exact and fast: deita's filter loop without its per-row cost.

deita (``selection/filter/combined_filter.py``, methods.md section 5.2) walks rows best
first and takes one if its cosine similarity to *every* row taken so far is at most tau.
The loop is inherently sequential, and the obvious implementation (one matrix-vector
product against the selected set per candidate, :func:`select_diverse_naive`) is
memory-bound and pays Python overhead per row. :func:`select_diverse` gives the same
answer block by block: one search of a block of candidates against everything selected
before the block (a BLAS matrix product, or an exact pruned search over groups of selected
rows), then the few survivors are resolved sequentially against each other on a small
block-local Gram matrix. Memory is linear in N (never N x N). ``bench/curation.py``
measures the speed-up.

Why one module of ~300 lines: the blocked search, its pruning index (``_Selected``) and the
naive reference share the float32/float64 tie rule (``_EPS``, ``_exact_dot``) that makes
them agree exactly; split apart, that contract would span files.
"""
from __future__ import annotations

from typing import Literal, overload

import numpy as np

__all__ = ["select_diverse", "select_diverse_naive"]

# Float32 dot products of unit vectors are within _EPS / 2 of the exact value (384 dims:
# typically 1e-7). Both implementations decide with float32 and re-check in float64, with
# the same function, every similarity within _EPS of what decides (tau, or the best match),
# so they agree exactly although their float32 sums differ.
_EPS = 1e-5
_MARGIN = 1e-3  # radians of slack in the pruning bound, for float32 error in the angles
_LEADER_COS = 0.75  # a taken row joins a group if its cosine to the group's leader is >= this
_TOP = 3  # best matches kept per candidate: two to resolve a near-tie, one to detect a third


def _exact_dot(emb: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 dot products of the row pairs ``(a[i], b[i])``, computed the same way for every
    caller (elementwise product, then numpy's pairwise sum along the row)."""
    return (emb[a].astype(np.float64) * emb[b].astype(np.float64)).sum(axis=1)


def _first_max(keys: np.ndarray, values: np.ndarray, tiebreak: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct key: (key, max value, smallest tiebreak among the maxima)."""
    o = np.lexsort((tiebreak, -values, keys))
    first = np.ones(len(o), bool)
    first[1:] = keys[o][1:] != keys[o][:-1]
    return keys[o][first], values[o][first], tiebreak[o][first]


def _top_rows(keys: np.ndarray, values: np.ndarray, pos: np.ndarray, q: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``_TOP`` best (value desc, position asc) per key in ``range(q)``, padded with
    ``-inf`` / ``-1``: ``(q, _TOP)`` values and positions."""
    vals, where = np.full((q, _TOP), -np.inf), np.full((q, _TOP), -1, np.int64)
    o = np.lexsort((pos, -values, keys))
    k = keys[o]
    start = np.ones(len(o), bool)
    start[1:] = k[1:] != k[:-1]
    rank = np.arange(len(o)) - np.maximum.accumulate(np.where(start, np.arange(len(o)), 0))
    m = rank < _TOP
    vals[k[m], rank[m]], where[k[m], rank[m]] = values[o][m], pos[o][m]
    return vals, where


def _dense_top(ce: np.ndarray, vecs: np.ndarray, *, cols: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """``_TOP`` best similarities and columns of each row of ``ce`` against all of ``vecs``:
    one BLAS matrix product per ``cols`` columns, then ``_TOP`` argmax passes.

    (A faiss ``IndexFlatIP`` search gives the same numbers but was 1.2x slower for k = 1
    and 4x slower for k = 2, measured on 1024 x 10k x 384 here.)
    """
    q = len(ce)
    r = np.arange(q)
    vals, pos = np.full((q, _TOP), -np.inf), np.full((q, _TOP), -1, np.int64)
    for c0 in range(0, len(vecs), cols):
        g = ce @ vecs[c0:c0 + cols].T
        cv, cp = [vals], [pos]
        for _ in range(min(_TOP, g.shape[1])):
            a = g.argmax(axis=1)
            cv.append(g[r, a].astype(np.float64)[:, None])
            cp.append((a + c0)[:, None])
            g[r, a] = -np.inf
        v, p = np.concatenate(cv, axis=1), np.concatenate(cp, axis=1)
        o = np.lexsort((np.where(p < 0, np.iinfo(np.int64).max, p), -v), axis=1)[:, :_TOP]
        vals, pos = np.take_along_axis(v, o, axis=1), np.take_along_axis(p, o, axis=1)
    return vals, pos


class _Selected:
    """The rows taken so far, searchable for each candidate's best matches.

    Two searches, chosen per block: a dense matrix product against all taken rows, or an
    exact pruned one. For the pruned search taken rows are grouped under "leaders" (a row
    joins the nearest leader with cosine >= 0.75, else leads a new group); the triangle
    inequality for angles, ``angle(q, s) >= angle(q, leader) - radius``, bounds the best
    similarity in each group, and a group whose bound is below ``tau - _EPS`` can hold
    neither a similarity above ``tau`` nor the best match of a candidate whose best is above
    ``tau - _EPS``: nothing the selection looks at. On clustered data this skips most groups.
    """

    def __init__(self, emb: np.ndarray, capacity: int) -> None:
        dim = emb.shape[1]
        self.emb = emb
        self.rows = np.empty(capacity, np.int64)  # selection position -> row
        self.vecs = np.empty((capacity, dim), np.float32)
        self.count = 0
        self.leaders = np.empty((capacity, dim), np.float32)
        self.mincos = np.empty(capacity, np.float64)  # group radius, as the lowest member cosine
        self.group = np.empty(capacity, np.int64)  # selection position -> group
        self.sizes = np.zeros(capacity, np.int64)
        self.n_groups = 0

    def add(self, rows: np.ndarray) -> None:
        start, k, old = self.count, len(rows), self.n_groups
        vecs = self.emb[rows]
        self.rows[start:start + k], self.vecs[start:start + k] = rows, vecs
        self.count += k
        to_old = vecs @ self.leaders[:old].T
        to_new = vecs @ vecs.T
        new_leaders: list[int] = []  # rows of `vecs` that opened a group in this batch
        for i in range(k):  # sequential: a row may join a group opened earlier in this batch
            sims = np.concatenate([to_old[i], to_new[i, new_leaders]]) if new_leaders else to_old[i]
            g = int(sims.argmax()) if len(sims) else -1
            if g >= 0 and sims[g] >= _LEADER_COS:
                self.mincos[g] = min(self.mincos[g], float(sims[g]))
            else:
                g = self.n_groups
                self.leaders[g], self.mincos[g] = vecs[i], 1.0
                self.n_groups += 1
                new_leaders.append(i)
            self.group[start + i] = g
            self.sizes[g] += 1

    def top(self, ce: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """``(q, _TOP)`` best float32 similarities (as float64) and selection positions of
        each candidate row of ``ce``; complete wherever they reach ``tau - _EPS``."""
        q, n, m = len(ce), self.count, self.n_groups
        if m <= n // 2:
            # cos(angle(q, leader) - radius) >= tau - _EPS, solved for the cosine to the leader
            radius = np.arccos(np.clip(self.mincos[:m] - 1e-6, -1.0, 1.0))
            reach = np.arccos(np.clip(tau - _EPS, -1.0, 1.0)) + radius + _MARGIN
            floor = np.where(reach >= np.pi, -np.inf, np.cos(np.minimum(reach, np.pi))).astype(np.float32)
            qi, g = np.nonzero(ce @ self.leaders[:m].T >= floor[None, :])
            sizes = self.sizes[g]
            total = int(sizes.sum())
            if total <= q * n // 4:  # pruning pays; else use the dense product
                members = np.argsort(self.group[:n], kind="stable")
                gstart = np.concatenate([[0], np.cumsum(self.sizes[:m])])[:-1]
                first = np.repeat(np.cumsum(sizes) - sizes, sizes)
                pq = np.repeat(qi, sizes)
                ps = members[np.repeat(gstart[g], sizes) + np.arange(total) - first]
                v = np.empty(total, np.float64)
                for s in range(0, total, 16384):
                    v[s:s + 16384] = np.einsum("ij,ij->i", ce[pq[s:s + 16384]], self.vecs[ps[s:s + 16384]])
                return _top_rows(pq, v, ps, q)
        return _dense_top(ce, self.vecs[:n])

    def near_exact(self, rows: np.ndarray, vals: np.ndarray, pos: np.ndarray, best: np.ndarray, upto: int):
        """Exact similarities of every taken row ``[:upto]`` within ``_EPS`` of ``best`` (the
        float32 best match of each candidate ``rows[k]``) as pairs ``(k, value, position)``.
        ``vals``/``pos`` are the candidates' ``top`` results; when all ``_TOP`` of them are
        that close (rare) the candidate is recomputed against every taken row."""
        near = vals >= best[:, None] - _EPS
        full = near[:, -1]
        k, t = np.nonzero(near & ~full[:, None])
        keys, values, where = [k], [_exact_dot(self.emb, rows[k], self.rows[pos[k, t]])], [pos[k, t]]
        for i in np.flatnonzero(full):
            sims = self.vecs[:upto] @ self.emb[rows[i]]
            c = np.flatnonzero(sims >= best[i] - _EPS)
            keys.append(np.full(len(c), i)), values.append(_exact_dot(self.emb, np.full(len(c), rows[i]), self.rows[c])), where.append(c)
        return np.concatenate(keys), np.concatenate(values), np.concatenate(where)


@overload
def select_diverse(emb: np.ndarray, order: np.ndarray, tau: float, budget: int | None, *, block: int = ..., return_blockers: Literal[False] = ...) -> np.ndarray: ...
@overload
def select_diverse(emb: np.ndarray, order: np.ndarray, tau: float, budget: int | None, *, block: int = ..., return_blockers: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...


def select_diverse(emb, order, tau, budget, *, block=1024, return_blockers=False):
    """Greedy diverse selection: walk ``order``, take a row if its similarity (dot product)
    to every row taken so far is ``<= tau``, stop after ``budget`` rows.

    Candidates are handled ``block`` at a time: one search of the block against the rows
    taken before it (a dense matrix product, or an exact search that skips groups of taken
    rows too far away to matter), then the survivors are resolved against each other in
    order on the block's small Gram matrix. Memory is linear in ``n``. The result equals
    :func:`select_diverse_naive`'s, near-ties included (see ``_EPS``).

    Parameters
    ----------
    emb
        ``(n, dim)`` float32 rows, unit length so dot products are cosine similarities.
    order
        Row indices in the order to consider them (best first); rows not in it are never
        taken.
    tau
        Similarity above which a candidate is rejected (deita: 0.9).
    budget
        Most rows to take; ``None`` = no limit.
    block
        Candidates per block.
    return_blockers
        Also return, per row, the index of the most similar row taken before it for a
        rejected candidate (-1 for taken rows and rows never examined because the budget
        was full); exact ties go to the row taken first.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        int64 indices of the taken rows in the order taken; with ``return_blockers`` also
        the ``(n,)`` int64 blockers.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.6, 0.8]], np.float32)
    >>> sel, blk = select_diverse(emb, np.arange(4), 0.9, None, return_blockers=True)
    >>> sel.tolist(), blk.tolist()
    ([0, 2, 3], [-1, 0, -1, -1])
    >>> select_diverse(emb, np.arange(4), 0.9, 1).tolist()
    [0]
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    order = np.asarray(order, dtype=np.int64)
    budget = len(order) if budget is None else min(int(budget), len(order))
    sel = _Selected(emb, max(budget, 1))
    blockers = np.full(emb.shape[0], -1, np.int64)
    pos = 0
    while pos < len(order) and sel.count < budget:
        cand = order[pos:pos + block]
        pos += len(cand)
        ce = emb[cand]
        start = sel.count
        # 1. against the rows taken before this block (exact where it is close to tau)
        vals, where = sel.top(ce, tau)
        pmax = vals[:, 0].copy()
        hi = np.flatnonzero(pmax >= tau - _EPS)
        k, v, _ = sel.near_exact(cand[hi], vals[hi], where[hi], vals[hi, 0], start)
        if len(k):
            kk, best, _ = _first_max(k, v, np.zeros(len(k), np.int64))
            pmax[hi[kk]] = best
        # 2. the survivors against each other, in order (float32, entries near tau exact)
        alive = np.flatnonzero(pmax <= tau)
        gram = ce[alive] @ ce[alive].T
        kill = gram > tau
        bi, bj = np.nonzero(np.abs(gram - tau) < _EPS)
        kill[bi, bj] = _exact_dot(emb, cand[alive[bi]], cand[alive[bj]]) > tau
        ok = np.ones(len(alive), bool)
        taken_local: list[int] = []
        stop = len(cand)  # positions >= stop are over budget
        for t in range(len(alive)):
            if not ok[t]:
                continue
            taken_local.append(int(alive[t]))
            if start + len(taken_local) == budget:
                stop = int(alive[t]) + 1
                break
            ok[t + 1:] &= ~kill[t, t + 1:]
        taken = np.array(taken_local, np.int64)
        sel.add(cand[taken])
        if return_blockers:
            _block_blockers(sel, cand, ce, taken, stop, start, vals, where, blockers)
    selected = sel.rows[:sel.count].copy()
    return (selected, blockers) if return_blockers else selected


def _block_blockers(sel: _Selected, cand: np.ndarray, ce: np.ndarray, taken: np.ndarray, stop: int, start: int,
                    vals: np.ndarray, where: np.ndarray, blockers: np.ndarray) -> None:
    """For each rejected candidate of a block, the most similar row taken before it (before
    the block, or earlier in it); every pair within ``_EPS`` of the candidate's float32
    best is re-checked exactly, so ties resolve as in the naive loop."""
    rejected = np.ones(stop, bool)
    rejected[taken] = False
    rej = np.flatnonzero(rejected)
    if len(rej) == 0:
        return
    sims = ce[taken] @ ce[rej].T
    sims[taken[:, None] >= rej[None, :]] = -np.inf  # only rows taken before the candidate
    best = np.maximum(vals[rej, 0], sims.max(axis=0, initial=-np.inf))
    k1, v1, p1 = sel.near_exact(cand[rej], vals[rej], where[rej], best, start)
    ti, k2 = np.nonzero(sims >= best[None, :] - _EPS)
    v2 = _exact_dot(sel.emb, cand[rej[k2]], cand[taken[ti]])
    k, _, p = _first_max(np.concatenate([k1, k2]), np.concatenate([v1, v2]), np.concatenate([p1, start + ti]))
    blockers[cand[rej[k]]] = sel.rows[p]


@overload
def select_diverse_naive(emb: np.ndarray, order: np.ndarray, tau: float, budget: int | None, *, return_blockers: Literal[False] = ...) -> np.ndarray: ...
@overload
def select_diverse_naive(emb: np.ndarray, order: np.ndarray, tau: float, budget: int | None, *, return_blockers: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...


def select_diverse_naive(emb, order, tau, budget, *, return_blockers=False):
    """Reference for :func:`select_diverse`: one matrix-vector product against the selected
    set per candidate, as deita's ``batch_size=1`` loop does. Same parameters and result.

    Examples
    --------
    >>> import numpy as np
    >>> emb = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.6, 0.8]], np.float32)
    >>> select_diverse_naive(emb, np.arange(4), 0.9, None).tolist()
    [0, 2, 3]
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    order = np.asarray(order, dtype=np.int64)
    n, dim = emb.shape
    budget = len(order) if budget is None else min(int(budget), len(order))
    chosen = np.empty((budget, dim), np.float32)
    selected = np.empty(budget, np.int64)
    blockers = np.full(n, -1, np.int64)
    count = 0
    for c in order:
        if count == budget:
            break
        if count:
            sims = chosen[:count] @ emb[c]
            best = float(sims.max())
            if best >= tau - _EPS:  # near or above tau: decide on exact similarities
                near = np.flatnonzero(sims >= best - _EPS)
                exact = _exact_dot(emb, np.full(len(near), c), selected[near])
                j = int(exact.argmax())
                if exact[j] > tau:
                    blockers[c] = selected[near[j]]
                    continue
        chosen[count] = emb[c]
        selected[count] = c
        count += 1
    selected = selected[:count]
    return (selected, blockers) if return_blockers else selected


"""Per-row random draws that depend only on (seed, row id, purpose), never on batch layout.

Every random choice in the UltraFeedback stages (which pool model answers a slot, the
principle and its wording, the order the judge sees, the rejected completion) comes from
here, so a resumed or re-sharded run draws exactly the same values.
"""
from __future__ import annotations

import hashlib

import numpy as np


def row_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed from the recipe seed and any key parts.

    >>> row_seed(0, "abc", 1) == row_seed(0, "abc", 1) != row_seed(0, "abc", 2)
    True
    """
    key = ":".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") % (2**31 - 1)


def row_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator seeded by :func:`row_seed`."""
    return np.random.default_rng(row_seed(seed, *parts))

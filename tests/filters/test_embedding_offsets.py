"""filters.embeddings.embedding_array: list offsets never overflow int32."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from filters.embeddings import embedding_array, table_embeddings


# Bug (issue 10, item 16): offsets were one int32 arange, so above 2**31 - 1 values
# (~5.6M x 384 embeddings) they wrapped and the column read back garbage. The column is now
# split into chunks whose offsets fit; max_values shrinks the limit so the test needs no 8 GB.
def test_embeddings_past_the_offset_limit_are_chunked_not_wrapped():
    emb = np.arange(7 * 3, dtype=np.float32).reshape(7, 3)
    col = embedding_array(emb, max_values=6)  # two rows (6 values) per chunk
    assert isinstance(col, pa.ChunkedArray) and col.num_chunks == 4
    assert col.type == pa.list_(pa.float32())
    assert all(c.offsets.type == pa.int32() and c.offsets[-1].as_py() <= 6 for c in col.chunks)
    assert col.to_pylist() == emb.tolist()
    back = table_embeddings(pa.table({"embedding": col}), ["x"], "unused", embedding_column="embedding")
    np.testing.assert_allclose(back, emb / np.linalg.norm(emb, axis=1, keepdims=True), rtol=1e-6)


def test_small_input_stays_one_array():
    col = embedding_array(np.ones((2, 4), np.float32))
    assert isinstance(col, pa.ListArray) and col.to_pylist() == [[1.0] * 4] * 2
    assert embedding_array(np.zeros((0, 4), np.float32)).to_pylist() == []
    # the default limit is int32's: a 384-dim column chunks at 5,592,405 rows
    assert (2**31 - 1) // 384 == 5_592_405

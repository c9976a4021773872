"""A long sequence in the suite (issue 14's hole): Sq = Skv = 131072 on the CPU device (1024 x 256
tiles, 2^34 token pairs per head, element offsets past 2^23), checked on
sampled query blocks against a float64 softmax written here from the definition (the rows'
selected key blocks gathered from the sabi; nothing from the package), so a wrong block index
or an offset that wraps shows up as a wrong row. The sabi is very sparse to keep it to seconds.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

import blitz_acl
from blitz_acl import sabi as S

SEQ, HEAD_DIM = 131072, 64
BLOCK = (128, 512)
KEPT_PER_ROW = 6  # of 256 key blocks
# bf16 inputs, fp32 accumulation, P rounded to bf16: rows of |out| <= ~0.2 err well below this;
# a row computed from one wrong key block errs by ~1e-1.
ATOL = 2e-2


def _rows_reference(q, k, v, row_blocks, qb):
    """float64 softmax(q k^T / sqrt(D)) v for query block qb over its listed key blocks."""
    bq, bkv = BLOCK
    rows = q[qb * bq:(qb + 1) * bq].astype(np.float64)
    keys = np.concatenate([np.arange(j * bkv, (j + 1) * bkv) for j in sorted(row_blocks)])
    scores = rows @ k[keys].astype(np.float64).T / np.sqrt(HEAD_DIM)
    weights = np.exp(scores - scores.max(axis=1, keepdims=True))
    return (weights / weights.sum(axis=1, keepdims=True)) @ v[keys].astype(np.float64)


def test_long_sequence_matches_on_sampled_query_blocks():
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((1, 1, SEQ, HEAD_DIM)).astype(ml_dtypes.bfloat16) for _ in range(3))
    columns = SEQ // BLOCK[1]
    sabi = S.random_pattern(1, 1, SEQ, SEQ, 1 - KEPT_PER_ROW / columns, block_shape=BLOCK, seed=3, shuffle=True)
    # The last key blocks (indices >= 2^8, offsets >= 2^17 tokens) must be selected somewhere.
    assert int(sabi[sabi != S.PAD].max()) == columns - 1
    out = blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=BLOCK, device="cpu")
    rows = SEQ // BLOCK[0]
    for qb in sorted({0, 1, rows // 2, rows - 2, rows - 1, *rng.integers(0, rows, 3).tolist()}):
        listed = [int(j) for j in sabi[0, 0, qb] if j != S.PAD]
        assert len(listed) == KEPT_PER_ROW
        want = _rows_reference(q[0, 0], k[0, 0], v[0, 0], listed, qb)
        got = np.asarray(out[0, 0, qb * BLOCK[0]:(qb + 1) * BLOCK[0]], dtype=np.float64)
        err = float(np.abs(got - want).max())
        assert err <= ATOL, f"query block {qb} (keys {listed}): max |out - ref| = {err:.3e}"


def test_long_sequence_bound_sees_one_wrong_block():
    """The bound above can fail: swapping one of a row's six key blocks moves it past ATOL."""
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((SEQ // 16, HEAD_DIM)).astype(ml_dtypes.bfloat16) for _ in range(3))
    right = _rows_reference(q, k, v, [0, 2, 4, 6, 8, 10], 0)
    wrong = _rows_reference(q, k, v, [0, 2, 4, 6, 8, 11], 0)
    assert float(np.abs(right - wrong).max()) > ATOL

"""The float64 oracle for input_layout "TND" (packed varlen), by reduction to tests/oracle.py:
batch b is the tokens [ends[b-1], ends[b]) of query (and of key/value by their own cumulative
ends), computed as one BNSD batch of the oracle with that batch's sabi [1|Bs, Ns, R, W] rows
ceil(Lq_b / bq) (a TND sabi has R = ceil(max Lq / bq) rows per batch; the rest are past the
batch's tokens) and mode / block rules on the batch's own lengths.

`attention(query, key, value, sabi=None, *, actual_seq_lengths, actual_seq_lengths_kv, **kw)`:
out float64 [T, N, D], and with return_lse=True lse [N, T]. Kept apart from oracle.py so that
file stays the one independent reading of the other layouts.
"""

from __future__ import annotations

import numpy as np

import oracle


def batches(query, key, value, sabi=None, *, actual_seq_lengths, actual_seq_lengths_kv,
            block_shape=(128, 512)):
    """Batch by batch: (q0, q1, q [1, N, Lq, D], k, v [1, Nkv, Lkv, D], sabi [1, Ns, ceil(Lq / bq), W]
    or None), float64, for the query tokens [q0, q1) of a TND call (the one reading of the
    packing: attention() below and the npu_sim bounds of tests/test_npu_sim_tnd.py use it)."""
    q, k, v = oracle.to_float64(query), oracle.to_float64(key), oracle.to_float64(value)
    s = oracle.to_int64(sabi)
    if s is not None and s.ndim == 3:
        s = s[None]
    q_ends = [int(x) for x in actual_seq_lengths]
    kv_ends = [int(x) for x in actual_seq_lengths_kv]
    q0 = kv0 = 0
    for b, (q1, kv1) in enumerate(zip(q_ends, kv_ends)):
        rows = -(-(q1 - q0) // block_shape[0])
        sb = None if s is None else s[b if s.shape[0] > 1 else 0][None, :, :rows]
        bnsd = lambda t, a, z: t[a:z].transpose(1, 0, 2)[None]  # [L, N, D] -> [1, N, L, D]
        yield q0, q1, bnsd(q, q0, q1), bnsd(k, kv0, kv1), bnsd(v, kv0, kv1), sb
        q0, kv0 = q1, kv1


def attention(query, key, value, sabi=None, *, actual_seq_lengths, actual_seq_lengths_kv,
              block_shape=(128, 512), return_lse=False, input_layout="TND", **kwargs):
    assert input_layout == "TND"
    tokens, heads, d = oracle.to_float64(query).shape
    out = np.zeros((tokens, heads, d))
    lse = np.full((heads, tokens), -np.inf)
    for q0, q1, qb, kb, vb, sb in batches(query, key, value, sabi, actual_seq_lengths=actual_seq_lengths,
                                          actual_seq_lengths_kv=actual_seq_lengths_kv, block_shape=block_shape):
        o, l = oracle.attention(qb, kb, vb, sb, input_layout="BNSD", block_shape=block_shape, return_lse=True,
                                **kwargs)
        out[q0:q1] = o[0].transpose(1, 0, 2)
        lse[:, q0:q1] = l[0]
    return (out, lse) if return_lse else out

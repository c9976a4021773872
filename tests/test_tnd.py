"""input_layout "TND" (packed varlen) on device="cpu" against the float64 oracle reduced per batch
(tests/oracle_tnd.py). The original documents TND (docs/aclnnBlitzSparseAttention.md of
hicann/ops-transformer, the revision with softmaxLseFlag): query [T, N, D], key/value
[Tkv, Nkv, D], actualSeqLengths(Kv) required and CUMULATIVE (each entry = the tokens of that batch
and all before it, non-decreasing, their count is B), T the sum of the batches' lengths.
Its TND limits (A2: bf16 only, T <= 65536, N in {8, ..., 128}, D 192, modes 0 without mask / 3)
are narrower than ours: fp16/bf16/fp32, any N / Nkv (GQA), any D the device takes, modes 0, 2-4
and sabi; explicit masks are refused with TND. A TND sabi is [1|B, 1|N, ceil(max Lq / bq), W]:
row i of batch b covers that batch's query tokens [i*bq, (i+1)*bq), key block c its keys
[c*bkv, (c+1)*bkv) (upstream does not define sabi for TND; this is ours). The NPU op's TND
(its tiling and kernel through the execution model) is tested in tests/test_npu_sim_tnd.py.
"""

import ml_dtypes
import numpy as np
import pytest

import blitz_acl
import oracle_tnd
from blitz_acl import sabi as S
from cases import assert_rows_close

DTYPES = {"float16": (np.float16, 4e-3), "bfloat16": (ml_dtypes.bfloat16, 2.5e-2)}
N, NKV, D = 4, 2, 64
Q_LENS = (300, 0, 129, 700)  # a batch with no query tokens, partial and several blocks
KV_LENS = (500, 64, 0, 1100)  # a batch with no keys: its rows are zeros


def _packed(lengths, heads, dtype, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((sum(lengths), heads, D)).astype(dtype)


def _call(dtype, **kwargs):
    q = _packed(Q_LENS, N, dtype, 1)
    k, v = _packed(KV_LENS, NKV, dtype, 2), _packed(KV_LENS, NKV, dtype, 3)
    kw = dict(input_layout="TND", num_heads=N, num_key_value_heads=NKV,
              actual_seq_lengths=list(np.cumsum(Q_LENS)), actual_seq_lengths_kv=list(np.cumsum(KV_LENS)),
              return_lse=True)
    kw.update(kwargs)
    return (q, k, v), kw


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("mode", (0, 2, 3, 4))
@pytest.mark.parametrize("block_shape", ((128, 128), (128, 512), (256, 192)), ids=str)
def test_tnd_matches_the_oracle(dtype, mode, block_shape):
    np_dtype, atol = DTYPES[dtype]
    (q, k, v), kw = _call(np_dtype, sparse_mode=mode, block_shape=block_shape, pre_tokens=200, next_tokens=30)
    sabi = S.random_pattern(len(Q_LENS), N, max(Q_LENS), max(KV_LENS), 0.5, block_shape=block_shape,
                            seed=mode, shuffle=True)
    out, lse = blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="cpu", **kw)
    assert out.shape == q.shape and lse.shape == (N, q.shape[0])
    want_out, want_lse = oracle_tnd.attention(q, k, v, sabi, **kw)
    assert_rows_close(np.asarray(out, np.float64)[None], want_out[None], atol, "out", layout="BSND")
    assert_rows_close(lse.T[None, None], want_lse.T[None, None], atol, "lse", layout="BNSD")
    # The packing matters: batch 3 read at batch 0's offsets would give other numbers.
    assert not np.allclose(want_out[-700:], 0.0)


def test_tnd_dense_without_sabi_and_batches_independent():
    (q, k, v), kw = _call(np.float16, return_lse=False)
    out = blitz_acl.blitz_sparse_attention(q, k, v, device="cpu", **kw)
    want = oracle_tnd.attention(q, k, v, **kw)
    assert_rows_close(np.asarray(out, np.float64)[None], want[None], 4e-3, "out", layout="BSND")
    # batch 2 has no keys: zeros; batch 0's answer alone equals a BSND call of its tokens
    assert not np.asarray(out[300:429], np.float64).any()
    alone = blitz_acl.blitz_sparse_attention(q[None, :300], k[None, :500], v[None, :500], input_layout="BSND",
                                             num_key_value_heads=NKV, device="cpu")
    np.testing.assert_array_equal(np.asarray(out[:300]), np.asarray(alone[0]))


@pytest.mark.parametrize("change, message", [
    (dict(actual_seq_lengths=None), "actual_seq_lengths is required with input_layout TND"),
    (dict(actual_seq_lengths=[300, 200, 429, 1129]), "lengths are cumulative, so each entry must lie in"),
    (dict(actual_seq_lengths=[300, 300, 429, 1000]), "ends at 1000 but the tensor holds T=1129"),
    (dict(actual_seq_lengths_kv=[500, 564, 564, 1500]), "ends at 1500 but the tensor holds T=1664"),
    (dict(actual_seq_lengths_kv=[500, 1664]), "actual_seq_lengths_kv has 2 entries but actual_seq_lengths has 4"),
    (dict(atten_mask=np.zeros((700, 1100), bool)), "atten_mask with sparse_mode 0 or 1 is not supported"),
    (dict(device="reference"), "not supported by device='reference'"),
])
def test_tnd_bad_input_is_named(change, message):
    (q, k, v), kw = _call(np.float16)
    kw.update(device="cpu")
    kw.update(change)
    with pytest.raises(ValueError, match=message):
        blitz_acl.blitz_sparse_attention(q, k, v, **kw)


def test_tnd_sabi_rows_follow_the_longest_batch():
    (q, k, v), kw = _call(np.float16)
    sabi = S.random_pattern(len(Q_LENS), N, 1129, max(KV_LENS), 0.5, block_shape=(128, 512))  # R of T, not of max
    with pytest.raises(ValueError, match="sabi"):
        blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="cpu", **kw)

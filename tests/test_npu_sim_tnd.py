"""input_layout "TND" (packed varlen) on the NPU op, run through the Ascend C execution model
(device="npu_sim"): the real op_host tiling and the real kernel, which finds each batch's first
query / key token from the cumulative actual lengths (op_kernel/batch_tokens_gm.h).

Truth per batch: the TND call reduced to one BNSD batch of its own tokens (tests/oracle_tnd.py's
`batches`, the same reduction its float64 oracle uses), and for each the per-row bounds of
tests/bounds.py (K x torch SDPA's error in the same dtype + ATOL + RTOL). The batches: uneven
lengths not multiples of the block, a batch with no query tokens, a batch with no keys, GQA
(N = 4, Nkv = 2), lse [N, T]. A kernel that drops or swaps one tile of one batch exceeds the
bound (checked below), so the bound is tight enough to see a tile.
"""

import ml_dtypes
import numpy as np
import pytest

import blitz_acl
import bounds
import oracle_tnd
from blitz_acl import sabi as S
from blitz_acl.devices import library, npu_sim

N, NKV, D = 4, 2, 64
Q_LENS = (300, 0, 129, 450)    # partial blocks, a batch with no query tokens, several blocks
KV_LENS = (500, 64, 0, 900)    # a batch with no keys: its rows are zeros, lse -inf
DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}
CORES_ENV = "BLITZ_ACL_NPU_SIM_CORES"
PAD = 0xFFFF


@pytest.fixture(scope="module", autouse=True)
def sim_library():
    return library.load(library.NPU_SIM)


def _packed(lengths, heads, dtype, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((sum(lengths), heads, D)).astype(dtype)


def _inputs(dtype, q_lens=Q_LENS, kv_lens=KV_LENS, **kwargs):
    np_dtype = DTYPES[dtype]
    q = _packed(q_lens, N, np_dtype, 1)
    k, v = _packed(kv_lens, NKV, np_dtype, 2), _packed(kv_lens, NKV, np_dtype, 3)
    kw = dict(input_layout="TND", num_heads=N, num_key_value_heads=NKV,
              actual_seq_lengths=list(np.cumsum(q_lens)), actual_seq_lengths_kv=list(np.cumsum(kv_lens)))
    kw.update(kwargs)
    return (q, k, v), kw


def _batch_kwargs(kw):
    """The TND call's options for one batch as a BNSD call (lengths are the slices' own)."""
    skip = {"input_layout", "num_heads", "actual_seq_lengths", "actual_seq_lengths_kv", "return_lse"}
    return {key: value for key, value in kw.items() if key not in skip}


def _truths(q, k, v, sabi, dtype, kw):
    """[(q0, q1, Truth or None)] per batch; None for a batch without keys (its rows must be zeros
    with lse -inf, checked exactly)."""
    result = []
    for q0, q1, qb, kb, vb, sb in oracle_tnd.batches(
            q, k, v, sabi, actual_seq_lengths=kw["actual_seq_lengths"],
            actual_seq_lengths_kv=kw["actual_seq_lengths_kv"], block_shape=kw.get("block_shape", (128, 512))):
        if q1 == q0:
            continue
        truth = None if kb.shape[2] == 0 else bounds.truth(qb, kb, vb, dtype, sabi=sb, input_layout="BNSD",
                                                          **_batch_kwargs(kw))
        result.append((q0, q1, truth))
    return result


def _as_bnsd(out, lse, q0, q1):
    """Batch rows [q0, q1) of a TND out [T, N, D] / lse [N, T] as [1, N, L, D] / [1, N, L]."""
    o = np.asarray(out, np.float64)[q0:q1].transpose(1, 0, 2)[None]
    return o, (None if lse is None else np.asarray(lse, np.float64)[:, q0:q1][None])


def _assert_within(out, lse, truths, what):
    for q0, q1, truth in truths:
        o, l = _as_bnsd(out, lse, q0, q1)
        if truth is None:
            assert not o.any(), f"{what}: rows {q0}:{q1} have no keys but are not zeros"
            assert l is None or np.isneginf(l).all(), f"{what}: rows {q0}:{q1} have no keys but lse is not -inf"
            continue
        bounds.assert_within(o, truth, "BNSD", l, what=f"{what} tokens {q0}:{q1}")


def _run(q, k, v, sabi, kw):
    return blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="npu_sim", **kw)


CASES = [  # (sparse_mode, block_shape, sparsity): each dtype runs every one
    (0, (128, 512), 0.5),
    (3, (128, 128), 0.3),
    (4, (64, 256), 0.4),
    (2, (256, 192), 0.0),
]


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("mode, block_shape, sparsity", CASES, ids=lambda x: str(x))
def test_tnd_matches_the_oracle(dtype, mode, block_shape, sparsity):
    (q, k, v), kw = _inputs(dtype, sparse_mode=mode, block_shape=block_shape, pre_tokens=200, next_tokens=30,
                            return_lse=True)
    sabi = S.random_pattern(len(Q_LENS), N, max(Q_LENS), max(KV_LENS), sparsity, block_shape=block_shape,
                            seed=mode, shuffle=True)
    out, lse = _run(q, k, v, sabi, kw)
    assert out.shape == q.shape and lse.shape == (N, q.shape[0])
    _assert_within(out, lse, _truths(q, k, v, sabi, dtype, kw), f"npu_sim TND mode {mode} {block_shape}")


def test_tnd_rows_past_a_batch_are_not_written():
    """The last batch shorter than the longest: its last query block ends past T, so a kernel
    writing a whole block (zeros for the rows past the batch's length) would write outside
    attention_out / softmax_lse, which the execution model refuses; and the other batches'
    rows stay within their bounds."""
    q_lens, kv_lens = (450, 129, 0, 200), (900, 0, 64, 700)
    (q, k, v), kw = _inputs("bfloat16", q_lens, kv_lens, sparse_mode=3, block_shape=(128, 512), return_lse=True)
    sabi = S.random_pattern(len(q_lens), N, max(q_lens), max(kv_lens), 0.5, block_shape=(128, 512), seed=3)
    out, lse = _run(q, k, v, sabi, kw)
    _assert_within(out, lse, _truths(q, k, v, sabi, "bfloat16", kw), "npu_sim TND last batch shorter")


def test_tnd_dense_and_batch_offsets():
    """No sabi, no lse: within the bounds; and batch 3 alone (a BSND call of its own tokens through
    the same kernel) is bitwise what the packed call wrote for it, so the packed offsets
    address exactly its rows."""
    (q, k, v), kw = _inputs("float16")
    out = _run(q, k, v, None, kw)
    _assert_within(out, None, _truths(q, k, v, None, "float16", kw), "npu_sim TND dense")
    q3, kv3 = sum(Q_LENS[:3]), sum(KV_LENS[:3])
    alone = blitz_acl.blitz_sparse_attention(q[None, q3:], k[None, kv3:], v[None, kv3:], input_layout="BSND",
                                             num_key_value_heads=NKV, device="npu_sim")
    np.testing.assert_array_equal(np.asarray(out[q3:]).view(np.uint16), np.asarray(alone[0]).view(np.uint16))


def test_tnd_core_counts_give_identical_outputs(monkeypatch):
    """The device split scan reads the cumulative lengths too: 2 and 8 vector cores give the
    same bits (a core computing another batch's rows, or none, would not)."""
    (q, k, v), kw = _inputs("bfloat16", sparse_mode=3, block_shape=(128, 128), return_lse=True)
    sabi = S.random_pattern(len(Q_LENS), N, max(Q_LENS), max(KV_LENS), 0.3, block_shape=(128, 128), seed=5)
    results = []
    for cores in (2, 8):
        monkeypatch.setenv(CORES_ENV, str(cores))
        results.append(_run(q, k, v, sabi, kw))
        report = npu_sim.last_report()
        assert report["ok"] and len(report["vector"]) == 2 * report["block_dim"] <= cores
    (out2, lse2), (out8, lse8) = results
    assert np.array_equal(np.asarray(out2).view(np.uint16), np.asarray(out8).view(np.uint16))
    assert np.array_equal(lse2, lse8)


def _one_selected(sabi, b, h, row):
    """The first selected column of sabi[b, h, row] and a key block that row does not select."""
    entries = [int(x) for x in sabi[b, h, row]]
    col = next(i for i, x in enumerate(entries) if x != PAD)
    unselected = next(c for c in range(-(-KV_LENS[b] // 512)) if c not in entries)
    return col, unselected


@pytest.mark.parametrize("change", ("drop", "swap"))
def test_one_wrong_tile_exceeds_the_bound(change):
    """The kernel run with one tile of batch 3 dropped (or replaced by an unselected key block)
    against the truth of the sabi as given: some row of batch 3 must exceed its bound, so the
    TND checks above would see a kernel that loses or misplaces one tile."""
    dtype, block_shape = "float16", (128, 512)
    (q, k, v), kw = _inputs(dtype, block_shape=block_shape, return_lse=True)
    sabi = S.random_pattern(len(Q_LENS), N, max(Q_LENS), max(KV_LENS), 0.5, block_shape=block_shape, seed=11)
    truths = _truths(q, k, v, sabi, dtype, kw)
    wrong = np.array(sabi, copy=True)
    col, unselected = _one_selected(wrong, 3, 1, 2)
    wrong[3, 1, 2, col] = PAD if change == "drop" else unselected
    out, lse = _run(q, k, v, wrong, kw)
    q0, q1, truth = truths[-1]
    assert (q0, q1) == (sum(Q_LENS[:3]), sum(Q_LENS))
    o, _ = _as_bnsd(out, lse, q0, q1)
    excess = bounds.row_excess(o, truth)
    assert excess.max() > 10.0, f"{change}: worst row only {excess.max():.3g} x its bound"
    # Only query block 2 of head 1 changed: every other row of the batch stays within its bound.
    rows = np.zeros(excess.shape, bool)
    rows[0, 1, 2 * 128:3 * 128] = True
    assert excess[~rows].max() <= 1.0
    _assert_within(out, lse, truths[:-1], f"npu_sim TND other batches ({change})")

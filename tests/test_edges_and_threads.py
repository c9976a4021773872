"""Corners the matrix does not reach, each against the independent oracle (tests/bounds.py):
thread counts (BLITZ_ACL_NUM_THREADS, read by the binding at every call), head dims above 256, sabi with no
rows or no columns, B = 0, and validate=False on ordinary valid inputs."""

import ml_dtypes
import numpy as np
import pytest

import blitz_acl
import bounds
from blitz_acl import limits
from blitz_acl import sabi as S

THREADS_ENV = "BLITZ_ACL_NUM_THREADS"
NUMPY = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}


def _qkv(b, n, sq, skv, d, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((b, n, s, d), dtype=np.float32).astype(NUMPY[dtype])
            for s in (sq, skv, skv)]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_thread_counts_give_identical_answers_within_the_bound(dtype, monkeypatch):
    """1, 3 and 5 threads (more than this machine's 2 cores): each row is one task's, so the
    answers are bit-identical, and within the oracle's bound."""
    from blitz_acl.devices import library

    q, k, v = _qkv(2, 3, 700, 1500, 64, dtype)
    kw = dict(sabi=S.random_pattern(2, 3, 700, 1500, 0.5, block_shape=(64, 128), seed=1),
              block_shape=(64, 128), sparse_mode=3, return_lse=True)
    results = {}
    for n in (1, 3, 5):
        monkeypatch.setenv(THREADS_ENV, str(n))
        assert f"threads {n};" in library.load().device_info()
        results[n] = blitz_acl.blitz_sparse_attention(q, k, v, device="cpu", **kw)
    for n in (3, 5):
        np.testing.assert_array_equal(results[n][0], results[1][0], err_msg=f"{n} threads")
        np.testing.assert_array_equal(results[n][1], results[1][1], err_msg=f"{n} threads")
    out, lse = results[1]
    bounds.assert_within(out, bounds.truth(q, k, v, dtype, **kw), "BNSD", lse)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("d", [320, limits.CPU_HEAD_DIM_MAX])
def test_head_dims_above_256(d, dtype):
    q, k, v = _qkv(1, 2, 150, 600, d, dtype, seed=d)
    kw = dict(sabi=S.random_pattern(1, 2, 150, 600, 0.5, block_shape=(64, 128), seed=2),
              block_shape=(64, 128), return_lse=True)
    out, lse = blitz_acl.blitz_sparse_attention(q, k, v, device="cpu", **kw)
    bounds.assert_within(out, bounds.truth(q, k, v, dtype, **kw), "BNSD", lse)


def test_head_dim_past_the_cpu_limit_is_a_clear_error():
    q, k, v = _qkv(1, 1, 20, 70, limits.CPU_HEAD_DIM_MAX + 1)
    with pytest.raises(ValueError, match=rf"head_dim {limits.CPU_HEAD_DIM_MAX + 1} .*not supported "
                                         rf"by the CPU device: expected 1..{limits.CPU_HEAD_DIM_MAX}"):
        blitz_acl.blitz_sparse_attention(q, k, v, device="cpu")


def test_zero_width_sabi_attends_nothing():
    """W = 0: no row lists a block; every output row is zeros and every lse -inf."""
    q, k, v = _qkv(2, 2, 200, 700, 32)
    sabi = np.zeros((2, 2, 4, 0), np.uint16)
    out, lse = blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=(64, 128), device="cpu",
                                                return_lse=True)
    assert out.shape == q.shape and not out.any() and np.isneginf(lse).all()


@pytest.mark.parametrize("case", ["zero_rows", "batch_0", "batch_0_sabi"])
def test_empty_problems(case):
    """R = 0 (Sq = 0) and B = 0: accepted, empty outputs of the right shapes."""
    b, sq = (1, 0) if case == "zero_rows" else (0, 200)
    q, k, v = _qkv(b, 2, sq, 700, 32)
    sabi = {"zero_rows": np.zeros((1, 2, 0, 3), np.uint16), "batch_0": None,
            "batch_0_sabi": np.zeros((0, 2, 4, 1), np.uint16)}[case]
    out, lse = blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=(64, 128), device="cpu",
                                                return_lse=True)
    assert out.shape == q.shape and out.size == 0 and lse.shape == (b, 2, sq)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_validate_false_on_valid_inputs_matches_the_oracle(dtype):
    """Ordinary lengths, a shuffled sabi with -1 holes, GQA and an explicit mask."""
    q = _qkv(2, 4, 333, 900, 64, dtype, seed=3)[0]
    _, k, v = _qkv(2, 2, 333, 900, 64, dtype, seed=4)
    mask = np.random.default_rng(5).random((2, 1, 333, 900)) < 0.2
    kw = dict(sabi=S.random_pattern(2, 4, 333, 900, 0.4, block_shape=(64, 128), seed=6, shuffle=True),
              block_shape=(64, 128), atten_mask=mask, actual_seq_lengths=[300, 201],
              actual_seq_lengths_kv=[850, 513], return_lse=True)
    out, lse = blitz_acl.blitz_sparse_attention(q, k, v, device="cpu", validate=False, **kw)
    bounds.assert_within(out, bounds.truth(q, k, v, dtype, **kw), "BNSD", lse)

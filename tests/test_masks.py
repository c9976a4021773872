"""Explicit masks in the original's forms on device="cpu" against the float64 oracle
(tests/oracle.py): [Sq', Skv'], [1|B, Sq', Skv'], [1|B, 1|N, Sq', Skv'] with Sq' >= Sq and
Skv' >= Skv (the top-left window is used; the original's docs pad the key length to 32), and a
different mask per head. Bool, int8 and uint8; the padding is filled with values that would
change the answer if it were read.
"""

import numpy as np
import pytest

import blitz_acl
import oracle
from blitz_acl import sabi as S
from cases import assert_rows_close

B, N, NKV, SQ, SKV, D = 2, 4, 2, 200, 300, 32
ATOL = {np.float32: 1e-4, np.float16: 4e-3}


def _qkv(dtype):
    rng = np.random.default_rng(5)
    return (rng.standard_normal((B, N, SQ, D)).astype(dtype),
            rng.standard_normal((B, NKV, SKV, D)).astype(dtype),
            rng.standard_normal((B, NKV, SKV, D)).astype(dtype))


def _mask(lead, sq, skv, dtype, seed):
    """Random 0/1 mask of shape lead + (sq, skv), padding included: a kernel reading the rows with
    the wrong stride (Skv instead of Skv') or the wrong head gets other bits."""
    rng = np.random.default_rng(seed)
    return (rng.random(lead + (sq, skv)) < 0.3).astype(dtype)


SHAPES = {
    "2d_padded": (), "3d_batch_padded": (B,), "3d_shared_padded": (1,),
    "4d_per_head": (B, N), "4d_per_head_shared_batch": (1, N), "4d_one_head": (B, 1),
}


@pytest.mark.parametrize("dtype", list(ATOL), ids=lambda d: d.__name__)
@pytest.mark.parametrize("mask_dtype", [np.bool_, np.int8, np.uint8], ids=lambda d: d.__name__)
@pytest.mark.parametrize("form", list(SHAPES))
def test_mask_form_matches_the_oracle(form, mask_dtype, dtype):
    q, k, v = _qkv(dtype)
    lead = SHAPES[form]
    padded = "padded" in form
    mask = _mask(lead, SQ + (24 if padded else 0), -(-SKV // 32) * 32 if padded else SKV, mask_dtype, seed=len(form))
    sabi = S.random_pattern(B, N, SQ, SKV, 0.3, block_shape=(64, 128), seed=2)
    kwargs = dict(atten_mask=mask, sparse_mode=1, num_key_value_heads=NKV, block_shape=(64, 128),
                  actual_seq_lengths=[SQ, 150], return_lse=True)
    out, lse = blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="cpu", **kwargs)
    expected_out, expected_lse = oracle.attention(q, k, v, sabi, **kwargs)
    assert_rows_close(np.asarray(out, np.float64), expected_out, ATOL[dtype], "out", layout="BNSD")
    assert_rows_close(lse, expected_lse, ATOL[dtype], "lse", layout="lse")
    # The package's own reference reads the same forms (its output is rounded to the input dtype).
    reference = blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="reference", **kwargs)
    assert_rows_close(np.asarray(reference[0], np.float64), expected_out, 1e-6 if dtype is np.float32 else 1e-3,
                      "reference out", layout="BNSD")


def test_padding_is_never_read():
    """A padded mask gives exactly the answer of its [Sq, Skv] window, whatever the padding holds."""
    q, k, v = _qkv(np.float32)
    window = _mask((B, N), SQ, SKV, np.uint8, seed=9)
    padded = np.ones((B, N, SQ + 5, SKV + 20), np.uint8)
    padded[..., :SQ, :SKV] = window
    a = blitz_acl.blitz_sparse_attention(q, k, v, atten_mask=window, sparse_mode=1, num_key_value_heads=NKV)
    b = blitz_acl.blitz_sparse_attention(q, k, v, atten_mask=padded, sparse_mode=1, num_key_value_heads=NKV)
    np.testing.assert_array_equal(a, b)


def test_heads_of_a_per_head_mask_differ():
    """A per-head mask is read per head: masking head 1 only changes head 1."""
    q, k, v = _qkv(np.float32)
    mask = np.zeros((1, N, SQ, SKV), np.bool_)
    base = blitz_acl.blitz_sparse_attention(q, k, v, atten_mask=mask, num_key_value_heads=NKV)
    mask[0, 1, :, : SKV // 2] = True
    out = blitz_acl.blitz_sparse_attention(q, k, v, atten_mask=mask, num_key_value_heads=NKV)
    changed = np.abs(out - base).max(axis=(0, 2, 3)) > 1e-3
    assert changed.tolist() == [False, True, False, False]


@pytest.mark.parametrize("shape, fragment", [
    ((SQ - 1, SKV), "Sq' >= Sq"), ((SQ, SKV - 1), "Skv' >= Skv"), ((B, 3, SQ, SKV), "1 or N"),
    ((3, SQ, SKV), "1 or B"), ((1, 1, 1, SQ, SKV), "atten_mask has shape"),
])
def test_bad_mask_shapes_are_refused(shape, fragment):
    q, k, v = _qkv(np.float32)
    with pytest.raises(ValueError, match=fragment.replace("'", ".")):
        blitz_acl.blitz_sparse_attention(q, k, v, atten_mask=np.zeros(shape, np.bool_), num_key_value_heads=NKV)

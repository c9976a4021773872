"""Block shapes on device="cpu" against the independent float64 oracle (tests/oracle.py): every
pair of the original's {128, 256, 512, 1024} (16 pairs), plus our extras (bq 64, bkv a multiple
of 64), in fp16 and bf16, with lse, partial last tiles and a sabi that skips tiles. The shapes
the device refuses are refused with the rule in the message.
"""

import itertools

import ml_dtypes
import numpy as np
import pytest

import blitz_acl
import oracle
from blitz_acl import limits
from blitz_acl import sabi as S
from cases import assert_rows_close

ORIGINAL_BLOCKS = (128, 256, 512, 1024)
ORIGINAL_PAIRS = list(itertools.product(ORIGINAL_BLOCKS, ORIGINAL_BLOCKS))
OUR_EXTRA_PAIRS = [(64, 64), (64, 192), (1024, 64), (256, 960)]
# Several query and key blocks at every pair, a partial last tile in both dims.
B, N, NKV, SQ, SKV, D = 1, 2, 1, 1100, 1300, 32
DTYPES = {"float16": (np.float16, 4e-3), "bfloat16": (ml_dtypes.bfloat16, 2.5e-2)}


def _inputs(dtype):
    rng = np.random.default_rng(11)
    q = rng.standard_normal((B, N, SQ, D)).astype(dtype)
    k = rng.standard_normal((B, NKV, SKV, D)).astype(dtype)
    v = rng.standard_normal((B, NKV, SKV, D)).astype(dtype)
    return q, k, v


def test_the_limits_cover_every_original_pair():
    assert all(limits.block_shape_supported(bq, bkv) for bq, bkv in ORIGINAL_PAIRS + OUR_EXTRA_PAIRS)


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("block_shape", ORIGINAL_PAIRS + OUR_EXTRA_PAIRS, ids=lambda b: f"{b[0]}x{b[1]}")
def test_block_shape_matches_the_oracle(block_shape, dtype):
    np_dtype, atol = DTYPES[dtype]
    q, k, v = _inputs(np_dtype)
    sabi = S.random_pattern(B, N, SQ, SKV, 0.4, block_shape=block_shape, seed=sum(block_shape), shuffle=True)
    kwargs = dict(num_key_value_heads=NKV, block_shape=block_shape, return_lse=True)
    out, lse = blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="cpu", **kwargs)
    expected_out, expected_lse = oracle.attention(q, k, v, sabi, **kwargs)
    assert_rows_close(np.asarray(out, np.float64), expected_out, atol, "out", layout="BNSD")
    assert_rows_close(lse, expected_lse, atol, "lse", layout="lse")
    assert (S.normalize(sabi) == S.PAD).any()  # tiles really skipped at this block shape


@pytest.mark.parametrize("block_shape", [(32, 128), (2048, 128), (128, 32), (128, 100), (128, 1088), (96, 512)])
def test_unsupported_block_shape_names_the_rule(block_shape):
    q, k, v = _inputs(np.float16)
    with pytest.raises(ValueError, match=limits.BLOCK_SHAPE_RULE):
        blitz_acl.blitz_sparse_attention(q, k, v, block_shape=block_shape, device="cpu")

"""select_blocks' antidiagonal cell kernels (kernel_src/cpu/select/cell_kernels*.cpp) on every
CPU kernel path this machine has, against the float64 statement of the rule (select_oracle.py).

Each path runs its own variant: portable / avx2 fp32 FMA for every dtype; avx512 vdpbf16ps for
bf16 inputs (fp32 FMA otherwise); amx tile products for bf16 inputs (avx512 fp32 otherwise). The
shapes reach every branch of the blocking: several query chunks (over 128 row groups) and key
chunks (over 256 key cells), partial row groups and key cells (stride 5 does not divide the
blocks; some cells miss the antidiagonal and take the mean of their valid pairs), head dims whose
stride x D is not a multiple of 32 (the reduction is zero-padded), GQA. bf16 inputs are compared
on their own values: their products are exact in every variant, so only fp32 summation order
differs from float64 (within select_oracle.TIE_TOL, and counted)."""

from __future__ import annotations

import functools

import ml_dtypes
import numpy as np
import pytest

import blitz_acl
from blitz_acl import block_select

import test_select_blocks as base

# (name, Sq, Skv, D, block_shape, stride, rule: (mass, top_k))
SHAPES = [
    ("chunks_stride8", 1100, 2100, 32, (64, 128), 8, (0.9, None)),
    ("partial_stride5_d24", 333, 700, 24, (64, 128), 5, (0.8, 2)),
]
DTYPES = {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16}


def _case(name, sq, skv, d, block):
    return (name, 1, 2, 1, sq, skv, d, block, "BNSD", None, None)


@functools.lru_cache(maxsize=None)
def _inputs_and_oracle(shape_name, dtype):
    name, sq, skv, d, block, stride, (mass, top_k) = next(s for s in SHAPES if s[0] == shape_name)
    rng = np.random.default_rng(sum(map(ord, name + dtype)))
    q = base._tokens(rng, (1, 2, sq, d)).astype(DTYPES[dtype])
    k = base._tokens(rng, (1, 1, skv, d)).astype(DTYPES[dtype])
    want, tie = base._oracle_sabi(q.astype(np.float64), k.astype(np.float64), _case(name, sq, skv, d, block),
                                  "antidiagonal", mass, top_k, {"stride": stride}, block_select.Anchors(), False)
    return q, k, want, tie


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("shape", [s[0] for s in SHAPES])
def test_antidiagonal_on_every_path_matches_the_oracle(kernel_path, shape, dtype):
    name, sq, skv, d, block, stride, (mass, top_k) = next(s for s in SHAPES if s[0] == shape)
    q, k, want, tie = _inputs_and_oracle(shape, dtype)
    got = blitz_acl.select_blocks(q, k, block_shape=block, method="antidiagonal", stride=stride, mass=mass,
                                  top_k=top_k)
    base._assert_same_blocks(got, want, tie)


def test_the_oracle_comparison_sees_one_dropped_key_chunk():
    """The comparison above is sharp enough to catch a kernel that skipped one chunk of key cells
    (here: the oracle run on keys whose second 256-cell chunk is zeroed, as a kernel that never
    computed it would see them)."""
    name, sq, skv, d, block, stride, (mass, top_k) = SHAPES[0]
    q, k, want, tie = _inputs_and_oracle(name, "float32")
    dropped = k.astype(np.float64).copy()
    dropped[:, :, 256 * stride:512 * stride] = 0.0
    wrong, _ = base._oracle_sabi(q.astype(np.float64), dropped, _case(name, sq, skv, d, block), "antidiagonal", mass,
                                 top_k, {"stride": stride}, block_select.Anchors(), False)
    with pytest.raises(AssertionError):
        base._assert_same_blocks(wrong, want, tie)

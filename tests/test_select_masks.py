"""select_blocks with the attention's index mask (sparse_mode 2 / 3 causal, 4 band with pre /
next tokens) against the float64 statement of the rule (select_oracle.token_mask, masses with
visible=, choose with seen=): a block no query row of the block sees any key of is never chosen
(anchors included), and the scores run over the visible key units / cells only. Unaligned
shapes, Sq != Skv (modes 3 and 4 anchor bottom-right), per-batch lengths, GQA, both methods, and
every CPU kernel path for antidiagonal's cell kernels."""

from __future__ import annotations

import zlib

import ml_dtypes
import numpy as np
import pytest

import blitz_acl
from blitz_acl import block_select

import select_oracle as oracle
import test_select_blocks as base

# (name, B, N, Nkv, Sq, Skv, D, block_shape, layout, lengths_q, lengths_kv), as test_select_blocks'.
CASES = [
    ("bnsd_long_kv", 1, 2, 1, 333, 900, 16, (64, 128), "BNSD", None, None),
    ("tnd_lengths", 2, 2, 2, 300, 400, 16, (64, 64), "TND", [300, 150], [260, 400]),
]
MASKS = [
    dict(sparse_mode=2),
    dict(sparse_mode=3),
    dict(sparse_mode=4, pre_tokens=200, next_tokens=30),
    dict(sparse_mode=4, pre_tokens=-50, next_tokens=120),  # a band off the diagonal
]
RULES = [("mean_pool", 0.9, None, {}), ("antidiagonal", 0.8, 2, {"stride": 5})]


def _run(case, method, mass, top_k, extra, mask, dtype=np.float32):
    name, b, n, nkv, sq, skv, d, block, layout, lq, lkv = case
    rng = np.random.default_rng(zlib.crc32((name + method).encode()))
    q = base._tokens(rng, (b, n, sq, d)).astype(dtype)
    k = base._tokens(rng, (b, nkv, skv, d)).astype(dtype)
    got = blitz_acl.select_blocks(base._layout(q, layout, lq), base._layout(k, layout, lkv), method=method,
                                  mass=mass, top_k=top_k, **extra, **mask, **base._call_args(case))
    want, tie = base._oracle_sabi(q.astype(np.float64), k.astype(np.float64), case, method, mass, top_k, extra,
                                  block_select.Anchors(), False, mask=mask)
    return got, want, tie


def _assert_no_hidden_block(sabi, case, mask):
    """Independently of the oracle's scores: every chosen block holds a visible pair."""
    name, b, n, nkv, sq, skv, d, (bq, bkv), layout, lq, lkv = case
    lq, lkv = base._full_lengths(lq, b, sq), base._full_lengths(lkv, b, skv)
    for bi in range(b):
        visible = oracle.token_mask(lq[bi], lkv[bi], **mask)
        for h, i, c in np.argwhere(sabi[bi] != base.PAD):
            j = int(sabi[bi, h, i, c])
            assert visible[i * bq:(i + 1) * bq, j * bkv:(j + 1) * bkv].any(), (bi, h, i, j, mask)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("mask", MASKS, ids=lambda m: "-".join(f"{k}{v}" for k, v in m.items()))
@pytest.mark.parametrize("method,mass,top_k,extra", RULES, ids=[r[0] for r in RULES])
def test_masked_selection_matches_the_oracle(case, mask, method, mass, top_k, extra):
    got, want, tie = _run(case, method, mass, top_k, extra, mask)
    base._assert_same_blocks(got, want, tie)
    _assert_no_hidden_block(got, case, mask)


def test_antidiagonal_masked_on_every_path(kernel_path):
    case, mask = CASES[0], MASKS[2]
    got, want, tie = _run(case, "antidiagonal", 0.8, 2, {"stride": 5}, mask, dtype=ml_dtypes.bfloat16)
    base._assert_same_blocks(got, want, tie)
    _assert_no_hidden_block(got, case, mask)


def test_the_mask_changes_the_choice():
    """The comparison is not vacuous: the masked choice differs from the unmasked one, and the
    unmasked oracle's sabi fails the comparison against the masked op."""
    case = CASES[0]
    got, _, _ = _run(case, "mean_pool", 0.9, None, {}, MASKS[0])
    got_plain, want_plain, tie_plain = _run(case, "mean_pool", 0.9, None, {}, {})
    assert np.any(got != got_plain)
    with pytest.raises(AssertionError):
        base._assert_same_blocks(got, want_plain, tie_plain)


def test_mode_one_is_refused():
    q = np.zeros((1, 1, 64, 16), np.float32)
    with pytest.raises(ValueError, match="sparse_mode must be one of"):
        blitz_acl.select_blocks(q, q, block_shape=(64, 64), mass=0.9, sparse_mode=1)


def test_the_npu_op_refuses_a_mask_it_does_not_see():
    """The NPU op (device npu_sim) does not take sparse_mode yet: refused in the spec's words,
    never silently ignored."""
    q = np.zeros((1, 1, 128, 64), np.float16)
    with pytest.raises(ValueError, match="does not see the attention's mask yet"):
        blitz_acl.select_blocks(q, q, block_shape=(64, 128), mass=0.9, refine_below=0.0, sparse_mode=2,
                                device="npu_sim")

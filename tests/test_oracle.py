"""The independent oracle (tests/oracle.py) against the package's reference and torch SDPA.

Two different float64 implementations agreeing to 1e-12 on every matrix case means neither
carries a rule the other lacks; SDPA (float64, the oracle's token mask as an explicit boolean
mask) checks the softmax / layout / GQA / scale arithmetic with a third implementation.
"""

import math

import numpy as np
import pytest

from blitz_acl import reference
from cases import CASE_IDS, CASES, assert_rows_close
import oracle

AGREE = 1e-12


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_oracle_agrees_with_the_package_reference(case, dtype):
    inputs = case.build(dtype)
    kw = inputs.kwargs
    ours = oracle.attention(inputs.query, inputs.key, inputs.value, **kw)
    theirs = reference.attention(inputs.query, inputs.key, inputs.value, **kw)
    if not kw["return_lse"]:
        ours, theirs = (ours, None), (theirs, None)
    out_layout = "BSND" if case.layout == "BNSD_BSND" else case.layout
    assert_rows_close(ours[0], theirs[0], AGREE, "out", layout=out_layout, heads=case.heads)
    if kw["return_lse"]:
        assert_rows_close(ours[1], theirs[1], AGREE, "lse", layout="lse")


def _sdpa(inputs, case):
    torch = pytest.importorskip("torch")
    p = oracle.parse(inputs.query, inputs.key, inputs.value, **inputs.kwargs)
    ok = torch.from_numpy(oracle.allowed_of(p))
    batch, heads, kv_heads, seq_q, seq_kv, d = p.dims
    q = torch.from_numpy(p.q)
    k = torch.from_numpy(p.k).repeat_interleave(heads // kv_heads, dim=1)
    v = torch.from_numpy(p.v).repeat_interleave(heads // kv_heads, dim=1)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=ok, scale=p.scale)
    empty = ~ok.any(dim=-1)
    out = torch.where(empty[..., None], torch.zeros(()), out)
    scores = (q @ k.transpose(-1, -2) * p.scale).masked_fill(~ok, -math.inf)
    lse = torch.logsumexp(scores, dim=-1)
    return out.numpy(), lse.numpy(), empty.numpy()


@pytest.mark.parametrize("case", [c for c in CASES if c.seq_kv > 0 and c.seq_q > 0],
                         ids=[c.name for c in CASES if c.seq_kv > 0 and c.seq_q > 0])
def test_oracle_matches_sdpa_float64(case):
    inputs = case.build("float32")
    kw = dict(inputs.kwargs, return_lse=True, input_layout="BNSD_BSND"
              if case.layout == "BNSD_BSND" else case.layout)
    out, lse = oracle.attention(inputs.query, inputs.key, inputs.value, **kw)
    exp_out, exp_lse, empty = _sdpa(inputs, case)
    if case.layout in ("BSND", "BSH", "BNSD_BSND"):
        b, s = out.shape[:2]
        out = out.reshape(b, s, case.heads, -1).transpose(0, 2, 1, 3)
    assert_rows_close(out, exp_out, 1e-10, "out")
    assert_rows_close(lse, exp_lse, 1e-10, "lse", layout="lse")
    assert np.isneginf(lse[empty]).all()


def test_oracle_rules_on_a_small_hand_example():
    """Sq = 3, Skv = 5 (api.py's docstring pictures) plus sabi and lengths, written out."""
    q = np.zeros((1, 1, 3, 4))
    kv = np.zeros((1, 1, 5, 4))
    pictures = {
        2: [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]],
        3: [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]],
        4: [[0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 1, 1]],
    }
    for mode, pic in pictures.items():
        a = oracle.allowed(q, kv, kv, sparse_mode=mode, pre_tokens=1, next_tokens=0)
        np.testing.assert_array_equal(a[0, 0], np.array(pic, bool), err_msg=f"mode {mode}")
    # block_shape (1, 2): C = 3 blocks; row 0 -> block 2, row 1 -> blocks 2 and 0 (any order,
    # uint16 PAD), row 2 -> none; kv length 4 cuts key 4.
    sabi = np.array([[[2, 0xFFFF], [2, 0], [0xFFFF, 0xFFFF]]], np.uint16)
    a = oracle.allowed(q, kv, kv, sabi, block_shape=(1, 2), actual_seq_lengths_kv=[4])
    np.testing.assert_array_equal(a[0, 0], np.array(
        [[0, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool))
    # Mask larger than [Sq, Skv]: the top-left window is used; per-head 4-d mask.
    mask = np.zeros((1, 2, 4, 6), bool)
    mask[0, 1, :3, :5] = True
    q2, kv2 = np.zeros((1, 2, 3, 4)), np.zeros((1, 2, 5, 4))
    a = oracle.allowed(q2, kv2, kv2, atten_mask=mask)
    assert a[0, 0].all() and not a[0, 1].any()
    # Rows at or past the q length attend nothing, and mode rules use the actual lengths.
    a = oracle.allowed(q, kv, kv, sparse_mode=3, actual_seq_lengths=[2], actual_seq_lengths_kv=[3])
    np.testing.assert_array_equal(a[0, 0], np.array(
        [[1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 0, 0, 0, 0]], bool))

"""The float64 reference against torch SDPA (float64) with an independently built boolean mask.

The expected side never calls blitz_acl.reference: it expands sabi to tokens through
sabi.to_token_mask (itself checked against a loop in test_sabi.py), writes the sparse_mode,
length and explicit-mask rules out again with torch ops, and runs
torch.nn.functional.scaled_dot_product_attention on float64 BNSD tensors.
"""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from blitz_acl import reference  # noqa: E402
from blitz_acl import sabi as S  # noqa: E402
from cases import CASE_IDS, CASES, assert_rows_close  # noqa: E402

ATOL = 1e-5


def _bnsd(x: np.ndarray, layout: str, heads: int) -> torch.Tensor:
    t = torch.from_numpy(np.asarray(x, dtype=np.float64))
    if layout == "BSH":
        t = t.reshape(t.shape[0], t.shape[1], heads, -1)
    if layout in ("BSND", "BSH"):
        t = t.permute(0, 2, 1, 3)
    return t


def _per_batch(lengths, batch, full):
    if lengths is None:
        return [full] * batch
    return list(lengths) * batch if len(lengths) == 1 else list(lengths)


def _allowed(case, inputs, batch, heads, seq_q, seq_kv) -> torch.Tensor:
    """Boolean [B, N, Sq, Skv]: True where query i may attend key j."""
    kw = inputs.kwargs
    allowed = torch.ones(batch, heads, seq_q, seq_kv, dtype=torch.bool)
    if kw["sabi"] is not None:
        tokens = S.to_token_mask(kw["sabi"], seq_q, seq_kv, kw["block_shape"], batch=batch, heads=heads)
        allowed &= torch.from_numpy(tokens)
    q_lens = _per_batch(kw.get("actual_seq_lengths"), batch, seq_q)
    kv_lens = _per_batch(kw.get("actual_seq_lengths_kv"), batch, seq_kv)
    i = torch.arange(seq_q)[:, None]
    j = torch.arange(seq_kv)[None, :]
    for b in range(batch):
        lq, lkv = q_lens[b], kv_lens[b]
        rule = (i < lq) & (j < lkv)
        mode = kw["sparse_mode"]
        if mode == 2:
            rule &= j <= i
        elif mode == 3:
            rule &= j - i <= lkv - lq
        elif mode == 4:
            rule &= (j - i >= lkv - lq - kw["pre_tokens"]) & (j - i <= lkv - lq + kw["next_tokens"])
        allowed[b] &= rule
    mask = kw["atten_mask"]
    if mask is not None:
        m = torch.from_numpy(mask.astype(bool))
        m = m.reshape((-1, seq_q, seq_kv))  # [Sq,Skv] / [X,Sq,Skv] / [X,1,Sq,Skv] -> [X,Sq,Skv]
        allowed &= ~m[:, None].expand(batch, 1, seq_q, seq_kv)
    return allowed


def _expected(case, inputs):
    kw = inputs.kwargs
    layout = kw["input_layout"]
    heads = case.heads
    kv_heads = case.kv_heads or heads
    q = _bnsd(inputs.query, layout, heads)
    k = _bnsd(inputs.key, layout, kv_heads).repeat_interleave(heads // kv_heads, dim=1)
    v = _bnsd(inputs.value, layout, kv_heads).repeat_interleave(heads // kv_heads, dim=1)
    batch, _, seq_q, dim = q.shape
    seq_kv = k.shape[2]
    scale = kw.get("scale_value", 1.0 / math.sqrt(dim))
    allowed = _allowed(case, inputs, batch, heads, seq_q, seq_kv)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=scale)
    empty = ~allowed.any(dim=-1)
    out = torch.where(empty[..., None], torch.zeros(()), out)  # DESIGN: empty rows are zeros
    scores = (q @ k.transpose(-1, -2) * scale).masked_fill(~allowed, -math.inf)
    lse = torch.logsumexp(scores, dim=-1) if seq_kv else torch.full((batch, heads, seq_q), -math.inf)
    out_layout = "BSND" if layout == "BNSD_BSND" else layout
    if out_layout in ("BSND", "BSH"):
        out = out.permute(0, 2, 1, 3)
    if out_layout == "BSH":
        out = out.reshape(batch, seq_q, heads * dim)
    return out.numpy(), lse.numpy()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_reference_matches_sdpa(case):
    inputs = case.build("float32")
    result = reference.attention(inputs.query, inputs.key, inputs.value, **inputs.kwargs)
    expected_out, expected_lse = _expected(case, inputs)
    out_layout = "BSND" if case.layout == "BNSD_BSND" else case.layout
    if case.lse:
        out, lse = result
        assert lse.dtype == np.float64 and lse.shape == expected_lse.shape
        assert_rows_close(lse, expected_lse, ATOL, "lse", layout="lse")
    else:
        out = result
    assert out.dtype == np.float64
    assert not np.isnan(out).any()
    assert_rows_close(out, expected_out, ATOL, "out", layout=out_layout, heads=case.heads)


def test_matrix_covers_the_edge_cases():
    """The matrix keeps rows with nothing to attend (zeros, lse -inf) and partial tiles."""
    names = set(CASE_IDS)
    assert {"sabi_empty_rows", "mode3_q_gt_kv", "empty_kv", "dense_113x203"} <= names
    inputs = next(c for c in CASES if c.name == "sabi_empty_rows").build()
    _, lse = reference.attention(inputs.query, inputs.key, inputs.value, **inputs.kwargs)
    assert np.isneginf(lse[:, :, :64]).all()


@pytest.mark.slow
def test_reference_runs_32k():
    """Sq = Skv = 32768 dense: memory stays O(bq x Skv); checked on sampled rows against SDPA."""
    seq, dim = 32768, 64
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 1, seq, dim), dtype=np.float32)
    k = rng.standard_normal((1, 1, seq, dim), dtype=np.float32)
    v = rng.standard_normal((1, 1, seq, dim), dtype=np.float32)
    out, lse = reference.attention(q, k, v, sparse_mode=2, return_lse=True)
    rows = np.array([0, 1, 127, 128, 20000, seq - 1])
    qt = torch.from_numpy(q[0, 0, rows]).double()
    scores = qt @ torch.from_numpy(k[0, 0]).double().T / math.sqrt(dim)
    scores = scores.masked_fill(torch.arange(seq)[None, :] > torch.from_numpy(rows)[:, None], -math.inf)
    expected = torch.softmax(scores, dim=-1) @ torch.from_numpy(v[0, 0]).double()
    np.testing.assert_allclose(out[0, 0, rows], expected.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(lse[0, 0, rows], torch.logsumexp(scores, -1).numpy(), atol=ATOL, rtol=0)

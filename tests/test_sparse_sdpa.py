"""blitz_acl.torch.sparse_sdpa against torch SDPA: with every tile kept it gives SDPA's result.

Truth: torch.nn.functional.scaled_dot_product_attention in float64 on the same (rounded) inputs
with the same mask / is_causal / enable_gqa (an independent implementation). Bound, per output
row, FlashAttention's way (tests/bounds.py's constants): |ours - truth| <= K x |SDPA in the same
dtype - truth| + ATOL + RTOL x max |truth|. The same bound rejects a sabi with one tile dropped.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import blitz_acl  # noqa: E402
from blitz_acl import sabi as S  # noqa: E402
from blitz_acl.torch import sparse_sdpa  # noqa: E402
import bounds  # noqa: E402

SDPA = torch.nn.functional.scaled_dot_product_attention
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

# (name, B, N, Nkv, L, S, D, block_shape): lengths off the tile (128 x 512 by default), GQA/MQA.
CASES = [
    ("aligned", 1, 2, 2, 256, 512, 64, None),
    ("tile_plus_2_and_3", 2, 3, 3, 130, 515, 32, None),
    ("gqa_113x203_small_tiles", 1, 4, 2, 113, 203, 64, (64, 64)),
    ("mqa_one_query", 1, 2, 1, 1, 77, 16, None),
]
# How attention is masked: SDPA's arguments for each option.
OPTIONS = ("none", "causal", "bool_mask", "key_padding", "float_mask_3d")


def _inputs(b, n, nkv, seq_q, seq_kv, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=g).to(DTYPES[dtype])
                 for shape in ((b, n, seq_q, d), (b, nkv, seq_kv, d), (b, nkv, seq_kv, d)))


def _mask_kwargs(option, b, n, seq_q, seq_kv, seed=1):
    """SDPA keyword arguments for `option`; no query row is left without a key."""
    g = torch.Generator().manual_seed(seed)
    if option == "none":
        return {}
    if option == "causal":
        return {"is_causal": True}
    if option == "bool_mask":  # [L, S], True = attend
        m = torch.rand(seq_q, seq_kv, generator=g) > 0.3
        m[:, 0] = True
        return {"attn_mask": m}
    if option == "key_padding":  # [B, 1, 1, S]: batch b attends its first lengths[b] keys
        lengths = torch.randint(1, seq_kv + 1, (b,), generator=g)
        return {"attn_mask": (torch.arange(seq_kv) < lengths[:, None])[:, None, None, :]}
    if option == "float_mask_3d":  # [N, L, S] of 0 / -inf, broadcast over the batch as SDPA does
        allowed = torch.rand(n, seq_q, seq_kv, generator=g) > 0.5
        allowed[..., -1] = True
        return {"attn_mask": torch.zeros(n, seq_q, seq_kv).masked_fill(~allowed, -math.inf)}
    raise ValueError(option)


def _sdpa(q, k, v, dtype, **kwargs):
    mask = kwargs.get("attn_mask")
    if mask is not None and mask.is_floating_point():
        kwargs = dict(kwargs, attn_mask=mask.to(dtype))  # SDPA takes a float mask in the query's dtype
    return SDPA(q.to(dtype), k.to(dtype), v.to(dtype), **kwargs).double()


def _row_excess(ours, q, k, v, dtype_name, **kwargs):
    """Per (b, h, row): max |ours - truth| / bound (<= 1 passes), NaN counted as infinite."""
    truth = _sdpa(q, k, v, torch.float64, **kwargs)
    base = _sdpa(q, k, v, DTYPES[dtype_name], **kwargs)
    diff = (ours.double() - truth).abs()
    err = torch.where(diff.isnan().any(-1), math.inf, diff.amax(-1))
    bound = (bounds.K[dtype_name] * (base - truth).abs().amax(-1) + bounds.ATOL[dtype_name]
             + bounds.RTOL[dtype_name] * truth.abs().amax(-1))
    return err / bound


def _assert_within(x, what):
    worst = int(x.argmax())
    at = np.unravel_index(worst, tuple(x.shape))
    assert float(x.max()) <= 1.0, f"{what}: row (b, h, row) = {at} is {float(x.max()):.3g} x its bound"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("option", OPTIONS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_tile_kept_equals_sdpa(case, option, dtype):
    _, b, n, nkv, seq_q, seq_kv, d, block_shape = case
    q, k, v = _inputs(b, n, nkv, seq_q, seq_kv, d, dtype)
    kwargs = dict(_mask_kwargs(option, b, n, seq_q, seq_kv), enable_gqa=nkv != n)
    ours = sparse_sdpa(q, k, v, **kwargs, block_shape=block_shape)
    assert ours.dtype == q.dtype and ours.shape == q.shape
    _assert_within(_row_excess(ours, q, k, v, dtype, **kwargs), f"{case[0]} {option} {dtype}")


def test_scale_and_explicit_full_sabi():
    q, k, v = _inputs(1, 2, 2, 200, 700, 32, "bfloat16")
    full = S.normalize(np.arange(2, dtype=np.uint16)[None, None, None, :].repeat(2, axis=2))  # R=2, C=2
    ours = sparse_sdpa(q, k, v, scale=0.3, sabi=full, is_causal=True)
    _assert_within(_row_excess(ours, q, k, v, "bfloat16", scale=0.3, is_causal=True), "scale 0.3")


def test_the_bound_rejects_one_dropped_tile():
    """Query block 1 loses key block 0 of 2 (128 x 512 tiles): those rows exceed the bound."""
    q, k, v = _inputs(1, 2, 2, 256, 1024, 64, "bfloat16")
    sabi = np.array([[[[0, 1], [1, S.PAD]]]], dtype=np.uint16)
    x = _row_excess(sparse_sdpa(q, k, v, sabi=sabi), q, k, v, "bfloat16")
    assert float(x[..., :128].max()) <= 1.0  # query block 0 keeps both tiles
    assert float(x[..., 128:].min()) > 10.0  # every row of block 1 is far outside the bound


def test_exports_as_one_blitz_node():
    class Attend(torch.nn.Module):
        def forward(self, q, k, v, allowed):
            return sparse_sdpa(q, k, v, attn_mask=allowed, enable_gqa=True)

    q, k, v = _inputs(1, 4, 2, 100, 150, 16, "float32")
    allowed = _mask_kwargs("bool_mask", 1, 4, 100, 150)["attn_mask"]
    ep = torch.export.export(Attend(), (q, k, v, allowed))
    op = torch.ops.blitz_acl.blitz_sparse_attention.default
    assert [n.target for n in ep.graph.nodes if n.op == "call_function"].count(op) == 1
    assert torch.equal(ep.module()(q, k, v, allowed), sparse_sdpa(q, k, v, attn_mask=allowed, enable_gqa=True))


def _q(*shape, dtype=torch.float32):
    return torch.zeros(shape, dtype=dtype)


QKV = (_q(1, 2, 64, 16), _q(1, 2, 80, 16), _q(1, 2, 80, 16))
BAD = [
    ("dropout", dict(dropout_p=0.1), ValueError, "dropout_p=0.1: sparse_sdpa has no dropout"),
    ("dropout_type", dict(dropout_p="0"), TypeError, "dropout_p must be a float"),
    ("mask_and_causal", dict(attn_mask=torch.ones(64, 80, dtype=torch.bool), is_causal=True), ValueError,
     "not both"),
    ("heads_without_gqa", dict(key=_q(1, 1, 80, 16), value=_q(1, 1, 80, 16)), ValueError,
     "pass enable_gqa=True"),
    ("gqa_not_multiple", dict(query=_q(1, 3, 64, 16), enable_gqa=True), ValueError, "multiple of the key's"),
    ("three_d_query", dict(query=_q(2, 64, 16)), ValueError, "4-d"),
    ("numpy_query", dict(query=np.zeros((1, 2, 64, 16), np.float32)), TypeError, "must be a torch tensor"),
    ("value_head_dim", dict(value=_q(1, 2, 80, 32)), ValueError, "one head dim"),
    ("key_value_length", dict(value=_q(1, 2, 81, 16)), ValueError, r"\(B, N, S\) must be equal"),
    ("batch", dict(key=_q(2, 2, 80, 16), value=_q(2, 2, 80, 16)), ValueError, "batch 1 but key has batch 2"),
    ("mask_shape", dict(attn_mask=torch.ones(64, 81, dtype=torch.bool)), ValueError, "does not broadcast"),
    ("mask_int", dict(attn_mask=torch.ones(64, 80, dtype=torch.int32)), TypeError, "expected torch.bool"),
    ("mask_bias", dict(attn_mask=torch.full((64, 80), 0.5)), ValueError, "additive bias"),
    ("is_causal_int", dict(is_causal=1), TypeError, "is_causal must be True or False"),
    ("sabi_and_select", dict(sabi=np.zeros((1, 1, 1, 1), np.uint16), select={}), ValueError, "not both"),
    ("select_type", dict(select=[0.9]), TypeError, "select must be a dict"),
    ("select_sets_layout", dict(select=dict(mass=0.9, input_layout="BSND")), ValueError,
     "sparse_sdpa passes itself"),
    ("select_block_shape", dict(select=dict(mass=0.9, block_shape=(64, 64)), block_shape=(128, 512)),
     ValueError, "give it once, in select"),
    ("select_bad_mass", dict(select=dict(mass=0.0)), ValueError, r"mass must lie in \(0, 1\]"),
    ("sabi_shape", dict(sabi=np.zeros((1, 1, 3, 1), np.uint16)), ValueError, "query-block rows"),
    ("scale", dict(scale=math.inf), ValueError, "scale_value must be finite"),
]


@pytest.mark.parametrize("change, error, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments_raise_clearly(change, error, message):
    args = dict(zip(("query", "key", "value"), QKV))
    args.update(change)
    with pytest.raises(error, match=message):
        sparse_sdpa(**args)


def _tile_tokens(sabi, seq_q, seq_kv, block_shape):
    """bool (B, N, L, S): True inside the tiles sabi lists (written here, not blitz_acl.sabi's)."""
    s = sabi.to(torch.int64).numpy()
    bq, bkv = block_shape
    allowed = np.zeros(s.shape[:2] + (seq_q, seq_kv), dtype=bool)
    for b, h, i, c in np.argwhere(s != S.PAD):
        col = s[b, h, i, c]
        allowed[b, h, i * bq:(i + 1) * bq, col * bkv:(col + 1) * bkv] = True
    return torch.from_numpy(allowed)


def test_select_computes_the_chosen_tiles():
    """select= gives attention over exactly select_blocks' tiles (SDPA float64 masked with them);
    with is_causal the selection sees the causal mask (sparse_mode 2): no tile above it is chosen."""
    q, k, v = _inputs(1, 4, 2, 700, 700, 32, "bfloat16", seed=3)
    select = dict(mass=0.6, block_shape=(64, 128), share_kv_groups=True)
    ours = sparse_sdpa(q, k, v, is_causal=True, enable_gqa=True, select=select)
    sabi = blitz_acl.select_blocks(q, k, sparse_mode=2, **select)
    tiles = _tile_tokens(sabi, 700, 700, (64, 128))
    causal = torch.ones(700, 700, dtype=torch.bool).tril()
    for i in range(0, 700, 64):  # every chosen tile holds some allowed pair
        for j in range(0, 700, 128):
            if bool(tiles[0, 0, i, j]):
                assert bool(causal[i:i + 64, j:j + 128].any()), (i, j)
    allowed = tiles & causal
    assert not bool(allowed.all(-1).all()) and float(allowed.double().mean()) < 0.45  # sparse
    x = _row_excess(ours, q, k, v, "bfloat16", attn_mask=allowed, enable_gqa=True)
    _assert_within(x, "select mass 0.6")


def test_compiles_with_fullgraph_and_a_bool_mask():
    """SDPA's call sites compile unchanged: a bool mask and GQA, no graph break."""
    def attend(q, k, v, allowed):
        return sparse_sdpa(q, k, v, attn_mask=allowed, enable_gqa=True, scale=0.2)

    q, k, v = _inputs(1, 4, 2, 100, 150, 16, "float32")
    allowed = _mask_kwargs("key_padding", 1, 4, 100, 150)["attn_mask"]
    torch._dynamo.reset()
    got = torch.compile(attend, fullgraph=True)(q, k, v, allowed)
    assert torch.equal(got, attend(q, k, v, allowed))

"""torch.ops.blitz_acl.blitz_sparse_attention (blitz_acl/torch_ops.py): the schema carries every
public argument, torch.library.opcheck passes, the public function routes torch tensors through
the op, a model calling the public API compiles with fullgraph=True and matches eager, and
torch.export keeps the op as one node. Correctness of the numbers is the CPU device's own
suites' job (vs tests/oracle.py); here the op must give exactly what the eager function gives.

torch.compile is slow (seconds per graph): the compiled cases are few on purpose.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import blitz_acl  # noqa: E402
from blitz_acl import sabi as S  # noqa: E402
from blitz_acl import torch_ops  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

OP = torch.ops.blitz_acl.blitz_sparse_attention.default
EAGER = blitz_acl.blitz_sparse_attention.__wrapped__
SELECT_OP = torch.ops.blitz_acl.select_blocks.default
SELECT_EAGER = blitz_acl.select_blocks.__wrapped__


def _qkv(b, n, nkv, sq, skv, d, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, n, sq, d, generator=g).to(dtype),
            torch.randn(b, nkv, skv, d, generator=g).to(dtype),
            torch.randn(b, nkv, skv, d, generator=g).to(dtype))


def _mask(sq, skv, seed=1):
    """bool [Sq, Skv], True = masked out; key 0 always attended (no empty row)."""
    m = torch.rand(sq, skv, generator=torch.Generator().manual_seed(seed)) < 0.3
    m[:, 0] = False
    return m


# (name, args, kwargs) for opcheck: layouts, GQA, masks, lengths, lse on and off, three dtypes.
def _opcheck_cases():
    q, k, v = _qkv(1, 2, 2, 200, 300, 64)
    sabi = torch.from_numpy(S.random_pattern(1, 2, 200, 300, 0.4, block_shape=(64, 128), seed=3))
    yield "bnsd_sabi_lse_fp32", (q, k, v, sabi), dict(block_shape=[64, 128], return_lse=True)
    q, k, v = _qkv(2, 4, 2, 130, 515, 32, torch.bfloat16)
    bsh = [x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1).contiguous() for x in (q, k, v)]
    yield "bsh_gqa_mask_bf16", (*bsh, None, _mask(130, 515)), dict(
        num_heads=4, num_key_value_heads=2, input_layout="BSH")
    q, k, v = _qkv(1, 2, 1, 150, 150, 16, torch.float16)
    yield "bnsd_bsnd_mode3_lengths_fp16", (q, k, v), dict(
        input_layout="BNSD_BSND", sparse_mode=3, actual_seq_lengths=[120], actual_seq_lengths_kv=[140],
        return_lse=True)


OPCHECK = list(_opcheck_cases())


PUBLIC = [("blitz_sparse_attention", EAGER, OP), ("select_blocks", SELECT_EAGER, SELECT_OP)]


@pytest.mark.parametrize("eager, op", [p[1:] for p in PUBLIC], ids=[p[0] for p in PUBLIC])
def test_schema_carries_every_public_argument(eager, op):
    public = inspect.signature(eager).parameters
    schema = {a.name: a for a in op._schema.arguments}
    assert set(schema) == set(public)
    for name, p in public.items():
        if p.default is inspect.Parameter.empty:
            assert not schema[name].has_default_value(), name
        elif isinstance(p.default, blitz_acl.Anchors):  # carried as [first, diagonal, last]
            d = p.default
            assert schema[name].default_value == [d.first, int(d.diagonal), int(d.last)]
        else:
            default = schema[name].default_value
            expected = list(p.default) if isinstance(p.default, tuple) else p.default
            assert default == expected, f"{name}: schema default {default!r}, public {p.default!r}"
    # keyword-only in the public function stays keyword-only in the op, tensors aside (custom_op
    # takes no keyword-only tensor, so atten_mask is positional there)
    for name, p in public.items():
        tensor = str(schema[name].type).startswith(("Tensor", "Optional[Tensor]"))
        if p.kind == p.KEYWORD_ONLY and not tensor:
            assert schema[name].kwarg_only, name


@pytest.mark.parametrize("args, kwargs", [c[1:] for c in OPCHECK], ids=[c[0] for c in OPCHECK])
def test_opcheck(args, kwargs):
    torch.library.opcheck(torch_ops.blitz_sparse_attention, args, kwargs)


def _select_cases():
    q, k, _ = _qkv(1, 2, 2, 300, 1100, 32)
    yield "bnsd_mass_mean_pool", (q, k), dict(mass=0.8)
    q, k, _ = _qkv(2, 4, 2, 200, 700, 16, torch.bfloat16)
    bsh = [x.transpose(1, 2).reshape(x.shape[0], x.shape[2], -1).contiguous() for x in (q, k)]
    yield "bsh_gqa_topk_antidiagonal_anchors", tuple(bsh), dict(
        num_heads=4, num_key_value_heads=2, input_layout="BSH", top_k=2, method="antidiagonal",
        anchors=dict(first=0, diagonal=True, last=False), share_kv_groups=True, block_shape=(64, 128))


SELECT_CASES = list(_select_cases())


@pytest.mark.parametrize("args, kwargs", [c[1:] for c in SELECT_CASES], ids=[c[0] for c in SELECT_CASES])
def test_select_blocks_opcheck(args, kwargs):
    bound = torch_ops.SELECT.bind(args, kwargs)  # the op's own arguments (anchors as a list)
    op_args = [bound[n] for n in torch_ops.SELECT.op_positional]
    torch.library.opcheck(torch_ops.select_blocks, tuple(op_args),
                          {n: bound[n] for n in torch_ops.SELECT.op_keyword_only})
    got, want = blitz_acl.select_blocks(*args, **kwargs), SELECT_EAGER(*args, **kwargs)
    assert got.dtype == torch.uint16 and torch.equal(got.to(torch.int32), want.to(torch.int32))


class _OpsSeen(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(str(func))
        return func(*args, **(kwargs or {}))


def test_public_function_routes_torch_tensors_through_the_op():
    q, k, v = _qkv(1, 2, 2, 70, 90, 16)
    with _OpsSeen() as seen:
        out, lse = blitz_acl.blitz_sparse_attention(q, k, v, return_lse=True, sparse_mode=2)
    assert "blitz_acl.blitz_sparse_attention.default" in seen.names
    want_out, want_lse = EAGER(q, k, v, return_lse=True, sparse_mode=2)
    assert torch.equal(out, want_out) and torch.equal(lse, want_lse)
    with _OpsSeen() as seen:
        blitz_acl.blitz_sparse_attention(q.numpy(), k.numpy(), v.numpy())
        blitz_acl.select_blocks(q.numpy(), k.numpy(), mass=0.9)
    assert not [n for n in seen.names if n.startswith("blitz_acl.")]  # numpy: the eager paths
    with _OpsSeen() as seen:
        blitz_acl.select_blocks(q, k, top_k=1)
    assert seen.names.count("blitz_acl.select_blocks.default") == 1


def test_numpy_sabi_and_mask_and_lists_are_carried():
    q, k, v = _qkv(1, 2, 2, 140, 300, 16)
    blocks = S.random_pattern(1, 2, 140, 300, 0.5, block_shape=(64, 64), seed=5)
    mask = _mask(140, 300).numpy()
    as_list = np.where(blocks == S.PAD, -1, blocks.astype(np.int64)).tolist()  # -1 = no block
    got = blitz_acl.blitz_sparse_attention(q, k, v, as_list, atten_mask=mask,
                                           block_shape=(64, 64), actual_seq_lengths_kv=np.array([250]))
    want = EAGER(q, k, v, blocks, atten_mask=mask, block_shape=(64, 64), actual_seq_lengths_kv=[250])
    assert torch.equal(got, want)


# Each goes through the route (or falls back to the eager function) and keeps its clear message.
BAD = [
    ("numpy_key", dict(key="numpy"), TypeError, "query, key and value must be of one kind"),
    ("meta_key", dict(key="meta"), ValueError, "must be on one device, got query on cpu, key on meta"),
    ("num_heads_str", dict(num_heads="2"), TypeError, "num_heads must be an int, got '2'"),
    ("sparse_mode_7", dict(sparse_mode=7), ValueError, r"sparse_mode must be one of \(0, 1, 2, 3, 4\)"),
    ("length_float", dict(actual_seq_lengths=[1.5]), TypeError, r"actual_seq_lengths\[0\] must be an int"),
    ("sabi_bad_index", dict(sabi=[[[[5]]]]), ValueError, "key block index out of range"),
    ("layout", dict(input_layout="NSD"), ValueError, "input_layout must be one of"),
    ("block_shape", dict(block_shape=(100, 512)), ValueError, "not supported by the CPU device"),
    ("unknown_keyword", dict(dropout=0.1), TypeError, "unexpected keyword argument 'dropout'"),
]


@pytest.mark.parametrize("change, error, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_arguments_raise_clearly(change, error, message):
    q, k, v = _qkv(1, 2, 2, 100, 100, 16)
    change = dict(change)
    if change.get("key") == "numpy":
        change["key"] = k.numpy()
    elif change.get("key") == "meta":
        change["key"] = k.to("meta")
    args = dict(query=q, key=k, value=v)
    args.update(change)
    with pytest.raises(error, match=message):
        blitz_acl.blitz_sparse_attention(**args)


SELECT_BAD = [
    ("no_rule", dict(), ValueError, "needs mass"),
    ("mass_2", dict(mass=2.0), ValueError, r"mass must lie in \(0, 1\]"),
    ("anchors_unknown", dict(top_k=1, anchors=dict(sink=1)), ValueError, "anchors has unknown keys"),
    ("anchors_type", dict(top_k=1, anchors=3), TypeError, "anchors must be a blitz_acl.Anchors"),
    ("method", dict(top_k=1, method="oracle"), ValueError, "method must be one of"),
    ("numpy_key", dict(top_k=1, key="numpy"), TypeError, "query, key and value must be of one kind"),
    ("refine_str", dict(top_k=1, refine_below="x"), TypeError, "refine_below must be a float"),
]


@pytest.mark.parametrize("change, error, message", [b[1:] for b in SELECT_BAD], ids=[b[0] for b in SELECT_BAD])
def test_select_blocks_bad_arguments_raise_clearly(change, error, message):
    q, k, _ = _qkv(1, 2, 2, 100, 600, 16)
    change = dict(change)
    if change.get("key") == "numpy":
        change["key"] = k.numpy()
    with pytest.raises(error, match=message):
        blitz_acl.select_blocks(**{"query": q, "key": k, **change})


def test_backward_through_the_op_raises_clearly():
    q, k, v = _qkv(1, 2, 2, 64, 64, 16)
    out = blitz_acl.blitz_sparse_attention(q.requires_grad_(), k, v)  # the forward runs
    with pytest.raises(RuntimeError, match="no autograd formula"):
        out.sum().backward()


class _Block(torch.nn.Module):
    """q/k/v projections, tiles chosen by select_blocks and attention through the public API
    (GQA, a numpy mask held by the model), output projection: what a user's model looks like."""

    def __init__(self, dim=64, heads=4, kv_heads=2, seq=200):
        super().__init__()
        self.heads, self.kv_heads, self.d = heads, kv_heads, dim // heads
        self.q = torch.nn.Linear(dim, dim)
        self.kv = torch.nn.Linear(dim, 2 * kv_heads * self.d)
        self.proj = torch.nn.Linear(dim, dim)
        self.mask = _mask(seq, seq).numpy()

    def forward(self, x):
        b, s, _ = x.shape
        q = self.q(x).view(b, s, self.heads, self.d).transpose(1, 2)
        k, v = self.kv(x).view(b, s, 2, self.kv_heads, self.d).permute(2, 0, 3, 1, 4)
        sabi = blitz_acl.select_blocks(q, k, top_k=2, anchors=None, block_shape=(64, 64))
        o = blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=(64, 64), atten_mask=self.mask)
        return self.proj(o.transpose(1, 2).reshape(b, s, -1))


def test_model_compiles_with_fullgraph_and_matches_eager():
    torch.manual_seed(0)
    model, x = _Block().eval(), torch.randn(1, 200, 64)
    with torch.no_grad():
        eager = model(x)
        torch._dynamo.reset()
        compiled = torch.compile(model, fullgraph=True)(x)
    # the attention is the same op on the same inputs; only the compiled projections may round
    # differently
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    # and select_blocks chose a sparse pattern (the test would not notice a dense one otherwise)
    with torch.no_grad():
        q = model.q(x).view(1, 200, 4, 16).transpose(1, 2)
        k = model.kv(x).view(1, 200, 2, 2, 16).permute(2, 0, 3, 1, 4)[0]
        assert (blitz_acl.select_blocks(q, k, top_k=2, anchors=None, block_shape=(64, 64)) == S.PAD).any()


def test_export_keeps_the_op_as_one_node():
    class Attend(torch.nn.Module):
        def forward(self, q, k, v, sabi, mask):
            return blitz_acl.blitz_sparse_attention(q, k, v, sabi, atten_mask=mask, block_shape=(64, 128),
                                                    return_lse=True)

    q, k, v = _qkv(1, 2, 1, 150, 260, 32)
    sabi = torch.from_numpy(S.random_pattern(1, 2, 150, 260, 0.3, block_shape=(64, 128), seed=2))
    args = (q, k, v, sabi, _mask(150, 260))
    ep = torch.export.export(Attend(), args)
    calls = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    assert calls.count(OP) == 1
    assert all(t is OP or getattr(t, "__name__", "") == "getitem" for t in calls), calls
    got, want = ep.module()(*args), EAGER(*args[:4], atten_mask=args[4], block_shape=(64, 128), return_lse=True)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_export_keeps_select_blocks_as_one_node():
    class Select(torch.nn.Module):
        def forward(self, q, k):
            return blitz_acl.select_blocks(q, k, top_k=2, block_shape=(64, 128), method="antidiagonal")

    q, k, _ = _qkv(1, 2, 1, 150, 600, 32)
    ep = torch.export.export(Select(), (q, k))
    calls = [n.target for n in ep.graph.nodes if n.op == "call_function"]
    assert calls == [SELECT_OP], calls
    want = SELECT_EAGER(q, k, top_k=2, block_shape=(64, 128), method="antidiagonal")
    assert torch.equal(ep.module()(q, k).to(torch.int32), want.to(torch.int32))

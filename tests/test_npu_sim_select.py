"""select_blocks on device npu_sim: the NPU op BlitzSelectBlocks (the Ascend C kernel
kernel_src/npu/op_kernel/select_kernel.h and its host plan op_host/select_plan.cpp) run on this
machine through the execution model, compared with the float64 statement of the selection rules
(tests/select_oracle.py, the same oracle the CPU op is held to; never the CPU op's output).

What the NPU op takes so far: method mean_pool, with the sub-block refinement (the API's default
refine_below=0.5 and any sub_block), and method antidiagonal (any stride 1..64, partial cells and
the no-pair fallback included), float16 / bfloat16, the attention kernel's head dims, no mask; the
rest is refused in the spec's words. The refinement rows use inputs whose blocks are either
clearly alike or clearly not (coherence asserted away from refine_below), with some refined.

Ties: the kernel pools and sums in float32 and the oracle in float64 over the same fp16 / bf16
values, so a row whose choice hangs on a difference below TIE_TOL (two masses, or the running mass
and the target) may legitimately differ. The inputs are built so the choice is well separated
(block means drawn apart: a shared offset per run of 40 tokens, noise 0.7, D >= 16), and such rows
are counted: none may differ outside them, at most MAX_TIE_SHARE of all rows within them.
"""

from __future__ import annotations

import dataclasses
import functools
import zlib

import ml_dtypes
import numpy as np
import pytest

import blitz_acl
from blitz_acl import block_select, sabi as sabi_format
from blitz_acl import select_limits
from blitz_acl.devices import npu_sim
from blitz_acl.devices.status import AclError

import select_oracle as oracle
import test_select_blocks as cpu_tests  # the case builders (layouts, lengths, the oracle's sabi)

TIE_TOL = 1e-4  # float32 pooling and softmax vs float64: measured differences are below 1e-5
MAX_TIE_SHARE = 0.02
DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}

# (name, B, N, Nkv, Sq, Skv, D, block_shape, layout, lengths_q, lengths_kv), as test_select_blocks'
# CASES but with the NPU's head dims (a multiple of 16).
CASES = [
    ("bnsd", 1, 2, 2, 700, 1100, 32, (64, 128), "BNSD", None, None),
    ("bsnd_gqa", 2, 4, 2, 513, 513, 16, (64, 64), "BSND", None, None),
    ("bsh_mqa_lengths", 2, 2, 1, 300, 900, 32, (128, 128), "BSH", [257, 5], [900, 130]),
    ("bnsd_bsnd_kv_empty", 2, 1, 1, 129, 1025, 16, (64, 128), "BNSD_BSND", [129], [1025, 0]),
    ("tnd_gqa", 3, 2, 1, 200, 300, 16, (64, 64), "TND", [200, 0, 77], [300, 64, 5]),
    # 71 key blocks: score rows of two vector repeats, the tail filled past the first repeat.
    ("long_kv_mqa", 1, 4, 1, 256, 4500, 64, (64, 64), "BNSD", None, None),
    # The API's default 128 x 512 tiles, D = 128: a key block pooled in 8 chunks of 64 rows.
    ("default_tiles", 1, 2, 2, 1000, 2100, 128, (128, 512), "BSND", None, None),
]
# (mass, top_k, anchors) with refine_below=0 (the NPU op's mean_pool).
RULES = [
    (0.9, None, block_select.Anchors()),
    (None, 3, block_select.Anchors()),
    (0.7, 2, block_select.Anchors()),
    (0.5, None, None),
    (None, 1, block_select.Anchors(first=2, diagonal=True, last=False)),
]
NO_REFINE = {"refine_below": 0.0}


def every_case_dtype_and_rule(test):
    """Runs `test(case, dtype, mass, top_k, anchors)` on every case x dtype x rule."""
    rule_ids = [f"mass{r[0]}-top{r[1]}-{'anchors' if r[2] else 'none'}" for r in RULES]
    test = pytest.mark.parametrize("mass,top_k,anchors", RULES, ids=rule_ids)(test)
    test = pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])(test)
    return pytest.mark.parametrize("dtype", sorted(DTYPES))(test)


def _inputs(case, dtype):
    name, b, n, nkv, sq, skv, d = case[:7]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    q = cpu_tests._tokens(rng, (b, n, sq, d)).astype(DTYPES[dtype])
    k = cpu_tests._tokens(rng, (b, nkv, skv, d)).astype(DTYPES[dtype])
    return q, k


def _select(q, k, case, *, mass, top_k, anchors, share, device="npu_sim", refine=NO_REFINE):
    """refine: the refinement's keywords as passed (empty: the API's defaults)."""
    layout, lq, lkv = case[8], case[9], case[10]
    return blitz_acl.select_blocks(cpu_tests._layout(q, layout, lq), cpu_tests._layout(k, layout, lkv),
                                   mass=mass, top_k=top_k, anchors=anchors, share_kv_groups=share,
                                   device=device, **refine, **cpu_tests._call_args(case))


def _want(q, k, case, *, mass, top_k, anchors, share, refine=NO_REFINE):
    """The oracle's sabi on the values the op sees (fp16 / bf16 widened to float64), and its ties."""
    want, _ = cpu_tests._oracle_sabi(q.astype(np.float64), k.astype(np.float64), case, "mean_pool", mass, top_k,
                                     refine, anchors or block_select.NO_ANCHORS, share)
    tie = _ties(q.astype(np.float64), k.astype(np.float64), case, mass, top_k, anchors or block_select.NO_ANCHORS,
                share, refine)
    return want, tie


def _ties(q, k, case, mass, top_k, anchors, share, refine=NO_REFINE):
    """[B, N, R]: rows the oracle shows at a tie within TIE_TOL (the shared builder uses 1e-5)."""
    name, b, n, nkv, sq, skv, d, (bq, bkv), layout, lq, lkv = case
    lq, lkv = cpu_tests._full_lengths(lq, b, sq), cpu_tests._full_lengths(lkv, b, skv)
    rows = -(-max(lq) // bq) if layout == "TND" else -(-sq // bq)
    tie = np.zeros((b, n, rows), bool)
    group = n // nkv
    for bi in range(b):
        if lq[bi] == 0 or lkv[bi] == 0:
            continue
        for g in range(nkv):
            heads = range(g * group, (g + 1) * group)
            m = {h: oracle.masses(q[bi, h, :lq[bi]], k[bi, g, :lkv[bi]], block_shape=(bq, bkv), scale=1 / np.sqrt(d),
                                  method="mean_pool", **refine) for h in heads}
            if share:
                mean = sum(m.values()) / group
                m = {h: mean for h in heads}
            for h in heads:
                for i in range(m[h].shape[0]):
                    tie[bi, h, i] = oracle.at_a_tie(
                        list(m[h][i]), first_token=i * bq, rows=min(bq, lq[bi] - i * bq), bkv=bkv,
                        mass_target=mass or 0.0, top_k=top_k or 0,
                        anchors=(anchors.first, anchors.diagonal, anchors.last), tol=TIE_TOL)
    return tie


def _assert_same_blocks(got, want, tie):
    differ = np.any(got != want, axis=-1)
    unexplained = np.argwhere(differ & ~tie)
    assert unexplained.size == 0, (
        f"row (b, h, i) = {tuple(unexplained[0])}: op {got[tuple(unexplained[0])]} vs oracle "
        f"{want[tuple(unexplained[0])]} ({len(unexplained)} such rows)")
    assert differ.sum() <= max(1, MAX_TIE_SHARE * differ.size), f"{differ.sum()} of {differ.size} rows at a tie"


def _assert_matches_the_oracle(got, want, tie, case, share):
    """The op's sabi holds the oracle's blocks (ties either way), one pattern per key head group
    when shared, and is a valid sabi for the case's lengths."""
    n, nkv = case[2], case[3]
    assert got.dtype == np.uint16 and got.shape == want.shape
    _assert_same_blocks(got, want, tie)
    if share:
        for h in range(n):
            np.testing.assert_array_equal(got[:, h], got[:, h - h % (n // nkv)])
    seq_q = max(cpu_tests._full_lengths(case[9], case[1], case[4])) if case[8] == "TND" else case[4]
    seq_kv = max(cpu_tests._full_lengths(case[10], case[1], case[5])) if case[8] == "TND" else case[5]
    sabi_format.validate(got, case[1], n, seq_q, seq_kv, case[7])


@every_case_dtype_and_rule
def test_same_blocks_as_the_oracle(case, dtype, mass, top_k, anchors):
    q, k = _inputs(case, dtype)
    n, nkv = case[2], case[3]
    share = nkv < n and top_k is not None  # both GQA modes across the rules
    got = _select(q, k, case, mass=mass, top_k=top_k, anchors=anchors, share=share)
    want, tie = _want(q, k, case, mass=mass, top_k=top_k, anchors=anchors, share=share)
    _assert_matches_the_oracle(got, want, tie, case, share)


@pytest.mark.parametrize("share", [False, True], ids=["per-head", "shared"])
def test_gqa_both_modes_with_mass_only(share):
    case = CASES[1]
    q, k = _inputs(case, "float16")
    got = _select(q, k, case, mass=0.8, top_k=None, anchors=block_select.Anchors(), share=share)
    want, tie = _want(q, k, case, mass=0.8, top_k=None, anchors=block_select.Anchors(), share=share)
    _assert_same_blocks(got, want, tie)


def test_bitwise_equal_on_2_and_8_cores(monkeypatch):
    """Each unit is computed the same way whichever core runs it (key means recomputed per core)."""
    results = {}
    for cores in (2, 8):
        monkeypatch.setenv("BLITZ_ACL_NPU_SIM_CORES", str(cores))
        for case in (CASES[0], CASES[1], CASES[4]):
            q, k = _inputs(case, "bfloat16")
            results[cores, case[0]] = _select(q, k, case, mass=0.9, top_k=2, anchors=block_select.Anchors(),
                                              share=False)
            assert npu_sim.last_report()["plan"]["workers"] == min(cores, npu_sim.last_report()["plan"]["units"])
    for case in (CASES[0], CASES[1], CASES[4]):
        np.testing.assert_array_equal(results[2, case[0]], results[8, case[0]])


def test_the_comparison_rejects_a_dropped_tile_or_another_rule():
    """The comparison has teeth: the op's sabi with one kept block dropped, or the op run with
    another rule than the oracle's, differs in rows that are not at a tie."""
    case = CASES[0]
    q, k = _inputs(case, "float16")
    got = _select(q, k, case, mass=0.9, top_k=None, anchors=block_select.Anchors(), share=False)
    want, tie = _want(q, k, case, mass=0.9, top_k=None, anchors=block_select.Anchors(), share=False)
    row = tuple(np.argwhere(~tie)[0])
    dropped = got.copy()
    kept = int((dropped[row] != sabi_format.PAD).sum())
    dropped[row + (kept - 1,)] = sabi_format.PAD
    with pytest.raises(AssertionError, match="op .* vs oracle"):
        _assert_same_blocks(dropped, want, tie)
    other = _select(q, k, case, mass=0.8, top_k=None, anchors=block_select.Anchors(), share=False)
    with pytest.raises(AssertionError, match="op .* vs oracle"):
        _assert_same_blocks(other, want, tie)


def test_the_attention_takes_it_as_is():
    case = CASES[2]
    q, k = _inputs(case, "float16")
    got = _select(q, k, case, mass=0.9, top_k=None, anchors=block_select.Anchors(), share=False)
    rng = np.random.default_rng(3)
    v = cpu_tests._layout(rng.standard_normal(k.shape).astype(np.float16), case[8], case[10])
    out = blitz_acl.blitz_sparse_attention(cpu_tests._layout(q, case[8], case[9]), cpu_tests._layout(k, case[8], case[10]),
                                           v, got, device="npu_sim", **cpu_tests._call_args(case))
    assert np.all(np.isfinite(out.astype(np.float32)))


def test_torch_in_torch_out():
    torch = pytest.importorskip("torch")
    case = CASES[0]
    q, k = _inputs(case, "bfloat16")
    expected = _select(q, k, case, mass=0.9, top_k=None, anchors=block_select.Anchors(), share=False)
    got = blitz_acl.select_blocks(torch.from_numpy(q.view(np.uint16)).view(torch.bfloat16),
                                  torch.from_numpy(k.view(np.uint16)).view(torch.bfloat16), mass=0.9,
                                  block_shape=case[7], refine_below=0, device="npu_sim")
    assert isinstance(got, torch.Tensor) and got.dtype == torch.uint16
    np.testing.assert_array_equal(got.to(torch.int32).numpy(), expected.astype(np.int32))


# ------------------------------------------------------------------------------ bad arguments
Q16, K16 = cpu_tests.Q.astype(np.float16), cpu_tests.K.astype(np.float16)
CPU_BAD = [entry for entry in cpu_tests.BAD if "device" not in entry[0]]


@pytest.mark.parametrize("kwargs,error,message", CPU_BAD, ids=[m for _, _, m in CPU_BAD])
def test_bad_arguments_raise_as_on_the_cpu(kwargs, error, message):
    kwargs = dict(kwargs)
    kwargs.setdefault("refine_below", 0.0)
    with pytest.raises(error, match=message):
        blitz_acl.select_blocks(Q16, K16, device="npu_sim", **kwargs)


NPU_ONLY = [
    (dict(refine_below=0.0, dtype=np.float32), TypeError, select_limits.refuse_select_npu_dtype()),
    (dict(method="antidiagonal", dtype=np.float32), TypeError, select_limits.refuse_select_npu_dtype()),
    (dict(sparse_mode=2), ValueError, select_limits.refuse_select_npu_mask(2)),
    (dict(method="antidiagonal", sparse_mode=3), ValueError, select_limits.refuse_select_npu_mask(3)),
]


@pytest.mark.parametrize("kwargs,error,message", NPU_ONLY,
                         ids=["dtype", "antidiagonal-dtype", "mask", "antidiagonal-mask"])
def test_what_the_npu_op_lacks_is_refused_in_the_specs_words(kwargs, error, message):
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", np.float16)
    with pytest.raises(error) as info:
        blitz_acl.select_blocks(Q16.astype(dtype), K16.astype(dtype), mass=0.9, device="npu_sim", **kwargs)
    assert str(info.value) == message


def _good_call():
    return block_select.normalize(
        Q16, K16, block_shape=(128, 512), mass=0.9, top_k=None, anchors=block_select.Anchors(), method="mean_pool",
        share_kv_groups=False, num_heads=None, num_key_value_heads=0, input_layout="BNSD", scale_value=None,
        actual_seq_lengths=None, actual_seq_lengths_kv=None, stride=8, sub_block=32, refine_below=0.0,
        device="npu_sim")


def test_the_library_checks_again_in_the_cpu_ops_words():
    """Past Python's checks (a C caller's call), libblitz_npu_sim.so runs the CPU op's own checks
    first (the same words, ACLNN_ERR_PARAM_INVALID), then the NPU plan's refusals."""
    from blitz_acl.devices import select_call

    good = _good_call()
    assert select_call.run(good, "npu_sim").shape == (1, 2, 2, 1)
    changes = [(dict(mass=2.0), "mass = 2"), (dict(mass=0.0, top_k=0), "both off"),
               (dict(method="other"), "method \"other\""), (dict(stride=0), "stride = 0"),
               (dict(sabi_shape=(1, 2, 2, 2)), "sabi has shape"), (dict(input_layout="BSH"), "numHeads|shape"),
               (dict(sparse_mode=3), "the NPU tiling rejects this call: " + select_limits.refuse_select_npu_mask(3))]
    for change, message in changes:
        with pytest.raises(AclError) as info:
            select_call.run(dataclasses.replace(good, **change), "npu_sim")
        assert info.value.status == 161002
        if message.startswith("the NPU"):
            assert message in info.value.message
        else:
            with pytest.raises(AclError, match=message):
                select_call.run(dataclasses.replace(good, **change), "npu_sim")
    # antidiagonal runs there (not refused), on the same call as the CPU device's op
    antidiagonal = dataclasses.replace(good, method="antidiagonal", stride=16)
    np.testing.assert_array_equal(select_call.run(antidiagonal, "npu_sim"), select_call.run(antidiagonal, "cpu"))
    with pytest.raises(AclError, match="head_dim 24 is not supported by the NPU kernel"):
        select_call.run(dataclasses.replace(good, query=np.zeros((1, 2, 256, 24), np.float16),
                                            key=np.zeros((1, 2, 512, 24), np.float16)), "npu_sim")


# ------------------------------------------------------------------- the sub-block refinement
# (name, B, N, Nkv, Sq, Skv, D, block_shape, layout, lengths_q, lengths_kv): partial blocks, GQA
# and MQA, packed and padded layouts.
REFINE_CASES = [
    ("bnsd_refine", 1, 2, 2, 256, 512, 32, (64, 64), "BNSD", None, None),
    ("bsnd_gqa_refine", 2, 4, 2, 192, 320, 16, (64, 128), "BSND", None, None),
    ("tnd_gqa_refine", 2, 4, 1, 200, 300, 32, (64, 64), "TND", [128, 72], [300, 136]),
    ("bsh_mqa_lengths_refine", 2, 2, 1, 300, 900, 32, (128, 128), "BSH", [257, 5], [900, 130]),
]
RUN = 32  # tokens sharing one offset in the refinement inputs (the default sub_block)
COHERENCE_MARGIN = 0.08  # every block's coherence this far from refine_below: the split is not a tie


def _alike_or_not(rng, shape, block):
    """Tokens whose blocks (of `block` tokens along S) are alike (one offset, small noise:
    coherence ~0.9) or, at random, not (runs of RUN tokens with offsets +o, -o, +o', -o', ...:
    the block mean nearly cancels, coherence ~0.1), so the refinement's branch is never close."""
    b, n, s, d = shape
    x = 0.3 * rng.standard_normal(shape)
    for start in range(0, s, block):
        end = min(start + block, s)
        unlike = rng.random((b, n)) < 0.5
        alike = rng.standard_normal((b, n, 1, d))
        runs = -(-(end - start) // RUN)
        pairs = rng.standard_normal((b, n, -(-runs // 2), d))
        signed = np.repeat(pairs, 2, axis=2)[:, :, :runs] * np.where(np.arange(runs) % 2, -1.0, 1.0)[:, None]
        split = np.repeat(signed, RUN, axis=2)[:, :, :end - start]
        x[:, :, start:end] += np.where(unlike[:, :, None, None], split, alike)
    return x.astype(np.float32)


def _coherences(x, lengths, block):
    """Every valid block's |sum x|^2 / (n sum |x|^2) of x [B, H, S, D] (float64)."""
    out = []
    for bi, length in enumerate(lengths):
        for h in range(x.shape[1]):
            for start in range(0, length, block):
                blk = x[bi, h, start:min(start + block, length)].astype(np.float64)
                total, sq = blk.sum(0), float((blk * blk).sum())
                out.append(float(total @ total) / (len(blk) * sq) if sq > 0 else 1.0)
    return np.array(out)


def _refine_inputs(case, dtype, refine_below=0.5):
    name, b, n, nkv, sq, skv, d, (bq, bkv), layout, lq, lkv = case
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    q = _alike_or_not(rng, (b, n, sq, d), bq).astype(DTYPES[dtype])
    k = _alike_or_not(rng, (b, nkv, skv, d), bkv).astype(DTYPES[dtype])
    for x, lengths, block in ((q, cpu_tests._full_lengths(lq, b, sq), bq), (k, cpu_tests._full_lengths(lkv, b, skv), bkv)):
        c = _coherences(x, lengths, block)
        assert np.all(np.abs(c - refine_below) > COHERENCE_MARGIN), f"{name}: a block's coherence is near the threshold"
        assert np.any(c < refine_below) and np.any(c > refine_below), f"{name}: refined and whole blocks both occur"
    return q, k


REFINE_RULES = [(0.9, None, block_select.Anchors()), (None, 2, None), (0.5, None, None)]
SUB_BLOCKS = [16, 32, 8, 24]  # one per case: aligned with the runs, straddling them, odd


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("ci", range(len(REFINE_CASES)), ids=[c[0] for c in REFINE_CASES])
@pytest.mark.parametrize("mass,top_k,anchors", REFINE_RULES,
                         ids=[f"mass{r[0]}-top{r[1]}-{'anchors' if r[2] else 'none'}" for r in REFINE_RULES])
def test_refinement_same_blocks_as_the_oracle(ci, dtype, mass, top_k, anchors):
    """The default refine_below (not passed: the API's 0.5), a sub_block per case, both GQA modes."""
    case = REFINE_CASES[ci]
    q, k = _refine_inputs(case, dtype)
    n, nkv = case[2], case[3]
    share = nkv < n and top_k is not None
    refine = {"sub_block": SUB_BLOCKS[ci]}
    got = _select(q, k, case, mass=mass, top_k=top_k, anchors=anchors, share=share, refine=refine)
    want, tie = _want(q, k, case, mass=mass, top_k=top_k, anchors=anchors, share=share, refine=refine)
    assert got.dtype == np.uint16 and got.shape == want.shape
    _assert_same_blocks(got, want, tie)
    if share:
        for h in range(n):
            np.testing.assert_array_equal(got[:, h], got[:, h - h % (n // nkv)])


@pytest.mark.parametrize("sub_block", [1, 8, 16, 32, 48, 64])
def test_refinement_every_sub_block(sub_block):
    """sub_block from single tokens to the whole block (64 = bq = bkv: a refined block is one unit)."""
    case = REFINE_CASES[0]
    q, k = _refine_inputs(case, "float16")
    refine = {"sub_block": sub_block, "refine_below": 0.5}
    got = _select(q, k, case, mass=0.8, top_k=2, anchors=block_select.Anchors(), share=False, refine=refine)
    want, tie = _want(q, k, case, mass=0.8, top_k=2, anchors=block_select.Anchors(), share=False, refine=refine)
    _assert_same_blocks(got, want, tie)


@pytest.mark.parametrize("share", [False, True], ids=["per-head", "shared"])
def test_refinement_gqa_both_modes(share):
    case = REFINE_CASES[1]
    q, k = _refine_inputs(case, "bfloat16")
    got = _select(q, k, case, mass=0.8, top_k=None, anchors=block_select.Anchors(), share=share, refine={})
    want, tie = _want(q, k, case, mass=0.8, top_k=None, anchors=block_select.Anchors(), share=share, refine={})
    _assert_same_blocks(got, want, tie)


def test_refinement_matters_and_the_comparison_sees_it():
    """On these inputs the refined choice is not the unrefined one (rows off a tie differ), so the
    comparison would reject a kernel that skipped the refinement."""
    case = REFINE_CASES[0]
    q, k = _refine_inputs(case, "float16")
    rule = dict(mass=0.5, top_k=None, anchors=None, share=False)
    want, tie = _want(q, k, case, refine={}, **rule)
    unrefined = _select(q, k, case, refine=NO_REFINE, **rule)
    with pytest.raises(AssertionError, match="op .* vs oracle"):
        _assert_same_blocks(unrefined, want, tie)
    _assert_same_blocks(_select(q, k, case, refine={}, **rule), want, tie)


def test_refinement_bitwise_equal_on_2_and_8_cores(monkeypatch):
    results = {}
    for cores in (2, 8):
        monkeypatch.setenv("BLITZ_ACL_NPU_SIM_CORES", str(cores))
        for ci in (0, 2):
            case = REFINE_CASES[ci]
            q, k = _refine_inputs(case, "bfloat16")
            results[cores, ci] = _select(q, k, case, mass=0.9, top_k=2, anchors=block_select.Anchors(), share=False,
                                         refine={"sub_block": SUB_BLOCKS[ci]})
            assert npu_sim.last_report()["plan"]["workers"] == min(cores, npu_sim.last_report()["plan"]["units"])
    for ci in (0, 2):
        np.testing.assert_array_equal(results[2, ci], results[8, ci])


# ------------------------------------------------------------- the most key blocks one launch takes
# One score row lives in the unified buffer, so the plan (op_host/select_plan.cpp) caps the key
# blocks, sizing the refinement's buffers only when it refines. Worked out by hand for D = 16,
# fp16, bkv = 64, the execution model's SoftmaxFlashV2 scratch (8 + 64 floats = 288 B) and its
# user UB of 192 KiB - 8 KiB - 256 B = 188160 B, at the smallest token chunk (8 rows):
#   without the refinement: fixed 2 x 8 x 16 x 2 (token chunks) + 8 x 16 x 4 (their float copy)
#     + 64 (the mean row) + 3 x 32 (statistics) + 288 + 2 x 32 (the partial block's count and
#     log) = 1536 B; a key block 3 x 4 B (score, mass and group mass rows) + 2 B (sabi) = 14 B:
#     (188160 - 1536) // 14 = 13330, to a multiple of 64: 13312 (sized for the refinement's rows
#     as well, as before, it was 6208);
#   sub_block 32 (the API's default, 2 units a 64-token block): fixed 512 + 512 + 2 x 64 (mean
#     and square sums) + 96 + 288 = 1536 B; a key block 2 x 3 x 4 B (unit score, count, ln n rows)
#     + 3 x 4 B (mass, group mass, one unit's block masses) + 2 B (sabi) + 4 B (first unit) = 42 B:
#     (188160 - 1536) // 42 = 4443, to a multiple of 64: 4416 (4417 needs a 4480-long row, 188960 B).
LIMIT_CASE = ("limit", 1, 1, 1, 256, 0, 16, (64, 64), "BNSD", None, None)  # Skv set per test
MOST_KV_BLOCKS = {False: 13312, True: 4416}  # refining: False / True


def _limit_inputs(refine, cols, sq=None):
    """cols key blocks of 64 tokens, the last one 32 (partial). Query block i (of 4) is one
    direction u_i (norm 4) plus small noise (alike: never refined); the keys are noise (refining:
    blocks alike or not, _alike_or_not) with 3 u_i added to one whole key block per query block
    (refining: +2 u_i to the first sub-block of an unlike block and -2 u_i to the second, so the
    block's mean hides it and only its first unit stands out), never an anchor: the block a top-k
    choice past the anchors must find among thousands. sq: the query length (default 256).
    Returns the case, q, k (fp16) and each query block's planted key block."""
    case = LIMIT_CASE[:4] + (sq or LIMIT_CASE[4], cols * 64 - 32) + LIMIT_CASE[6:]
    rng = np.random.default_rng(7 + refine)
    sq, skv, d, (bq, bkv) = case[4], case[5], case[6], case[7]
    rows = -(-sq // bq)
    u = rng.standard_normal((rows, d))
    u *= 4.0 / np.linalg.norm(u, axis=1, keepdims=True)  # |u_i|^2 = D: the planted logits are alike
    q = 0.3 * rng.standard_normal((1, 1, sq, d)) + np.repeat(u, bq, axis=0)[None, None, :sq]
    if refine:
        # A quarter of the scale (the coherences do not change): no other unit comes near.
        k = 0.25 * _alike_or_not(rng, (1, 1, skv, d), bkv).astype(np.float64)
        unlike = np.flatnonzero(_coherences(k, [skv], bkv) < 0.5)
    else:
        k = 0.7 * rng.standard_normal((1, 1, skv, d))
        unlike = np.arange(cols)
    candidates = unlike[(unlike >= rows) & (unlike < cols - 1)]  # past every diagonal, not the last
    planted = rng.choice(candidates, size=rows, replace=False)
    for i, j in enumerate(planted):
        if refine:
            k[0, 0, j * bkv:j * bkv + RUN] += 2.0 * u[i]
            k[0, 0, j * bkv + RUN:(j + 1) * bkv] -= 2.0 * u[i]
        else:
            k[0, 0, j * bkv:(j + 1) * bkv] += 3.0 * u[i]
    q, k = q.astype(np.float16), k.astype(np.float16)
    if refine:
        c = _coherences(k, [skv], bkv)
        assert np.all(np.abs(c - 0.5) > COHERENCE_MARGIN) and np.all(c[planted] < 0.5)
    return case, q, k, planted


@pytest.mark.parametrize("refine", [False, True], ids=["without-refinement", "refined"])
def test_the_most_key_blocks_one_launch_takes(refine, monkeypatch):
    """At its limit the op still equals the oracle and finds the planted block of every query
    block; one key block more is refused in the spec's words, naming the limit. Two vector cores:
    each pools every key block of its (b, kv head), so more would only repeat that."""
    monkeypatch.setenv("BLITZ_ACL_NPU_SIM_CORES", "2")
    most = MOST_KV_BLOCKS[refine]
    case, q, k, planted = _limit_inputs(refine, most)
    kw = {"sub_block": RUN} if refine else NO_REFINE
    # The last block anchored and one more: the planted one (every other mass is far below it).
    rule = dict(mass=None, top_k=2, anchors=block_select.Anchors(first=0, diagonal=False, last=True), share=False)
    got = _select(q, k, case, refine=kw, **rule)
    assert npu_sim.last_report()["plan"]["cols_aligned"] == most
    want, tie = _want(q, k, case, refine=kw, **rule)
    assert not tie.any()
    np.testing.assert_array_equal(got, want)
    for i, j in enumerate(planted):
        assert j in got[0, 0, i]
    if refine:  # the planted blocks' means hide them: only the refinement finds them
        unrefined = _select(q, k, case, refine=NO_REFINE, **rule)
        assert not any(j in unrefined[0, 0, i] for i, j in enumerate(planted))
    over = case[:5] + (most * 64 + 1,) + case[6:]
    with pytest.raises(AclError) as info:
        _select(q, np.zeros((1, 1, most * 64 + 1, 16), np.float16), over, refine=kw, **rule)
    assert select_limits.refuse_select_npu_kv_blocks(most + 1, most) in info.value.message


# ---------------------------------------------------------------------- the antidiagonal method
# The same cases as mean_pool's, a stride per case: the default 8, odd strides whose cells do not
# divide the blocks (5, 7, 3: every block ends in a partial cell, every query block in a partial
# row group, and where both hold a few tokens the cell has no antidiagonal pair: the fallback),
# 16 and 64 (one cell a 64-token block).
AD_STRIDES = {"bnsd": 8, "bsnd_gqa": 5, "bsh_mqa_lengths": 7, "bnsd_bsnd_kv_empty": 16, "tnd_gqa": 3,
              "long_kv_mqa": 8, "default_tiles": 64}
# A small case for every stride: partial blocks and lengths, GQA.
AD_SWEEP_CASE = ("ad_sweep", 2, 2, 1, 200, 300, 16, (64, 64), "BSND", [200, 131], [300, 77])
AD_STRIDE_SWEEP = [1, 2, 3, 7, 8, 13, 16, 31, 63, 64]
_AD_CASES = {c[0]: c for c in CASES + [AD_SWEEP_CASE]}


@functools.lru_cache(maxsize=None)
def _ad_masses(name, dtype, stride):
    """{(b, h): [R_b, C_b]} the oracle's antidiagonal masses on the values the op sees."""
    case = _AD_CASES[name]
    _, b, n, nkv, sq, skv, d, block, layout, lq, lkv = case
    q, k = _inputs(case, dtype)
    q, k = q.astype(np.float64), k.astype(np.float64)
    lq, lkv = cpu_tests._full_lengths(lq, b, sq), cpu_tests._full_lengths(lkv, b, skv)
    return {(bi, h): oracle.masses(q[bi, h, :lq[bi]], k[bi, h // (n // nkv), :lkv[bi]], block_shape=block,
                                   scale=1 / np.sqrt(d), method="antidiagonal", stride=stride)
            for bi in range(b) for h in range(n) if lq[bi] and lkv[bi]}


def _ad_want(case, dtype, stride, *, mass, top_k, anchors, share):
    """The oracle's sabi and its rows at a tie (within TIE_TOL) from the cached masses."""
    name, b, n, nkv, sq, skv, d, (bq, bkv), layout, lq, lkv = case
    lq, lkv = cpu_tests._full_lengths(lq, b, sq), cpu_tests._full_lengths(lkv, b, skv)
    rows, cols = (-(-max(lq) // bq), -(-max(lkv) // bkv)) if layout == "TND" else (-(-sq // bq), -(-skv // bkv))
    want = np.full((b, n, rows, cols), sabi_format.PAD, np.uint16)
    tie = np.zeros((b, n, rows), bool)
    anchors = anchors or block_select.NO_ANCHORS
    rule = dict(bkv=bkv, mass_target=mass or 0.0, top_k=top_k or 0,
                anchors=(anchors.first, anchors.diagonal, anchors.last))
    masses, group = _ad_masses(name, dtype, stride), n // nkv
    for (bi, h), m in masses.items():
        if share:
            m = sum(masses[bi, g] for g in range(h - h % group, h - h % group + group)) / group
        for i in range(m.shape[0]):
            where = dict(first_token=i * bq, rows=min(bq, lq[bi] - i * bq), **rule)
            kept = oracle.choose(list(m[i]), **where)
            want[bi, h, i, :len(kept)] = kept
            tie[bi, h, i] = oracle.at_a_tie(list(m[i]), tol=TIE_TOL, **where)
    return want, tie


def _ad_select(q, k, case, stride, **rule):
    got = _select(q, k, case, refine={"method": "antidiagonal", "stride": stride}, **rule)
    assert npu_sim.last_report()["plan"]["stride"] == stride  # the NPU op ran the cells
    return got


@every_case_dtype_and_rule
def test_antidiagonal_same_blocks_as_the_oracle(case, dtype, mass, top_k, anchors):
    """The API's default refine_below (mean_pool's; antidiagonal ignores it), a stride per case."""
    q, k = _inputs(case, dtype)
    n, nkv, stride = case[2], case[3], AD_STRIDES[case[0]]
    share = nkv < n and top_k is not None
    rule = dict(mass=mass, top_k=top_k, anchors=anchors, share=share)
    got = _ad_select(q, k, case, stride, **rule)
    want, tie = _ad_want(case, dtype, stride, **rule)
    _assert_matches_the_oracle(got, want, tie, case, share)


@pytest.mark.parametrize("stride", AD_STRIDE_SWEEP)
def test_antidiagonal_every_stride(stride):
    """Single-token cells to one cell a block; lengths 131 / 77 leave partial cells and row groups."""
    case = AD_SWEEP_CASE
    for dtype in sorted(DTYPES):
        q, k = _inputs(case, dtype)
        for share in (False, True):
            rule = dict(mass=0.8, top_k=2, anchors=block_select.Anchors(), share=share)
            _assert_same_blocks(_ad_select(q, k, case, stride, **rule), *_ad_want(case, dtype, stride, **rule))


@pytest.mark.parametrize("share", [False, True], ids=["per-head", "shared"])
def test_antidiagonal_gqa_both_modes_with_mass_only(share):
    case = CASES[1]
    q, k = _inputs(case, "float16")
    rule = dict(mass=0.8, top_k=None, anchors=block_select.Anchors(), share=share)
    _assert_same_blocks(_ad_select(q, k, case, 5, **rule), *_ad_want(case, "float16", 5, **rule))


def test_antidiagonal_bitwise_equal_on_2_and_8_cores(monkeypatch):
    """Each unit is computed the same way whichever core runs it (key cells restaged per core)."""
    results = {}
    for cores in (2, 8):
        monkeypatch.setenv("BLITZ_ACL_NPU_SIM_CORES", str(cores))
        for case in (CASES[0], CASES[1], CASES[4], AD_SWEEP_CASE):
            q, k = _inputs(case, "bfloat16")
            results[cores, case[0]] = _ad_select(q, k, case, 7, mass=0.9, top_k=2, anchors=block_select.Anchors(),
                                                 share=False)
            assert npu_sim.last_report()["plan"]["workers"] == min(cores, npu_sim.last_report()["plan"]["units"])
    for case in (CASES[0], CASES[1], CASES[4], AD_SWEEP_CASE):
        np.testing.assert_array_equal(results[2, case[0]], results[8, case[0]])


def test_antidiagonal_comparison_rejects_another_stride_or_method():
    """The comparison has teeth for antidiagonal too: the op run with another stride, or with
    mean_pool, differs from the oracle's antidiagonal choice in rows that are not at a tie."""
    case = CASES[0]
    q, k = _inputs(case, "float16")
    rule = dict(mass=0.9, top_k=None, anchors=block_select.Anchors(), share=False)
    want, tie = _ad_want(case, "float16", 8, **rule)
    _assert_same_blocks(_ad_select(q, k, case, 8, **rule), want, tie)
    with pytest.raises(AssertionError, match="op .* vs oracle"):
        _assert_same_blocks(_ad_select(q, k, case, 4, **rule), want, tie)
    with pytest.raises(AssertionError, match="op .* vs oracle"):
        _assert_same_blocks(_select(q, k, case, **rule), want, tie)


def test_antidiagonal_the_attention_takes_it_as_is():
    case = CASES[2]
    q, k = _inputs(case, "bfloat16")
    got = _ad_select(q, k, case, 7, mass=0.9, top_k=None, anchors=block_select.Anchors(), share=False)
    rng = np.random.default_rng(5)
    v = cpu_tests._layout(rng.standard_normal(k.shape).astype(ml_dtypes.bfloat16), case[8], case[10])
    out = blitz_acl.blitz_sparse_attention(cpu_tests._layout(q, case[8], case[9]), cpu_tests._layout(k, case[8], case[10]),
                                           v, got, device="npu_sim", **cpu_tests._call_args(case))
    assert np.all(np.isfinite(out.astype(np.float32)))


# Antidiagonal at its key-block limit, worked out by hand as above (D = 16, fp16, bkv = 64, the
# model's 288 B of softmax scratch, 188160 B of UB, token chunk 8 rows), stride 16 (4 cells a
# block): fixed 2 x 256 + 512 (token chunks, their float copy) + 3 x 32 (statistics) + 288 +
# 3 x 64 (the partial cell's sum row, the fallback's two sum rows) + 2 x 256 (the count and ln n
# tables) + 32 (block firsts) = 2144 B; a key block 4 x 4 B (its cells' score entries) + 3 x 4 B
# (mass, group mass, a row group's block masses) + 2 B (sabi) + 4 B (first cell) = 34 B:
# (188160 - 2144) // 34 = 5471, to a multiple of 64: 5440 (187104 B; 5504 blocks would need
# 189280). One query block (Sq = 64) keeps the float64 oracle's score matrix at 64 x 348128.
AD_LIMIT_STRIDE = 16
AD_MOST_KV_BLOCKS = 5440


def test_antidiagonal_the_most_key_blocks_one_launch_takes(monkeypatch):
    """At its limit the op still equals the oracle and finds the planted block of every query
    block (mean_pool's limit inputs: 3 u_i added to one key block per query block); one key
    block more is refused in the spec's words, naming the limit."""
    monkeypatch.setenv("BLITZ_ACL_NPU_SIM_CORES", "2")
    most, stride = AD_MOST_KV_BLOCKS, AD_LIMIT_STRIDE
    case, q, k, planted = _limit_inputs(False, most, sq=64)
    bq, bkv = case[7]
    rule = dict(mass=None, top_k=2, anchors=block_select.Anchors(first=0, diagonal=False, last=True), share=False)
    got = _ad_select(q, k, case, stride, **rule)
    assert npu_sim.last_report()["plan"]["cols_aligned"] == most
    assert npu_sim.last_report()["plan"]["k_units_max"] == most * bkv // stride
    m = oracle.masses(q[0, 0].astype(np.float64), k[0, 0].astype(np.float64), block_shape=(bq, bkv),
                      scale=1 / np.sqrt(case[6]), method="antidiagonal", stride=stride)
    where = dict(bkv=bkv, mass_target=0.0, top_k=2, anchors=(0, False, True))
    for i, j in enumerate(planted):
        kept = oracle.choose(list(m[i]), first_token=i * bq, rows=bq, **where)
        assert not oracle.at_a_tie(list(m[i]), first_token=i * bq, rows=bq, tol=TIE_TOL, **where)
        assert list(got[0, 0, i, :len(kept)]) == kept and np.all(got[0, 0, i, len(kept):] == sabi_format.PAD)
        assert j in kept
    over = case[:5] + (most * bkv + 1,) + case[6:]
    with pytest.raises(AclError) as info:
        _ad_select(q, np.zeros((1, 1, most * bkv + 1, 16), np.float16), over, stride, **rule)
    assert select_limits.refuse_select_npu_kv_blocks(most + 1, most) in info.value.message

"""The bounds of tests/bounds.py reject a kernel with a plausible bug and pass the real one.

A buggy kernel is simulated by the oracle on perturbed inputs, rounded to the test dtype (what
such a kernel would write at best): one selected tile dropped from sabi (in the row block that
lists the most tiles, so the change is as small as such a bug makes it), the explicit mask
ignored, sparse_mode 3 run as mode 2. Each must exceed the bound somewhere, on every matrix case
where the perturbation changes the token mask, and on S = 8192 problems (one head, D = 128)
where one tile is 1/16 of a row. The real CPU device's output on the same inputs passes (here
at S = 8192; on the matrix in tests/test_cpu_device.py, with the same shared truth).
"""

import functools
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("torch")

import blitz_acl  # noqa: E402
import bounds  # noqa: E402
import oracle  # noqa: E402
from cases import CASES  # noqa: E402

DTYPES = ("float32", "float16", "bfloat16")


def _drop_one_tile(p: oracle.Problem) -> oracle.Problem:
    """p with the one sabi entry removed whose row block lists the most tiles that still hold
    an allowed token (ties: the tile with the most allowed tokens)."""
    ok = oracle.allowed_of(p)
    bq, bkv = p.block_shape
    batch, heads, _, seq_q, seq_kv, _ = p.dims
    rows, cols = -(-seq_q // bq), -(-seq_kv // bkv)
    padded = np.zeros((batch, heads, rows * bq, cols * bkv), bool)
    padded[..., :seq_q, :seq_kv] = ok
    tokens = padded.reshape(batch, heads, rows, bq, cols, bkv).sum(axis=(3, 5))  # [B, N, R, C]
    s = p.sabi
    if s.shape[0] == 1:
        tokens = tokens.sum(axis=0, keepdims=True)
    if s.shape[1] == 1:
        tokens = tokens.sum(axis=1, keepdims=True)
    tokens = np.concatenate([tokens, np.zeros(tokens.shape[:3] + (1,), tokens.dtype)], axis=-1)
    entry_tokens = np.take_along_axis(tokens, np.where((s >= 0) & (s < cols), s, cols), axis=-1)
    useful = (entry_tokens > 0).sum(axis=-1, keepdims=True)  # per row block
    score = np.where(entry_tokens > 0, useful * (entry_tokens.max() + 1) + entry_tokens, -1)
    assert score.max() >= 0, "no selected tile holds an allowed token"
    best = np.unravel_index(int(np.argmax(score)), s.shape)
    return replace(p, sabi=oracle.drop_tile(s, best))


PERTURB = {
    "drop_one_tile": (lambda p: p.sabi is not None, _drop_one_tile),
    "mask_ignored": (lambda p: p.mask is not None, lambda p: replace(p, mode=0, mask=None)),
    "mode3_as_mode2": (lambda p: p.mode == 3, lambda p: replace(p, mode=2)),
}


def _worst(t: bounds.Truth, p_bad: oracle.Problem) -> float:
    bad, _ = oracle.solve(p_bad)
    layout = "BSND" if p_bad.layout == "BNSD_BSND" else p_bad.layout
    bad = bounds.to_bnsd(bounds.round_to(bad, t.dtype), layout, p_bad.dims[1])
    return float(bounds.row_excess(bad, t).max())


def _applicable():
    pairs = []
    for c in CASES:
        i = c.build()
        p = oracle.parse(i.query, i.key, i.value, **i.kwargs)
        pairs += [(c.name, kind) for kind, (applies, _) in PERTURB.items() if applies(p)]
    return pairs


MATRIX = _applicable()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,kind", MATRIX, ids=[f"{n}-{k}" for n, k in MATRIX])
def test_bound_rejects_a_perturbed_kernel_on_the_matrix(name, kind, dtype):
    _, t = bounds.case_truth(name, dtype)
    p_bad = PERTURB[kind][1](t.problem)
    if not (oracle.allowed_of(p_bad) != oracle.allowed_of(t.problem)).any():
        pytest.skip(f"{kind} leaves {name}'s token mask unchanged")
    worst = _worst(t, p_bad)
    assert worst > 1.0, f"{kind} on {name} ({dtype}) stays within the bound ({worst:.3g} x)"
    # The real kernel passes the same bound on the same inputs and truth in
    # tests/test_cpu_device.py (bounds.case_truth is shared), on every kernel path.


def _long_inputs(seq_q: int, seq_kv: int, seed: int):
    """Unit-variance values exactly representable in float32, float16 and bfloat16 (bfloat16
    rounding, tiny values flushed to 0 as float16 would lose their bits), so one float64 oracle
    serves every dtype."""
    rng = np.random.default_rng(seed)
    xs = []
    for s in (seq_q, seq_kv, seq_kv):
        x = bounds.round_to(rng.standard_normal((1, 1, s, 128)), "bfloat16")
        x[np.abs(x) < 2.0 ** -14] = 0.0
        xs.append(x)
    return xs


# Rows checked at S = 8192 (rows are independent, so a window is exact and 16x cheaper): the
# causal problem's last 512 rows hold the dropped tile's row block and the rows where mode 2 and
# mode 3 differ least (512 of 8192 keys); the masked problem's middle 512 rows.
WINDOWS = {"causal": (8192 - 512 - 512, 8192 - 512), "masked": (4096, 4608)}


@functools.lru_cache(maxsize=None)
def _long_problems():
    """At S = 8192: mode 3 (Sq = Skv - 512) with the causal tiles listed in sabi, and mode 1
    with a random 30% mask; the oracle and the perturbed oracles on WINDOWS."""
    bq, bkv = 128, 512
    seq_kv = 8192
    seq_q = seq_kv - bkv
    q, k, v = _long_inputs(seq_q, seq_kv, 0)
    rows, cols = -(-seq_q // bq), seq_kv // bkv
    sabi = np.full((1, 1, rows, cols), -1, np.int64)
    for r in range(rows):
        last_key = (r + 1) * bq - 1 + (seq_kv - seq_q)
        n = min(cols, last_key // bkv + 1)
        sabi[0, 0, r, :n] = np.arange(n)
    causal = oracle.parse(q, k, v, sabi, sparse_mode=3, block_shape=(bq, bkv))
    dropped = oracle.drop_tile(sabi, (0, 0, rows - 1, cols // 2))  # 1 of the last row's 16
    q2, k2, v2 = _long_inputs(seq_kv, seq_kv, 1)
    mask = np.random.default_rng(2).random((seq_kv, seq_kv)) < 0.3
    masked = oracle.parse(q2, k2, v2, atten_mask=mask, sparse_mode=1)
    bad = {"causal": {"drop_one_tile": replace(causal, sabi=dropped),
                      "mode3_as_mode2": replace(causal, mode=2)},
           "masked": {"mask_ignored": replace(masked, mode=0, mask=None)}}
    problems = {"causal": (causal, (q, k, v), dict(sabi=sabi, sparse_mode=3)),
                "masked": (masked, (q2, k2, v2), dict(atten_mask=mask, sparse_mode=1))}
    out = {name: oracle.solve(p, WINDOWS[name])[0] for name, (p, _, _) in problems.items()}
    bad_out = {name: {kind: oracle.solve(pb, WINDOWS[name])[0] for kind, pb in kinds.items()}
               for name, kinds in bad.items()}
    return problems, out, bad_out


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_bound_rejects_a_perturbed_kernel_at_8192(dtype):
    problems, out, bad_out = _long_problems()
    report = []
    for name, (p, qkv, kwargs) in problems.items():
        r0, r1 = WINDOWS[name]
        base, _ = bounds.baseline(p, dtype, with_lse=False, rows=(r0, r1))
        t = bounds.Truth(p, dtype, out[name], None, base, None)
        x = [bounds.round_to(a, dtype).astype(bounds.numpy_dtype(dtype)) for a in qkv]
        ours = blitz_acl.blitz_sparse_attention(*x, device="cpu", **kwargs)[:, :, r0:r1]
        bounds.assert_within(ours, t, "BNSD", what=f"S=8192 {name} {dtype}")
        report.append(f"{name} kernel: {float(bounds.row_excess(ours, t).max()):.3g} x")
        for kind, bad in bad_out[name].items():
            worst = float(bounds.row_excess(bounds.round_to(bad, dtype), t).max())
            report.append(f"{kind}: {worst:.3g} x")
            assert worst > 1.0, f"{kind} at S=8192 ({dtype}) stays within the bound ({worst:.3g} x)"
    print(f"S=8192 {dtype}: " + ", ".join(report))

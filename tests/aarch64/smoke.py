"""Python smoke test of the CPU device on aarch64 (run under qemu-user by run_emulated.sh).

Calls blitz_acl.blitz_sparse_attention(device="cpu") with the cross-built libblitz_cpu.so on
every kernel path the (emulated) CPU reports, and compares each result with a float64 softmax
over the sabi's tiles computed here, from the definition (no blitz_acl code in the truth). The
bound is also shown to reject an answer that misses one selected tile.

Usage: python3 smoke.py EXPECTED_PATHS     e.g. portable,neon,neon_bf16
(the library comes from BLITZ_ACL_CPU_LIBRARY; the repository root must be on sys.path).

Debian 12 packages no ml_dtypes, which blitz_acl imports for its bfloat16 dtype: without it a
stand-in module is installed (before blitz_acl is imported) so that the package imports, and only
float32 / float16 run here; bf16 on every path is covered by tests/cpp under emulation.
"""

import os
import sys
import types

import numpy as np

try:
    import ml_dtypes  # noqa: F401
    HAVE_BF16 = True
except ImportError:
    # np.dtype() of a plain class is numpy's object dtype: nothing here passes such an array.
    stand_in = types.ModuleType("ml_dtypes")
    stand_in.bfloat16 = type("bfloat16", (), {})
    sys.modules["ml_dtypes"] = stand_in
    HAVE_BF16 = False

import blitz_acl  # noqa: E402
from blitz_acl.devices import library  # noqa: E402

BQ, BKV = 64, 128
TOLERANCE = {"float32": 1e-4, "float16": 4e-3, "bfloat16": 2.5e-2}  # max |error|, unit-variance inputs


def truth(q, k, v, sabi, scale, causal):
    """Dense attention in float64 over the keys of each query block's listed key blocks (and j <= i
    if causal), from the definition: scores, a masked max, exp, normalise."""
    B, N, Sq, D = q.shape
    Skv = k.shape[2]
    group = N // k.shape[1]
    out = np.zeros((B, N, Sq, D))
    lse = np.full((B, N, Sq), -np.inf)
    rows = np.arange(Sq)[:, None]
    for b in range(B):
        for h in range(N):
            allowed = np.zeros((Sq, Skv), dtype=bool)
            for i in range(Sq):
                for kb in sabi[b if sabi.shape[0] > 1 else 0, h if sabi.shape[1] > 1 else 0, i // BQ]:
                    if kb != 0xFFFF:
                        allowed[i, kb * BKV:(kb + 1) * BKV] = True
            if causal:
                allowed &= np.arange(Skv)[None, :] <= rows
            s = q[b, h].astype(np.float64) @ k[b, h // group].astype(np.float64).T * scale
            s[~allowed] = -np.inf
            live = allowed.any(axis=1)
            m = np.where(live, s.max(axis=1), 0.0)
            w = np.exp(s - m[:, None])  # exp(-inf) = 0 for keys not allowed
            denom = w.sum(axis=1)
            out[b, h, live] = (w[live] / denom[live, None]) @ v[b, h // group].astype(np.float64)
            lse[b, h, live] = m[live] + np.log(denom[live])
    return out, lse


def sabi_for(B, N, Sq, Skv, rng):
    """Each query block keeps about half of its key blocks (at least one), in random order, with
    -1 holes anywhere but the first entry (check() drops sabi[0, 0, 0, 0], a real block)."""
    rows, cols = -(-Sq // BQ), -(-Skv // BKV)
    sabi = np.full((B, N, rows, cols), 0xFFFF, dtype=np.uint16)
    for b in range(B):
        for h in range(N):
            for r in range(rows):
                keep = [c for c in range(cols) if rng.random() < 0.5] or [int(rng.integers(cols))]
                rng.shuffle(keep)
                row = np.array(keep + [0xFFFF] * (cols - len(keep)), dtype=np.uint16)
                rng.shuffle(row[1:])
                sabi[b, h, r] = row
    return sabi


def cases(dtype, rng):
    """The inputs for one dtype and their truths (plain and causal, and plain without one tile)."""
    B, N, NKV, SQ, SKV, D = 1, 4, 2, 150, 300, 40  # GQA, partial tiles in both dims, odd D
    np_dtype = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    q, k, v = (rng.standard_normal(shape).astype(np_dtype)
               for shape in ((B, N, SQ, D), (B, NKV, SKV, D), (B, NKV, SKV, D)))
    sabi = sabi_for(B, N, SQ, SKV, rng)
    scale = float(np.float32(1.0 / np.sqrt(D)))  # the float32 scale the kernel gets
    dropped = sabi.copy()
    dropped[0, 0, 0, 0] = 0xFFFF
    return (q, k, v, sabi), {causal: truth(q, k, v, sabi, scale, causal) for causal in (False, True)}, \
        truth(q, k, v, dropped, scale, False)[0]


def check(dtype, path, inputs, truths, one_tile_dropped):
    q, k, v, sabi = inputs
    worst = 0.0
    for causal in (False, True):
        out, lse = blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="cpu", return_lse=True,
                                                    block_shape=(BQ, BKV), sparse_mode=2 if causal else 0)
        assert out.dtype == q.dtype and out.shape == q.shape, (out.dtype, out.shape)
        want, want_lse = truths[causal]
        err = np.abs(out.astype(np.float64) - want).max()
        finite = np.isfinite(want_lse)
        assert (lse[~finite] == -np.inf).all(), f"{path} {dtype}: empty rows must give lse = -inf"
        lse_err = np.abs(lse[finite] - want_lse[finite]).max()
        assert err <= TOLERANCE[dtype], f"{path} {dtype} causal={causal}: max |out - truth| = {err:.3g}"
        assert lse_err <= 1e-3, f"{path} {dtype} causal={causal}: max |lse - truth| = {lse_err:.3g}"
        worst = max(worst, err)
        if not causal:
            # The bound can fail: the truth without one selected tile is far outside it.
            miss = np.abs(out.astype(np.float64) - one_tile_dropped).max()
            assert miss > 5 * TOLERANCE[dtype], f"one dropped tile moves the truth by only {miss:.3g}"
    return worst


def main():
    expected = sys.argv[1].split(",")
    info = library.load().device_info()
    print(f"device info: {info}")
    assert "arch=aarch64" in info and "vendor=" in info and "avx" not in info, info
    paths_field = next(w for w in info.split() if w.startswith("paths="))
    paths = paths_field[len("paths="):].split(",")
    assert paths == expected, f"the library reports paths {paths}, this CPU should have {expected}"
    rng = np.random.default_rng(0)
    dtypes = ["float32", "float16"] + (["bfloat16"] if HAVE_BF16 else [])
    passed = 0
    for dtype in dtypes:
        inputs, truths, one_tile_dropped = cases(dtype, rng)
        for path in paths:
            os.environ["BLITZ_ACL_CPU_PATH"] = path  # read by the binding at every call
            assert library.load().device_info().startswith(f"kernel path {path};")
            worst = check(dtype, path, inputs, truths, one_tile_dropped)
            print(f"  {path:10s} {dtype:9s} max |out - float64 truth| = {worst:.2e} (bound {TOLERANCE[dtype]:g})")
            passed += 1
    print(f"python smoke: {passed} path x dtype checks passed on paths {','.join(paths)}"
          + ("" if HAVE_BF16 else "; bfloat16 not run here (no ml_dtypes in Debian 12)"))


if __name__ == "__main__":
    main()

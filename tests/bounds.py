"""Error bounds in the FlashAttention manner: ours vs the float64 oracle, relative to a baseline.

For every output row r (one (b, h, query) row of D values):

    max_d |ours - oracle64|  <=  K * max_d |baseline - oracle64|  +  ATOL  +  RTOL * max_d |oracle64|

where baseline = torch SDPA in the same dtype on the same (rounded) inputs with the same token
mask (the oracle's, as an explicit boolean mask; its rows with nothing allowed are zeros, as
ours). For the lse (float32 in every dtype) the baseline is torch.logsumexp in float32 of the
float32 scores, and the rule holds elementwise with the baseline's max error over the tensor
(one scalar per row gives no sample to take a max over).

Why per-row max norms: the FlashAttention tests compare max norms because an elementwise
baseline error is often exactly 0 by luck of rounding, so an elementwise k x baseline would
reject correct kernels; a max over the whole tensor would let a row of small values (~0.01 at
long rows) hide behind the baseline's error on a row of large values (~1, a row that attends one
key). A row's D >= 16 values give a stable max, and a row is the unit a kernel bug touches (a
dropped tile, a wrong mask, a wrong mode change whole rows).

Constants, calibrated on this machine (AMD EPYC Zen 4; kernel paths portable, avx2, avx512)
over every case of tests/cases.py and the S = 8192 problems of tests/test_bounds_calibration.py:

| dtype | K | ATOL | RTOL | K the kernel needs | worst row / bound: matrix | S = 8192 |
| --- | --- | --- | --- | --- | --- | --- |
| float32 | 10 | 1e-7 | 2^-18 | 6.2 (short rows, RTOL 2^-25) | 0.40 | 0.54-0.67 |
| float16 | 4 | 1e-5 | 2^-12 (half ulp) | 1.55 | 0.64 | 0.41-0.43 |
| bfloat16 | 4 | 1e-5 | 2^-9 (half ulp) | 2.09 | 0.64 | 0.41-0.43 |

float32's RTOL is 64 ulps (2^-24 each) because SDPA's float32 error does not grow with the row
length as a sequential float32 accumulation does (S = 8192: SDPA 1.5e-8, ours 2.7e-7 on rows of
size 0.076), so K x baseline alone would reject a correct kernel. lse: LSE_K = 4, LSE_ATOL =
5e-7, LSE_RTOL = 2^-23; worst lse / bound 0.53. The perturbations of the calibration test exceed
these bounds by >= 34x (bfloat16, one tile dropped in `sabi_frame`; README, Tests).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np

import oracle

# Per dtype, for the output: K x the baseline's row error, ATOL, RTOL x the row's max |value|.
# RTOL is half a unit in the last place of float16 / bfloat16 (the rounding of the output itself, which
# SDPA's error already shows but not on rows where it happens to round well); ATOL covers rows
# whose baseline is exact (one attended key, or zeros).
K = {"float32": 10.0, "float16": 4.0, "bfloat16": 4.0}
ATOL = {"float32": 1e-7, "float16": 1e-5, "bfloat16": 1e-5}
RTOL = {"float32": 2.0 ** -18, "float16": 2.0 ** -12, "bfloat16": 2.0 ** -9}
# The lse is float32 in every dtype and computed from float32 scores on both sides.
LSE_K, LSE_ATOL, LSE_RTOL = 4.0, 5e-7, 2.0 ** -23


def _torch_dtype(dtype: str):
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]


def numpy_dtype(dtype: str):
    import ml_dtypes

    return ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)


def to_bnsd(x: np.ndarray, layout: str, heads: int) -> np.ndarray:
    """An output (or its oracle) in `layout` (the OUTPUT layout) as [B, N, S, D]."""
    x = np.asarray(x, dtype=np.float64)
    if layout == "BNSD":
        return x
    if layout == "BSH":
        x = x.reshape(x.shape[0], x.shape[1], heads, -1)
    return x.transpose(0, 2, 1, 3)


@dataclass
class Truth:
    """Everything a bound needs for one problem: the oracle, the baseline, the dtype."""
    problem: oracle.Problem
    dtype: str
    out: np.ndarray  # oracle, [B, N, Sq, D]
    lse: np.ndarray  # oracle, [B, N, Sq]
    base_out: np.ndarray  # baseline, [B, N, Sq, D]
    base_lse: np.ndarray


def baseline(p: oracle.Problem, dtype: str, with_lse: bool = True,
             rows: Optional[Tuple[int, int]] = None):
    """torch SDPA in `dtype` with the oracle's token mask; (out [B,N,Sq,D], lse or None)
    float64 (query rows r0..r1-1 only with rows=(r0, r1))."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small problems; extra threads only spin on a shared machine
    try:
        return _baseline(p, dtype, with_lse, rows)
    finally:
        torch.set_num_threads(threads)


def _baseline(p, dtype, with_lse, rows):
    import torch

    allowed = torch.from_numpy(oracle.allowed_of(p, rows))
    batch, heads, kv_heads, seq_q, seq_kv, d = p.dims
    first, last = (0, seq_q) if rows is None else rows
    tdt = _torch_dtype(dtype)
    # p.q etc. hold the rounded inputs exactly (float64 holds every value of the three dtypes).
    q = torch.from_numpy(p.q[:, :, first:last]).to(tdt)
    k = torch.from_numpy(p.k).to(tdt).repeat_interleave(heads // kv_heads, dim=1)
    v = torch.from_numpy(p.v).to(tdt).repeat_interleave(heads // kv_heads, dim=1)
    empty = ~allowed.any(dim=-1)
    if last > first and seq_kv:
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                                               scale=p.scale)
        out = torch.where(empty[..., None], torch.zeros((), dtype=tdt), out)
        lse = None
        if with_lse:
            scores = (q.float() @ k.float().transpose(-1, -2)) * p.scale
            lse = torch.logsumexp(scores.masked_fill(~allowed, -math.inf), dim=-1)
    else:
        out = torch.zeros(batch, heads, last - first, d, dtype=tdt)
        lse = torch.full((batch, heads, last - first), -math.inf)
    return out.double().numpy(), (None if lse is None else lse.double().numpy())


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """float64 values rounded to `dtype` (what a kernel writing that dtype could return)."""
    import torch

    return torch.from_numpy(np.asarray(x, np.float64)).to(_torch_dtype(dtype)).double().numpy()


def truth_of(p: oracle.Problem, dtype: str, with_lse: bool = True) -> Truth:
    out, lse = oracle.solve(replace(p, return_lse=True))
    out_layout = "BSND" if p.layout == "BNSD_BSND" else p.layout
    base_out, base_lse = baseline(p, dtype, with_lse)
    return Truth(p, dtype, to_bnsd(out, out_layout, p.dims[1]), lse, base_out, base_lse)


def truth(query, key, value, dtype: str, **kwargs) -> Truth:
    """The oracle and the baseline of one call (kwargs as blitz_sparse_attention's)."""
    return truth_of(oracle.parse(query, key, value, **kwargs), dtype)


@functools.lru_cache(maxsize=None)
def case_truth(name: str, dtype: str):
    """(inputs, Truth) of a tests/cases.py case, computed once per process (the device matrix
    and the calibration test share it)."""
    from cases import CASES

    inputs = next(c for c in CASES if c.name == name).build(dtype)
    return inputs, truth(inputs.query, inputs.key, inputs.value, dtype, **inputs.kwargs)


def row_excess(actual_bnsd: np.ndarray, t: Truth, k: Optional[float] = None) -> np.ndarray:
    """Per row: max |actual - oracle| / bound (<= 1 passes). NaN counts as infinite."""
    k = K[t.dtype] if k is None else k
    a = np.asarray(actual_bnsd, dtype=np.float64)
    assert a.shape == t.out.shape, f"shape {a.shape} != expected {t.out.shape}"
    err = np.abs(a - t.out).max(axis=-1, initial=0.0)
    err = np.where(np.isnan(np.abs(a - t.out)).any(axis=-1), np.inf, err)
    base = np.abs(t.base_out - t.out).max(axis=-1, initial=0.0)
    scale = np.abs(t.out).max(axis=-1, initial=0.0)
    bound = k * base + ATOL[t.dtype] + RTOL[t.dtype] * scale
    return err / bound


def lse_excess(actual_lse: np.ndarray, t: Truth) -> np.ndarray:
    a = np.asarray(actual_lse, dtype=np.float64)
    e = t.lse
    both = np.isneginf(a) & np.isneginf(e)
    with np.errstate(invalid="ignore"):
        err = np.where(both, 0.0, np.abs(a - e))
        base_err = np.where(np.isneginf(t.base_lse) & np.isneginf(e), 0.0, np.abs(t.base_lse - e))
    err = np.where(np.isnan(err), np.inf, err)
    fin = np.where(np.isfinite(e), np.abs(e), 0.0)
    base = base_err[np.isfinite(base_err)].max(initial=0.0)
    return err / (LSE_K * base + LSE_ATOL + LSE_RTOL * fin)


def assert_within(actual_out, t: Truth, out_layout: str, actual_lse=None, what: str = "") -> None:
    """Fails naming the worst row when a row (or an lse) exceeds its bound."""
    a = to_bnsd(actual_out, out_layout, t.problem.dims[1])
    x = row_excess(a, t)
    if x.size and not (x.max() <= 1.0):
        at = np.unravel_index(int(np.nanargmax(np.where(np.isnan(x), np.inf, x))), x.shape)
        err = np.abs(a[at] - t.out[at]).max()
        base = np.abs(t.base_out[at] - t.out[at]).max()
        raise AssertionError(
            f"{what} out row (b, h, row) = {tuple(int(i) for i in at)}: |ours - oracle| = {err:.3g} "
            f"is {x[at]:.3g} x its bound (K={K[t.dtype]} x baseline {base:.3g} + atol "
            f"{ATOL[t.dtype]} + rtol {RTOL[t.dtype]} x {np.abs(t.out[at]).max():.3g})")
    if actual_lse is not None:
        y = lse_excess(actual_lse, t)
        if y.size and not (y.max() <= 1.0):
            at = np.unravel_index(int(np.argmax(y)), y.shape)
            raise AssertionError(
                f"{what} lse at (b, h, row) = {tuple(int(i) for i in at)}: {float(np.asarray(actual_lse)[at])} vs "
                f"oracle {t.lse[at]}, {y[at]:.3g} x its bound")

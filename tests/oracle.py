"""An independent float64 oracle of blitz_sparse_attention: the tests' truth.

It shares no code with the package (imports numpy only; ml_dtypes/torch values are converted to
float64 at the door): its own reading of layouts, heads (GQA), the default scale, per-batch
lengths, sabi in every accepted dtype and shape, sparse modes 0-4 and explicit masks, written
from DESIGN.md ("The operation") and blitz_acl.api's docstring, not from blitz_acl.reference.

- `attention(query, key, value, sabi=None, **kwargs)`: the keyword arguments of
  blitz_sparse_attention (device and validate are ignored). Returns float64 out in the output
  layout, or with return_lse=True (out, lse [B, N, Sq]).
- `allowed(query, key, value, sabi=None, **kwargs)`: boolean [B, N, Sq, Skv], True where query
  row i attends key j (sabi tiles AND lengths AND mode / mask); for baselines such as torch SDPA.
- `Problem`: the parsed call (BNSD float64 q/k/v, heads, lengths, ...), for the two above and
  for tests that perturb a call (drop a tile, switch the mode).

Rules (DESIGN.md): sabi [Bs, Ns, R, W] (3-d = [Ns, R, W]); 0xFFFF / -1 is "no block", any
order; entries outside [0, C) are never attended (the kernels' bounds guard). Modes, with each
batch's actual lengths Lq, Lkv and o = Lkv - Lq: 2 j <= i; 3 j <= i + o; 4 i + o - pre <= j <=
i + o + next; 0/1 the explicit mask (1 = masked out), whose top-left [Sq, Skv] window is used,
shapes [Sq', Skv'], [1|B, Sq', Skv'], [1|B, 1|N, Sq', Skv'] with Sq' >= Sq, Skv' >= Skv; in
modes 2-4 a mask (the original's compressed one) is ignored. Rows i >= Lq give zeros and
lse -inf; keys j >= Lkv are never attended; a row with nothing allowed gives zeros, lse -inf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple

import numpy as np

_MAX_INT = 2147483647
# Rows per step when computing one head: bounds memory at ~ROWS x Skv float64.
_ROWS_PER_STEP = 512


def to_float64(x) -> np.ndarray:
    """numpy (incl. ml_dtypes bfloat16) or torch -> float64 numpy."""
    if type(x).__module__.startswith("torch"):
        import torch

        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x).astype(np.float64)


def to_int64(x) -> Optional[np.ndarray]:
    """An integer/bool array (numpy, torch, nested list) -> int64 numpy, keeping the signed
    meaning: uint16 0xFFFF becomes -1."""
    if x is None:
        return None
    if type(x).__module__.startswith("torch"):
        import torch

        if x.dtype == torch.uint16:
            x = x.to(torch.int32)
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype == np.uint16:
        a = a.astype(np.int64)
        a[a == 0xFFFF] = -1
    return a.astype(np.int64)


@dataclass(frozen=True)
class Problem:
    q: np.ndarray  # [B, N, Sq, D] float64
    k: np.ndarray  # [B, Nkv, Skv, D]
    v: np.ndarray
    layout: str
    scale: float
    q_lens: tuple  # B ints
    kv_lens: tuple
    sabi: Optional[np.ndarray]  # int64 [Bs, Ns, R, W], -1 = none
    block_shape: tuple
    mode: int
    pre: int
    next: int
    mask: Optional[np.ndarray]  # bool [Bm, Nm, Sq', Skv'], True = masked out
    return_lse: bool

    @property
    def dims(self):
        b, n, sq, d = self.q.shape
        return b, n, self.k.shape[1], sq, self.k.shape[2], d


def _lengths(lengths, batch: int, full: int) -> tuple:
    if lengths is None:
        return (full,) * batch
    vals = [int(v) for v in to_int64(lengths).reshape(-1)]
    return tuple(vals * batch) if len(vals) == 1 else tuple(vals[:batch])


def parse(query, key, value, sabi=None, *, num_heads=None, num_key_value_heads=0,
          input_layout="BNSD", scale_value=None, actual_seq_lengths=None,
          actual_seq_lengths_kv=None, atten_mask=None, sparse_mode=0, pre_tokens=_MAX_INT,
          next_tokens=_MAX_INT, block_shape=(128, 512), return_lse=False, device=None,
          validate=True) -> Problem:
    """The raw call as a Problem (no validation: feed it calls the package accepts)."""
    q, k, v = to_float64(query), to_float64(key), to_float64(value)
    if input_layout == "BSH":
        n = int(num_heads)
        d = q.shape[2] // n
        q = q.reshape(q.shape[0], q.shape[1], n, d)
        nkv = k.shape[2] // d
        k = k.reshape(k.shape[0], k.shape[1], nkv, d)
        v = v.reshape(v.shape[0], v.shape[1], nkv, d)
    if input_layout in ("BSND", "BSH"):
        q, k, v = (np.ascontiguousarray(t.transpose(0, 2, 1, 3)) for t in (q, k, v))
    batch, _, seq_q, d = q.shape
    seq_kv = k.shape[2]
    s = to_int64(sabi)
    if s is not None and s.ndim == 3:
        s = s[None]
    mask = None
    if atten_mask is not None and int(sparse_mode) in (0, 1):
        m = to_int64(atten_mask) != 0
        # [Sq', Skv'] -> [1, 1, ..]; [1|B, Sq', Skv'] -> [1|B, 1, ..]; 4-d as given.
        mask = m[None, None] if m.ndim == 2 else (m[:, None] if m.ndim == 3 else m)
    return Problem(
        q=q, k=k, v=v, layout=input_layout,
        scale=1.0 / math.sqrt(d) if scale_value is None else float(scale_value),
        q_lens=_lengths(actual_seq_lengths, batch, seq_q),
        kv_lens=_lengths(actual_seq_lengths_kv, batch, seq_kv),
        sabi=s, block_shape=tuple(int(x) for x in block_shape), mode=int(sparse_mode),
        pre=int(pre_tokens), next=int(next_tokens), mask=mask, return_lse=bool(return_lse))


def _row_allowed(p: Problem, b: int, h: int, rows: np.ndarray) -> np.ndarray:
    """Boolean [len(rows), Skv] for batch b, query head h."""
    _, _, _, _, seq_kv, _ = p.dims
    lq, lkv = p.q_lens[b], p.kv_lens[b]
    i = rows[:, None]
    j = np.arange(seq_kv)[None, :]
    ok = (i < lq) & (j < lkv)
    if p.sabi is not None:
        bq, bkv = p.block_shape
        s = p.sabi
        cols = -(-seq_kv // bkv)
        tiles = np.zeros((rows.size, cols + 1), dtype=bool)  # column `cols` collects bad entries
        block_rows = s[b if s.shape[0] > 1 else 0, h if s.shape[1] > 1 else 0]
        entries = block_rows[rows // bq]  # [len(rows), W]
        entries = np.where((entries >= 0) & (entries < cols), entries, cols)
        np.put_along_axis(tiles, entries, True, axis=1)
        ok &= tiles[:, j[0] // bkv]
    o = lkv - lq
    if p.mode == 2:
        ok &= j <= i
    elif p.mode == 3:
        ok &= j <= i + o
    elif p.mode == 4:
        ok &= (j >= i + o - p.pre) & (j <= i + o + p.next)
    elif p.mask is not None:
        m = p.mask[b if p.mask.shape[0] > 1 else 0, h if p.mask.shape[1] > 1 else 0]
        ok &= ~m[rows][:, :seq_kv]
    return ok


def solve(p: Problem, rows: Optional[Tuple[int, int]] = None):
    """(out float64 in the output layout, lse [B, N, Sq] or None) of a Problem.

    rows=(r0, r1): only query rows r0..r1-1 (rows are independent), returned as BNSD
    [B, N, r1 - r0, D] and lse [B, N, r1 - r0] whatever the layout.
    """
    batch, heads, kv_heads, seq_q, seq_kv, d = p.dims
    first, last = (0, seq_q) if rows is None else rows
    group = heads // kv_heads
    out = np.zeros((batch, heads, last - first, d))
    lse = np.full((batch, heads, last - first), -np.inf)
    for b in range(batch):
        for h in range(heads):
            k, v = p.k[b, h // group], p.v[b, h // group]
            for r0 in range(first, last, _ROWS_PER_STEP):
                at = np.arange(r0, min(last, r0 + _ROWS_PER_STEP))
                ok = _row_allowed(p, b, h, at)
                scores = np.where(ok, (p.q[b, h, at] @ k.T) * p.scale, -np.inf)
                top = scores.max(axis=1, initial=-np.inf)
                live = np.isfinite(top)
                w = np.exp(scores - np.where(live, top, 0.0)[:, None])  # 0 where masked
                denom = w.sum(axis=1)
                safe = np.where(live, denom, 1.0)
                out[b, h, at - first] = np.where(live[:, None], (w @ v) / safe[:, None], 0.0)
                lse[b, h, at - first] = np.where(live, top + np.log(safe), -np.inf)
    if rows is not None:
        return out, lse
    if p.layout in ("BSND", "BSH", "BNSD_BSND"):
        out = np.ascontiguousarray(out.transpose(0, 2, 1, 3))
        if p.layout == "BSH":
            out = out.reshape(batch, seq_q, heads * d)
    return out, (lse if p.return_lse else None)


def allowed_of(p: Problem, rows: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Boolean [B, N, Sq, Skv] (or [B, N, r1 - r0, Skv] for rows=(r0, r1))."""
    batch, heads, _, seq_q, seq_kv, _ = p.dims
    first, last = (0, seq_q) if rows is None else rows
    a = np.zeros((batch, heads, last - first, seq_kv), dtype=bool)
    for b in range(batch):
        for h in range(heads):
            a[b, h] = _row_allowed(p, b, h, np.arange(first, last))
    return a


def attention(query, key, value, sabi=None, **kwargs):
    out, lse = solve(parse(query, key, value, sabi, **kwargs))
    return (out, lse) if kwargs.get("return_lse") else out


def allowed(query, key, value, sabi=None, **kwargs) -> np.ndarray:
    return allowed_of(parse(query, key, value, sabi, **kwargs))


def token_density(p: Problem) -> float:
    """Share of the [Lq, Lkv] token pairs that sabi's tiles select (mode/mask not applied),
    over every batch and head: what a 'sparse' case's name promises."""
    if p.sabi is None:
        return 1.0
    plain = replace(p, mode=0, mask=None)
    batch, heads, _, seq_q, seq_kv, _ = p.dims
    total = sum(p.q_lens[b] * p.kv_lens[b] for b in range(batch)) * heads
    return float(allowed_of(plain).sum()) / total if total else 0.0


def drop_tile(sabi_int64: np.ndarray, at: Sequence[int]) -> np.ndarray:
    """A copy of an int64 sabi with the entry at (bs, ns, row, slot) set to -1."""
    s = np.array(sabi_int64, dtype=np.int64, copy=True)
    s[tuple(at)] = -1
    return s

"""The reference device: the float64 numpy computation of the whole operation (DESIGN.md, "The
operation"), reached through blitz_acl.devices like every device.

It favours being obviously right over speed, with one concession: it walks one query block at a
time and gathers only the key blocks sabi selects, so memory stays O(bq x Skv) per head and
Sq = Skv = 32768 runs on a laptop.

- `compute(call)`: float64 numpy (out in the output layout, lse [B, N, Sq] or None) from a
  validated AttentionCall (blitz_acl.reference.run);
- `run(call)`: the same in the query's kind and dtype, as every device returns it.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .. import arrays, limits
from ..call import AttentionCall
from ..sabi import PAD

LSE_DTYPE = "float32"  # as every device returns it


def _to_bnsd(x: np.ndarray, layout: str, heads: int) -> np.ndarray:
    """A [B, N, S, D] view of x given in `layout` (BSH splits its last dim into `heads`)."""
    if limits.is_head_major(layout):
        return x
    if limits.has_fused_heads(layout):
        b, s, hidden = x.shape
        x = x.reshape(b, s, heads, hidden // heads)
    return x.transpose(0, 2, 1, 3)  # BSND -> BNSD


def _from_bnsd(x: np.ndarray, layout: str) -> np.ndarray:
    """x [B, N, S, D] rearranged into output layout `layout`."""
    if limits.is_head_major(layout):
        return x
    bsnd = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    if limits.has_fused_heads(layout):
        return bsnd.reshape(bsnd.shape[0], bsnd.shape[1], -1)
    return bsnd


def _explicit_mask(call: AttentionCall) -> Optional[np.ndarray]:
    """The explicit mask as boolean [1 or B, 1 or N, Sq, Skv], True = masked out (nonzero
    counts): the top-left [Sq, Skv] window of a mask that may be larger."""
    if call.atten_mask is None:
        return None
    m = arrays.to_numpy(call.atten_mask)[..., :call.seq_q, :call.seq_kv] != 0
    if m.ndim == 2:
        return m[None, None]
    if m.ndim == 3:
        return m[:, None]
    return m


def _selected_keys(row: Optional[np.ndarray], seq_kv: int, kv_len: int, bkv: int) -> np.ndarray:
    """Key positions (< kv_len) inside the key blocks a sabi row lists, ascending.

    Indices past the last key block are ignored (bounds guard for validate=False), and a
    block listed twice counts once.
    """
    if row is None:
        return np.arange(kv_len)
    cols = -(-seq_kv // bkv)
    blocks = np.unique(row[(row != PAD) & (row < cols)]).astype(np.int64)
    if blocks.size == 0:
        return np.zeros(0, dtype=np.int64)
    keys = (blocks[:, None] * bkv + np.arange(bkv)[None, :]).ravel()
    return keys[keys < kv_len]


def _token_allowed(call: AttentionCall, rows: np.ndarray, keys: np.ndarray, q_len: int,
                   kv_len: int, mask: Optional[np.ndarray]) -> np.ndarray:
    """Boolean [len(rows), len(keys)]: the token-level rule of sparse_mode (DESIGN.md)."""
    i = rows[:, None]
    j = keys[None, :]
    mode = call.sparse_mode
    if mode == 2:  # causal, top-left
        return np.broadcast_to(j <= i, (rows.size, keys.size))
    offset = kv_len - q_len  # bottom-right anchor, on this batch's actual lengths
    if mode == 3:
        return np.broadcast_to(j <= i + offset, (rows.size, keys.size))
    if mode == 4:
        return (j >= i + offset - call.pre_tokens) & (j <= i + offset + call.next_tokens)
    if mask is None:
        return np.ones((rows.size, keys.size), dtype=bool)
    return ~mask[rows][:, keys]


def _gather(x: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """x[keys]; a view when the keys are one contiguous run (dense rows: no 32768 x D copy)."""
    if keys.size and keys[-1] - keys[0] + 1 == keys.size:
        return x[keys[0]:keys[-1] + 1]
    return x[keys]


def _attend(q: np.ndarray, k: np.ndarray, v: np.ndarray, allowed: np.ndarray,
            scale: float) -> Tuple[np.ndarray, np.ndarray]:
    """Softmax attention of q [r, D] over k, v [c, D] where `allowed` [r, c].

    Rows with nothing allowed give zeros and lse = -inf (never NaN).
    """
    scores = np.where(allowed, (q @ k.T) * scale, -np.inf)
    empty = ~allowed.any(axis=1)
    row_max = scores.max(axis=1, initial=-np.inf)
    # An empty row has max -inf; subtracting 0 instead keeps exp() at 0 rather than NaN.
    shift = np.where(empty, 0.0, row_max)
    p = np.exp(scores - shift[:, None])
    denom = p.sum(axis=1)
    out = (p @ v) / np.where(empty, 1.0, denom)[:, None]
    with np.errstate(divide="ignore"):
        lse = np.where(empty, -np.inf, shift + np.log(np.where(empty, 1.0, denom)))
    return out, lse


def compute(call: AttentionCall) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(attention_out float64 in call.output_layout, lse float64 [B, N, Sq] or None)."""
    q = _to_bnsd(arrays.to_numpy(call.query).astype(np.float64), call.input_layout, call.num_heads)
    k = _to_bnsd(arrays.to_numpy(call.key).astype(np.float64), call.input_layout,
                 call.num_key_value_heads)
    v = _to_bnsd(arrays.to_numpy(call.value).astype(np.float64), call.input_layout,
                 call.num_key_value_heads)
    batch, heads, seq_q, seq_kv = call.batch, call.num_heads, call.seq_q, call.seq_kv
    bq, bkv = call.block_shape
    group = heads // call.num_key_value_heads
    mask = _explicit_mask(call)
    sabi = call.sabi
    out = np.zeros((batch, heads, seq_q, call.head_dim), dtype=np.float64)
    lse = np.full((batch, heads, seq_q), -np.inf, dtype=np.float64)

    for b in range(batch):
        q_len = call.actual_seq_lengths[b] if call.actual_seq_lengths else seq_q
        kv_len = call.actual_seq_lengths_kv[b] if call.actual_seq_lengths_kv else seq_kv
        for h in range(heads):
            head_mask = None if mask is None else mask[min(b, mask.shape[0] - 1), min(h, mask.shape[1] - 1)]
            k_bh, v_bh = k[b, h // group], v[b, h // group]
            for r0 in range(0, q_len, bq):  # rows >= q_len stay zero / -inf
                rows = np.arange(r0, min(r0 + bq, q_len))
                row = None
                if sabi is not None:
                    row = sabi[min(b, sabi.shape[0] - 1), min(h, sabi.shape[1] - 1), r0 // bq]
                keys = _selected_keys(row, seq_kv, kv_len, bkv)
                allowed = _token_allowed(call, rows, keys, q_len, kv_len, head_mask)
                r1 = r0 + rows.size
                o, l = _attend(q[b, h, r0:r1], _gather(k_bh, keys), _gather(v_bh, keys), allowed,
                               call.scale_value)
                out[b, h, r0:r1] = o
                lse[b, h, r0:r1] = l

    return _from_bnsd(out, call.output_layout), (lse if call.return_lse else None)


def run(call: AttentionCall) -> Tuple[Any, Optional[Any]]:
    """The device entry (blitz_acl.devices.run): compute's outputs in the query's kind and dtype,
    lse float32, as every device returns them."""
    out64, lse64 = compute(call)
    out = arrays.from_numpy(out64, like=call.query, dtype=call.dtype)
    lse = None if lse64 is None else arrays.from_numpy(lse64, like=call.query, dtype=LSE_DTYPE)
    return out, lse

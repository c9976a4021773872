"""sabi to and from boolean masks: the block mask [B, N, R, C] and the token mask [B, N, Sq, Skv]."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import arrays
from .format import DEFAULT_BLOCK_SHAPE, PAD, block_counts, check_block_shape, normalize, validate

# Largest token mask `to_token_mask` builds unless told otherwise (256 Mi booleans).
TOKEN_MASK_MAX_ELEMENTS = 1 << 28


def to_block_mask(sabi: Any, seq_q: int, seq_kv: int, block_shape=DEFAULT_BLOCK_SHAPE) -> np.ndarray:
    """Boolean [Bs, Ns, R, C]: True where sabi selects tile (row, col). Entries are validated."""
    s = normalize(sabi)
    s = validate(s, s.shape[0], s.shape[1], seq_q, seq_kv, block_shape)
    cols = block_counts(seq_q, seq_kv, block_shape)[1]
    return _lists_to_mask(s, s != PAD, cols)


def _lists_to_mask(indices: np.ndarray, valid: np.ndarray, cols: int) -> np.ndarray:
    """Boolean [..., cols] with True at indices[..., j] wherever valid[..., j]."""
    # Invalid entries write into a spare column that is dropped afterwards.
    target = np.where(valid, indices, cols).astype(np.intp)
    out = np.zeros(indices.shape[:-1] + (cols + 1,), dtype=bool)
    np.put_along_axis(out, target, True, axis=-1)
    return out[..., :cols]


def from_block_mask(mask: Any, *, width: Optional[int] = None) -> np.ndarray:
    """sabi uint16 [B, N, R, W] from a boolean block mask [B, N, R, C] (3-d means B = 1).

    Rows come out sorted and right-padded. `width` defaults to the largest row count (at
    least 1 when C >= 1); a narrower width than some row needs is an error.
    """
    m = arrays.to_numpy(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"block mask must be boolean, got dtype {m.dtype}")
    if m.ndim == 3:
        m = m[None]
    if m.ndim != 4:
        raise ValueError(f"block mask must be 4-d [B, N, R, C] or 3-d, got shape {m.shape}")
    cols = m.shape[-1]
    counts = m.sum(axis=-1)
    need = int(counts.max()) if counts.size else 0
    if width is None:
        width = max(need, min(1, cols))
    if not need <= width <= cols:
        raise ValueError(f"width={width} must lie in [{need}, {cols}] for this block mask")
    # A stable sort of "not selected" puts the selected columns first, in ascending order.
    order = np.argsort(~m, axis=-1, kind="stable")[..., :width]
    keep = np.arange(width) < counts[..., None]
    return np.ascontiguousarray(np.where(keep, order, PAD).astype(np.uint16))


def _tile_extents(length: int, block: int, count: int) -> np.ndarray:
    """Token count of each of `count` blocks over `length` tokens (the last may be partial)."""
    starts = np.arange(count, dtype=np.int64) * block
    return np.minimum(starts + block, length) - starts


def to_token_mask(sabi: Any, seq_q: int, seq_kv: int, block_shape=DEFAULT_BLOCK_SHAPE, *,
                  batch: Optional[int] = None, heads: Optional[int] = None,
                  max_elements: int = TOKEN_MASK_MAX_ELEMENTS) -> np.ndarray:
    """Boolean [B, N, Sq, Skv]: True where (query, key) lies in a selected tile (allowed).

    For tests and small problems: raises ValueError when the mask would exceed `max_elements`.
    `batch` / `heads` materialise broadcast dims; by default sabi's own dims are kept.
    """
    blocks = to_block_mask(sabi, seq_q, seq_kv, block_shape)
    bs, ns = blocks.shape[:2]
    b, n = batch or bs, heads or ns
    size = b * n * seq_q * seq_kv
    if size > max_elements:
        raise ValueError(
            f"a token mask [{b}, {n}, {seq_q}, {seq_kv}] has {size} elements > "
            f"max_elements={max_elements}; use to_block_mask or pass a larger max_elements")
    bq, bkv = check_block_shape(block_shape)
    row_block = np.arange(seq_q) // bq
    col_block = np.arange(seq_kv) // bkv
    tokens = blocks[:, :, row_block][:, :, :, col_block]
    return np.ascontiguousarray(np.broadcast_to(tokens, (b, n, seq_q, seq_kv)))

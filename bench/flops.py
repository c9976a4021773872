"""What a sabi selects, counted once: tiles, token pairs, FLOPs and the sparsity actually built.

The bench has one FLOP formula, used for every competitor that skips tiles:

    FLOPs = 4 * D * (selected, in-bounds token pairs), summed over batch and heads

(2*D for Q*K^T and 2*D for P*V per (query, key) pair; the softmax is not counted, as in
FlashAttention's benches). A pair is selected when its key block is listed in its query block's
sabi row and the token mask allows it (sparse_mode 3, causal: key j <= query i + Skv - Sq);
in-bounds means inside [0, Sq) x [0, Skv), so partial edge tiles count only their real rows and
columns. Dense attention is the same formula with every tile selected and no mask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from blitz_acl import limits

NO_BLOCK = limits.SABI_PAD  # sabi padding: "no key block here" (the spec's value)
FLOPS_PER_PAIR_PER_DIM = 4  # 2 for the Q*K^T multiply-add, 2 for P*V


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def block_masks(sabi: np.ndarray, seq_kv: int, block_kv: int) -> np.ndarray:
    """sabi [Bs, Ns, R, W] uint16 -> bool [Bs, Ns, R, C]: True where the tile is selected.

    Padding (0xFFFF) and indices >= C are ignored here (validation rejects the latter).
    """
    sabi = np.asarray(sabi)
    if sabi.ndim == 3:  # [Ns, R, W] means Bs = 1, as the API accepts
        sabi = sabi[None]
    n_kv_blocks = ceil_div(seq_kv, block_kv)
    bs, ns, rows, _ = sabi.shape
    masks = np.zeros((bs, ns, rows, n_kv_blocks + 1), dtype=bool)
    index = sabi.astype(np.int64)
    index[(index >= n_kv_blocks)] = n_kv_blocks  # padding and strays land in a spare column
    b, h, r, _ = np.indices(index.shape, sparse=True)
    masks[b, h, r, index] = True
    return masks[..., :n_kv_blocks]


def _extents(length: int, block: int, count: int) -> np.ndarray:
    """In-bounds size of each of `count` blocks of `block` elements over `length` elements."""
    starts = np.arange(count, dtype=np.int64) * block
    return np.clip(length - starts, 0, block)


@dataclass(frozen=True)
class Selection:
    """Counts for one sabi over the whole problem (batch and heads, broadcasts expanded)."""

    selected_tiles: int
    total_tiles: int
    selected_pairs: int
    total_pairs: int

    @property
    def measured_sparsity(self) -> float:
        """Share of in-bounds token pairs skipped (1 - density), over batch and heads."""
        return 1.0 - self.selected_pairs / self.total_pairs if self.total_pairs else 0.0

    @property
    def tile_sparsity(self) -> float:
        return 1.0 - self.selected_tiles / self.total_tiles if self.total_tiles else 0.0


def tile_pairs(seq_q: int, seq_kv: int, block_shape, causal_offset: Optional[int] = None) -> np.ndarray:
    """int64 [R, C]: the (query, key) pairs each tile contributes if selected.

    Without a token mask that is rows-in-bounds x cols-in-bounds; with the causal mask of
    offset o, query i counts keys j < min(i + o + 1, tile end) in the tile.
    """
    bq, bkv = block_shape
    rows, cols = ceil_div(seq_q, bq), ceil_div(seq_kv, bkv)
    row_len, col_len = _extents(seq_q, bq, rows), _extents(seq_kv, bkv, cols)
    if causal_offset is None:
        return np.outer(row_len, col_len)
    col_start = np.arange(cols, dtype=np.int64) * bkv
    counts = np.empty((rows, cols), dtype=np.int64)
    for r in range(rows):  # one query block at a time keeps memory at bq x C
        query = np.arange(r * bq, r * bq + row_len[r], dtype=np.int64)
        allowed = np.clip(query[:, None] + causal_offset + 1 - col_start[None, :], 0, col_len[None, :])
        counts[r] = allowed.sum(axis=0)
    return counts


def count_selection(
    sabi, batch: int, heads: int, seq_q: int, seq_kv: int, block_shape,
    causal_offset: Optional[int] = None,
) -> Selection:
    """Count selected tiles and token pairs of `sabi` (None = dense) for [B, N, Sq, Skv]."""
    bq, bkv = block_shape
    rows, cols = ceil_div(seq_q, bq), ceil_div(seq_kv, bkv)
    total_tiles = batch * heads * rows * cols
    total_pairs = batch * heads * seq_q * seq_kv
    pairs_per_tile = tile_pairs(seq_q, seq_kv, block_shape, causal_offset)
    if sabi is None:
        masks = np.ones((1, 1, rows, cols), dtype=bool)
    else:
        masks = block_masks(sabi, seq_kv, bkv)[:, :, :rows]
    # A size-1 batch or head dim of sabi broadcasts: it counts once per expanded entry.
    repeat = (batch // masks.shape[0]) * (heads // masks.shape[1])
    pairs = np.einsum("bhrc,rc->", masks.astype(np.int64), pairs_per_tile)
    return Selection(
        selected_tiles=int(masks.sum()) * repeat,
        total_tiles=total_tiles,
        selected_pairs=int(pairs) * repeat,
        total_pairs=total_pairs,
    )


def attention_flops(pairs: int, head_dim: int) -> int:
    """The bench's one FLOP formula: 4 * D * (selected, in-bounds token pairs)."""
    return FLOPS_PER_PAIR_PER_DIM * head_dim * pairs


def tflops_per_s(flops: int, latency_us: float) -> float:
    return flops / (latency_us * 1e-6) / 1e12 if latency_us > 0 else float("nan")

"""Statistics of a sabi: tiles and tokens selected, per-row counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .format import DEFAULT_BLOCK_SHAPE, PAD, block_counts, check_block_shape, normalize, validate
from .masks import _tile_extents

# --------------------------------------------------------------------------------- statistics


def row_counts(sabi: Any) -> np.ndarray:
    """int64 [Bs, Ns, R]: blocks listed per row (PAD excluded)."""
    return (normalize(sabi) != PAD).sum(axis=-1).astype(np.int64)


def selected_tiles(sabi: Any, batch: Optional[int] = None, heads: Optional[int] = None) -> int:
    """Tiles computed in total; broadcast dims count `batch` / `heads` times when given."""
    s = normalize(sabi)
    total = int((s != PAD).sum())
    if batch is not None and s.shape[0] == 1:
        total *= batch
    if heads is not None and s.shape[1] == 1:
        total *= heads
    return total


def density(sabi: Any, seq_q: int, seq_kv: int, block_shape=DEFAULT_BLOCK_SHAPE) -> float:
    """Share of the R x C tiles selected, averaged over sabi's (b, h); 1 - the original's sparsity."""
    s = validate(sabi, *normalize(sabi).shape[:2], seq_q, seq_kv, block_shape)
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    total = s.shape[0] * s.shape[1] * rows * cols
    return float((s != PAD).sum()) / total if total else 0.0


def token_density(sabi: Any, seq_q: int, seq_kv: int, block_shape=DEFAULT_BLOCK_SHAPE) -> float:
    """Share of the Sq x Skv (query, key) pairs inside selected tiles (partial tails weighted)."""
    s = validate(sabi, *normalize(sabi).shape[:2], seq_q, seq_kv, block_shape)
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    bq, bkv = check_block_shape(block_shape)
    total = s.shape[0] * s.shape[1] * seq_q * seq_kv
    if total == 0:
        return 0.0
    row_tokens = _tile_extents(seq_q, bq, rows)
    col_tokens = np.append(_tile_extents(seq_kv, bkv, cols), 0)  # PAD -> the zero at index C
    per_entry = col_tokens[np.where(s == PAD, cols, s)]
    covered = (per_entry.sum(axis=-1) * row_tokens).sum()
    return float(covered) / total


@dataclass(frozen=True)
class SabiStats:
    selected_tiles: int  # over sabi's own (Bs, Ns)
    total_tiles: int  # Bs * Ns * R * C
    density: float  # selected_tiles / total_tiles
    token_density: float  # share of (query, key) pairs covered
    min_row: int  # fewest blocks in a row
    max_row: int
    mean_row: float
    empty_rows: int  # rows listing no block (their outputs are zeros)


def stats(sabi: Any, seq_q: int, seq_kv: int, block_shape=DEFAULT_BLOCK_SHAPE) -> SabiStats:
    s = validate(sabi, *normalize(sabi).shape[:2], seq_q, seq_kv, block_shape)
    counts = row_counts(s)
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    has_rows = counts.size > 0
    return SabiStats(
        selected_tiles=int(counts.sum()),
        total_tiles=s.shape[0] * s.shape[1] * rows * cols,
        density=density(s, seq_q, seq_kv, block_shape),
        token_density=token_density(s, seq_q, seq_kv, block_shape),
        min_row=int(counts.min()) if has_rows else 0,
        max_row=int(counts.max()) if has_rows else 0,
        mean_row=float(counts.mean()) if has_rows else 0.0,
        empty_rows=int((counts == 0).sum()),
    )

"""Seeded sabi pattern builders: dense, random, the original benchmark's frame, band, causal."""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .format import DEFAULT_BLOCK_SHAPE, PAD, block_counts, check_block_shape
from .masks import from_block_mask

# The original benchmark's "frame" pattern (blocks_optimized_batched, CANN_FACTS.md): these
# query-block rows and the last one are dense; every other row keeps this many leading key
# blocks and the last key block.
FRAME_DENSE_ROWS = 29
FRAME_KEPT_PREFIX = 8


# --------------------------------------------------------------------------- pattern builders


def _check_sparsity(sparsity: float) -> float:
    s = float(sparsity)
    if not 0.0 <= s <= 1.0:
        raise ValueError(f"sparsity must lie in [0, 1], got {sparsity!r}")
    return s


def _kept_blocks(cols: int, sparsity: float) -> int:
    """Blocks per row at `sparsity`: round(C * (1 - s)) clamped to [1, C], as the original.

    Python's round() halves to even, like the original's; np.round does the same.
    """
    return max(1, min(int(round(cols * (1.0 - sparsity))), cols))


def _head_count(heads: int, shared_heads: bool) -> int:
    return 1 if shared_heads else heads


def dense_pattern(batch: int, heads: int, seq_q: int, seq_kv: int, *,
                  block_shape=DEFAULT_BLOCK_SHAPE, shared_heads: bool = False) -> np.ndarray:
    """Every key block in every row (the same result as sabi=None)."""
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    n = _head_count(heads, shared_heads)
    row = np.arange(cols, dtype=np.uint16)
    return np.ascontiguousarray(np.broadcast_to(row, (batch, n, rows, cols)))


def random_pattern(batch: int, heads: int, seq_q: int, seq_kv: int, sparsity: float, *,
                   block_shape=DEFAULT_BLOCK_SHAPE, seed: int = 1234,
                   shared_heads: bool = False, shuffle: bool = False) -> np.ndarray:
    """Each row keeps round(C * (1 - sparsity)) (at least 1) distinct random key blocks.

    Width C; rows sorted and right-padded with PAD, or with `shuffle` the entries and PADs in
    random positions (exercises "-1 anywhere"). Head h of batch b draws from numpy's
    default_rng(seed + b + h) (seed + b when shared).
    """
    sparsity = _check_sparsity(sparsity)
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    n = _head_count(heads, shared_heads)
    out = np.full((batch, n, rows, cols), PAD, dtype=np.uint16)
    if rows == 0 or cols == 0:
        return out
    kept = _kept_blocks(cols, sparsity)
    for b in range(batch):
        for h in range(n):
            rng = np.random.default_rng(seed + b + h)
            picks = np.sort(rng.random((rows, cols)).argsort(axis=-1)[:, :kept], axis=-1)
            out[b, h, :, :kept] = picks
            if shuffle:
                out[b, h] = rng.permuted(out[b, h], axis=-1)
    return out


def _frame_extra(candidates: int, need: int, generator) -> np.ndarray:
    """Positions (into the candidate list) of `need` extra blocks, drawn as the original does."""
    if isinstance(generator, np.random.Generator):
        return generator.permutation(candidates)[:need]
    import torch

    return torch.randperm(candidates, generator=generator)[:need].numpy()


def _frame_generator(seed: int, rng: str):
    if rng == "numpy":
        return np.random.default_rng(seed)
    import torch

    return torch.Generator(device="cpu").manual_seed(seed)


def frame_pattern(batch: int, heads: int, seq_q: int, seq_kv: int, sparsity: float, *,
                  block_shape=DEFAULT_BLOCK_SHAPE, seed: int = 1234, shared_heads: bool = False,
                  rng: str = "auto") -> np.ndarray:
    """The original benchmark's "frame" pattern (blocks_optimized_batched), width C.

    kept = max(round(C * (1 - sparsity)) clamped to [1, C], |forced|); query-block rows 0..28
    and the last row are dense; every other row keeps key blocks 0..7 and the last key block
    (the forced set) plus kept - |forced| random others, sorted, right-padded with PAD. Head h
    of batch b is seeded with seed + b + h. With rng="torch" the random blocks are the
    original's bit for bit (torch.randperm on a CPU generator, one draw per non-dense row);
    rng="numpy" follows the same rule with numpy's generator; "auto" picks torch when it is
    installed.
    """
    sparsity = _check_sparsity(sparsity)
    if rng not in ("auto", "torch", "numpy"):
        raise ValueError(f"rng must be 'auto', 'torch' or 'numpy', got {rng!r}")
    if rng == "auto":
        try:
            import torch  # noqa: F401

            rng = "torch"
        except ImportError:
            rng = "numpy"
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    n = _head_count(heads, shared_heads)
    out = np.full((batch, n, rows, cols), PAD, dtype=np.uint16)
    if rows == 0 or cols == 0:
        return out
    forced = sorted(set(range(min(FRAME_KEPT_PREFIX, cols))) | {cols - 1})
    candidates = np.array([c for c in range(cols) if c not in forced], dtype=np.int64)
    kept = max(_kept_blocks(cols, sparsity), len(forced))
    need = kept - len(forced)
    dense_row = np.arange(cols, dtype=np.uint16)
    for b in range(batch):
        for h in range(n):
            generator = _frame_generator(seed + b + h, rng)
            for r in range(rows):
                if r < FRAME_DENSE_ROWS or r == rows - 1:
                    out[b, h, r] = dense_row
                    continue
                chosen = forced
                if need > 0:
                    extra = candidates[_frame_extra(len(candidates), need, generator)]
                    chosen = np.sort(np.concatenate([forced, extra]))
                out[b, h, r, :len(chosen)] = chosen
    return out


def _query_block_diagonal(seq_q: int, seq_kv: int, block_shape) -> Tuple[np.ndarray, np.ndarray]:
    """Per query block, the first and last key position on the diagonal, anchored bottom-right
    (key i + Skv - Sq for query i, as sparse modes 3 and 4)."""
    bq, _ = check_block_shape(block_shape)
    rows = block_counts(seq_q, seq_kv, block_shape)[0]
    first = np.arange(rows, dtype=np.int64) * bq
    last = np.minimum(first + bq, seq_q) - 1
    offset = seq_kv - seq_q
    return first + offset, last + offset


def band_pattern(batch: int, heads: int, seq_q: int, seq_kv: int, width_blocks: int, *,
                 block_shape=DEFAULT_BLOCK_SHAPE, shared_heads: bool = False) -> np.ndarray:
    """Key blocks within `width_blocks` blocks of the diagonal on either side.

    Query block i covers diagonal keys [first_i, last_i] (anchored bottom-right: key
    i + Skv - Sq for query i); it keeps key blocks from block(first_i) - width_blocks to
    block(last_i) + width_blocks, clipped to the matrix. Width = the widest row.
    """
    if width_blocks < 0:
        raise ValueError(f"width_blocks must be >= 0, got {width_blocks}")
    _, bkv = check_block_shape(block_shape)
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    first, last = _query_block_diagonal(seq_q, seq_kv, block_shape)
    lo = np.floor_divide(first, bkv) - width_blocks
    hi = np.floor_divide(last, bkv) + width_blocks
    col = np.arange(cols)
    mask = (col >= lo[:, None]) & (col <= hi[:, None])
    return _broadcast_rows(mask, batch, _head_count(heads, shared_heads))


def causal_pattern(batch: int, heads: int, seq_q: int, seq_kv: int, *,
                   block_shape=DEFAULT_BLOCK_SHAPE, shared_heads: bool = False,
                   top_left: bool = False) -> np.ndarray:
    """The lower triangle of blocks: every key block holding a key some row of the query block
    may see causally. Anchored bottom-right (sparse_mode 3) unless `top_left` (sparse_mode 2);
    the two agree when Sq == Skv. Width = the widest row."""
    _, bkv = check_block_shape(block_shape)
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    _, last = _query_block_diagonal(seq_q, seq_kv if not top_left else seq_q, block_shape)
    col_first = np.arange(cols) * bkv
    mask = col_first[None, :] <= last[:, None]
    return _broadcast_rows(mask, batch, _head_count(heads, shared_heads))


def _broadcast_rows(mask: np.ndarray, batch: int, heads: int) -> np.ndarray:
    """One [R, C] block mask as a sabi [batch, heads, R, W]."""
    one = from_block_mask(mask[None, None])
    return np.ascontiguousarray(np.broadcast_to(one, (batch, heads) + one.shape[2:]))

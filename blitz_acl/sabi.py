"""sabi (sparse attention block indices): which key/value tiles each query block computes.

The attention matrix [Sq, Skv] is cut into tiles of bq x bkv tokens (128 x 512 by default,
`block_shape`); R = ceil(Sq / bq) query blocks, C = ceil(Skv / bkv) key blocks, the last of
each possibly partial. sabi is an integer array [Bs, Ns, R, W] with W <= C, Bs in {1, B},
Ns in {1, N} (a size-1 dim broadcasts; a 3-d [Ns, R, W] sabi means Bs = 1). Row
`sabi[b, h, i, :]` lists the key blocks query block i attends to, in any order; PAD (0xFFFF,
-1 as a signed integer) anywhere in a row means "no block here". An index >= C or an index
twice in one row is invalid. Example, Sq = 384, Skv = 1536 (R = 3, C = 3), one head:

    sabi[0, 0] = [[0, -1],      tiles computed:   1 0 0
                  [1,  0],                        1 1 0
                  [2, -1]]                        0 0 1

Public functions:

- geometry: `block_counts`, `sabi_shape`, `check_block_shape`;
- checks: `normalize` (any accepted dtype/kind -> contiguous numpy uint16 [Bs, Ns, R, W]),
  `validate` (shape, broadcast dims, every entry; errors name the first bad (b, h, row, col));
- conversions: `expand` (materialise broadcast dims), `compact` (rows sorted, PAD at the
  right, as the original NPU kernel wants), `to_block_mask` / `from_block_mask` (boolean
  [B, N, R, C]), `to_token_mask` (boolean [B, N, Sq, Skv], for tests, size-guarded),
  `to_flex_block_mask` / `from_flex_block_mask` (torch FlexAttention's BlockMask);
- statistics: `row_counts`, `selected_tiles`, `density`, `token_density`, `stats` (SabiStats);
- seeded pattern builders, each returning uint16 [B, N, R, W] (or [B, 1, R, W] with
  `shared_heads=True`, one pattern for all heads): `dense_pattern`, `random_pattern`,
  `frame_pattern` (the original benchmark's pattern), `band_pattern`, `causal_pattern`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from . import arrays, limits

# "No block here" as stored (uint16); callers may write it as -1 in a signed dtype.
PAD = limits.SABI_PAD
# The largest index a uint16 sabi can hold (PAD is reserved).
MAX_INDEX = PAD - 1
DEFAULT_BLOCK_SHAPE = (128, 512)

_SIGNED_DTYPES = ("int16", "int32", "int64")
_ACCEPTED_DTYPES = ("uint16",) + _SIGNED_DTYPES

# The original benchmark's "frame" pattern (blocks_optimized_batched, CANN_FACTS.md): these
# query-block rows and the last one are dense; every other row keeps this many leading key
# blocks and the last key block.
FRAME_DENSE_ROWS = 29
FRAME_KEPT_PREFIX = 8

# Largest token mask `to_token_mask` builds unless told otherwise (256 Mi booleans).
TOKEN_MASK_MAX_ELEMENTS = 1 << 28


# ----------------------------------------------------------------------------------- geometry


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def check_block_shape(block_shape: Any) -> Tuple[int, int]:
    """(bq, bkv) as two positive Python ints, or ValueError/TypeError naming `block_shape`."""
    try:
        bq, bkv = block_shape
    except (TypeError, ValueError):
        raise TypeError(f"block_shape must be a pair (bq, bkv), got {block_shape!r}") from None
    for v in (bq, bkv):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"block_shape must hold two ints, got {block_shape!r}")
        if v <= 0:
            raise ValueError(f"block_shape must hold two positive ints, got {block_shape!r}")
    return int(bq), int(bkv)


def block_counts(seq_q: int, seq_kv: int, block_shape=DEFAULT_BLOCK_SHAPE) -> Tuple[int, int]:
    """(R, C): the number of query blocks and key blocks, tails included."""
    bq, bkv = check_block_shape(block_shape)
    return _ceil_div(seq_q, bq), _ceil_div(seq_kv, bkv)


def sabi_shape(batch: int, heads: int, seq_q: int, seq_kv: int,
               block_shape=DEFAULT_BLOCK_SHAPE, width: Optional[int] = None) -> Tuple[int, ...]:
    """The full (not broadcast) sabi shape [B, N, R, W]; W defaults to C (every block fits)."""
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    return (batch, heads, rows, cols if width is None else width)


# ------------------------------------------------------------------------------------- checks


def _where(index) -> str:
    b, h, row, col = (int(i) for i in index)
    return f"sabi[b={b}, h={h}, row={row}, col={col}]"


def normalize(sabi: Any, name: str = "sabi") -> np.ndarray:
    """sabi as a C-contiguous numpy uint16 [Bs, Ns, R, W] array with PAD = 0xFFFF.

    Accepts numpy arrays, torch tensors (any device; copied to the host) and nested lists of
    uint16 (0xFFFF = no block) or int16/int32/int64 (-1 = no block). Floats, bools, other
    negative values and indices above 65534 are rejected.
    """
    if isinstance(sabi, (list, tuple)):
        sabi = np.asarray(sabi)
    try:
        arrays.kind(sabi)
    except TypeError:
        raise TypeError(
            f"{name} must be a numpy array, a torch tensor or a nested list of ints, "
            f"got {type(sabi).__name__}") from None
    dtype = arrays.dtype_name(sabi)
    if dtype not in _ACCEPTED_DTYPES:
        raise TypeError(
            f"{name} has dtype {dtype}; expected uint16 (0xFFFF = no block) or "
            f"int16/int32/int64 (-1 = no block)")
    a = arrays.to_numpy(sabi)
    if a.ndim == 3:
        a = a[None]  # [Ns, R, W] means Bs = 1, as the original accepts
    if a.ndim != 4:
        raise ValueError(
            f"{name} must be 4-d [Bs, Ns, R, W] or 3-d [Ns, R, W], got shape {tuple(a.shape)}")
    if dtype == "uint16":
        return np.ascontiguousarray(a)
    wide = a.astype(np.int64, copy=False)
    bad = (wide < -1) | (wide > MAX_INDEX)
    if bad.any():
        where = np.argwhere(bad)[0]
        raise ValueError(
            f"{_where(where)} = {int(wide[tuple(where)])}: expected -1 (no block) or a key "
            f"block index in 0..{MAX_INDEX}")
    out = wide.astype(np.uint16)  # -1 wraps to 0xFFFF = PAD
    return np.ascontiguousarray(out)


def _repeat_flags(s: np.ndarray) -> np.ndarray:
    """True where an entry repeats an earlier (non-PAD) entry of the same row."""
    if s.shape[-1] < 2:
        return np.zeros(s.shape, dtype=bool)
    order = np.argsort(s, axis=-1, kind="stable")  # equal values keep their column order
    sorted_ = np.take_along_axis(s, order, axis=-1)
    dup_sorted = np.zeros(s.shape, dtype=bool)
    dup_sorted[..., 1:] = (sorted_[..., 1:] == sorted_[..., :-1]) & (sorted_[..., 1:] != PAD)
    flags = np.zeros(s.shape, dtype=bool)
    np.put_along_axis(flags, order, dup_sorted, axis=-1)
    return flags


def validate(sabi: Any, batch: int, heads: int, seq_q: int, seq_kv: int,
             block_shape=DEFAULT_BLOCK_SHAPE, *, check_entries: bool = True,
             name: str = "sabi") -> np.ndarray:
    """Normalise sabi and check it against a call of shape (batch, heads, seq_q, seq_kv).

    Returns the uint16 [Bs, Ns, R, W] array. Raises ValueError naming the bad dim, or the first
    bad entry (b, h, row, col) in row-major order: an index >= C or an index repeated in a row.
    `check_entries=False` checks dtype and shape only.
    """
    s = normalize(sabi, name)
    rows, cols = block_counts(seq_q, seq_kv, block_shape)
    bq, bkv = check_block_shape(block_shape)
    bs, ns, r, w = s.shape
    expected = (f"expected [1 or B={batch}, 1 or N={heads}, R=ceil({seq_q}/{bq})={rows}, "
                f"W<=ceil({seq_kv}/{bkv})={cols}]")
    if bs not in (1, batch):
        raise ValueError(f"{name} has shape {s.shape}: batch dim {bs} does not broadcast; {expected}")
    if ns not in (1, heads):
        raise ValueError(f"{name} has shape {s.shape}: head dim {ns} does not broadcast; {expected}")
    if r != rows:
        raise ValueError(f"{name} has shape {s.shape}: {r} query-block rows; {expected}")
    if w > cols:
        raise ValueError(f"{name} has shape {s.shape}: rows of width {w} > C={cols}; {expected}")
    if not check_entries:
        return s
    out_of_range = (s != PAD) & (s >= cols)
    repeated = _repeat_flags(s)
    bad = out_of_range | repeated
    if bad.any():
        where = tuple(np.argwhere(bad)[0])
        value = int(s[where])
        if out_of_range[where]:
            raise ValueError(
                f"{_where(where)} = {value}: key block index out of range; seq_kv={seq_kv} with "
                f"bkv={bkv} has C={cols} key blocks (valid: 0..{cols - 1}, or 0xFFFF / -1 for none)")
        raise ValueError(
            f"{_where(where)} = {value}: key block {value} appears twice in this row; "
            f"each row must list a block at most once")
    return s


# -------------------------------------------------------------------------------- conversions


def expand(sabi: Any, batch: int, heads: int) -> np.ndarray:
    """sabi with its broadcast dims materialised: uint16 [batch, heads, R, W]."""
    s = normalize(sabi)
    if s.shape[0] not in (1, batch) or s.shape[1] not in (1, heads):
        raise ValueError(f"sabi of shape {s.shape} does not broadcast to batch={batch}, heads={heads}")
    return np.ascontiguousarray(np.broadcast_to(s, (batch, heads) + s.shape[2:]))


def compact(sabi: Any) -> np.ndarray:
    """Rows sorted ascending with PAD at the right end (the original kernel's requirement).

    PAD = 0xFFFF is the largest uint16, so sorting a row moves it to the end on its own.
    """
    return np.ascontiguousarray(np.sort(normalize(sabi), axis=-1))


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


def to_flex_block_mask(sabi: Any, seq_q: int, seq_kv: int, block_shape=DEFAULT_BLOCK_SHAPE, *,
                       mask_mod=None, sabi_mask_mod: bool = True, device: str = "cpu"):
    """torch FlexAttention BlockMask computing the same tiles (BLOCK_SIZE = block_shape).

    Each selected tile is a partial block of the BlockMask. FlexAttention's block lists only
    let the compiled kernel skip tiles; its eager path applies mask_mod alone. So by default
    the mask_mod also encodes sabi (allowed iff the pair's tile is selected) and eager and
    compiled FlexAttention both compute exactly sabi's attention; `mask_mod` (a token rule such
    as causal) is ANDed with it. `sabi_mask_mod=False` drops that lookup (mask_mod alone, or
    none): right only for the compiled kernel, and a little faster there. (Marking tiles as
    full blocks would skip mask_mod altogether, but torch 2.13's CPU inductor template fails to
    compile a BlockMask without partial blocks.) Needs torch.
    """
    import torch
    from torch.nn.attention.flex_attention import BlockMask, and_masks

    bq, bkv = check_block_shape(block_shape)
    s = compact(validate(sabi, *normalize(sabi).shape[:2], seq_q, seq_kv, block_shape))
    cols = block_counts(seq_q, seq_kv, block_shape)[1]
    counts = torch.from_numpy((s != PAD).sum(axis=-1).astype(np.int32)).to(device)
    # FlexAttention wants kv_indices [B, H, R, C]; entries past the block count are ignored.
    indices = np.zeros(s.shape[:3] + (cols,), dtype=np.int32)
    width = min(s.shape[-1], cols)
    indices[..., :width] = np.where(s[..., :width] == PAD, 0, s[..., :width])
    mods = [] if mask_mod is None else [mask_mod]
    if sabi_mask_mod:
        selected = torch.from_numpy(to_block_mask(s, seq_q, seq_kv, block_shape)).to(device)
        b_step, h_step = int(s.shape[0] > 1), int(s.shape[1] > 1)  # size-1 dims broadcast

        def sabi_mod(b, h, q_idx, kv_idx):
            return selected[b * b_step, h * h_step, q_idx // bq, kv_idx // bkv]

        mods.insert(0, sabi_mod)
    return BlockMask.from_kv_blocks(
        counts, torch.from_numpy(indices).to(device), BLOCK_SIZE=(bq, bkv),
        mask_mod=and_masks(*mods) if len(mods) > 1 else (mods[0] if mods else None),
        seq_lengths=(seq_q, seq_kv))


def from_flex_block_mask(block_mask, *, block_shape=None, width: Optional[int] = None) -> np.ndarray:
    """sabi uint16 [B, H, R, W] listing every block a FlexAttention BlockMask visits.

    Partial and full blocks both count. When `block_shape` is given it must equal the mask's
    BLOCK_SIZE (a sabi is meaningless without its tile size).
    """
    size = tuple(int(v) for v in block_mask.BLOCK_SIZE)
    if block_shape is not None and check_block_shape(block_shape) != size:
        raise ValueError(f"block_mask has BLOCK_SIZE={size}, expected block_shape={tuple(block_shape)}")
    seq_q, seq_kv = (int(v) for v in block_mask.seq_lengths)
    rows, cols = block_counts(seq_q, seq_kv, size)
    kv_num = block_mask.kv_num_blocks.detach().cpu().numpy()
    mask = np.zeros(kv_num.shape + (cols,), dtype=bool)
    pairs = [(block_mask.kv_num_blocks, block_mask.kv_indices)]
    if block_mask.full_kv_num_blocks is not None:
        pairs.append((block_mask.full_kv_num_blocks, block_mask.full_kv_indices))
    for num_t, idx_t in pairs:
        num = num_t.detach().cpu().numpy()[..., :rows]
        idx = idx_t.detach().cpu().numpy()[..., :rows, :].astype(np.int64)
        valid = np.arange(idx.shape[-1]) < num[..., None]
        mask[..., :rows, :] |= _lists_to_mask(idx, valid, cols)
    return from_block_mask(mask[..., :rows, :], width=width)


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

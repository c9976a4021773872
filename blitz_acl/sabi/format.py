"""The sabi format contract: constants, block geometry, normalisation, validation, broadcast
expansion and the one normal form of rows (`compact`). blitz_acl.sabi describes the format."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .. import arrays, limits

# "No block here" as stored (uint16); callers may write it as -1 in a signed dtype.
PAD = limits.SABI_PAD
# The largest index a uint16 sabi can hold (PAD is reserved).
MAX_INDEX = PAD - 1
DEFAULT_BLOCK_SHAPE = limits.DEFAULT_BLOCK_SHAPE  # blitz_sparse_attention's, from the spec

_SIGNED_DTYPES = ("int16", "int32", "int64")
_ACCEPTED_DTYPES = ("uint16",) + _SIGNED_DTYPES


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
            f"{name} has dtype {dtype}; expected uint16 (0x{PAD:X} = no block) or "
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
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        value = int(s[where])
        if out_of_range[where]:
            raise ValueError(limits.refuse_sabi_index(*where, value, seq_kv, bkv, cols))
        raise ValueError(limits.refuse_sabi_repeat(*where, value))
    return s


def expand(sabi: Any, batch: int, heads: int) -> np.ndarray:
    """sabi with its broadcast dims materialised: uint16 [batch, heads, R, W]."""
    s = normalize(sabi)
    if s.shape[0] not in (1, batch) or s.shape[1] not in (1, heads):
        raise ValueError(f"sabi of shape {s.shape} does not broadcast to batch={batch}, heads={heads}")
    return np.ascontiguousarray(np.broadcast_to(s, (batch, heads) + s.shape[2:]))


def compact(sabi: Any, kv_blocks: Optional[int] = None) -> Optional[np.ndarray]:
    """The one normal form of sabi rows: each valid index once, sorted ascending, right-padded
    with PAD (what the original NPU kernel wants, and what conversions return). Same dims as the
    input (normalised to uint16); None stays None. With `kv_blocks`, indices >= kv_blocks are
    dropped too (rows the NPU binding passes when validate=False let them through); the
    caller's array is never modified. The binding applies it for the NPU devices only: the CPU
    device's C entry point refuses bad rows itself, which normalising first would hide (README,
    "The sabi format").

    PAD is the largest uint16, so sorting a row moves it to the end on its own; a repeated
    index would count its tile twice on the NPU, so repeats become PAD (a validated sabi has
    none, and then this is a sort).
    """
    if sabi is None:
        return None
    s = np.array(normalize(sabi), dtype=np.uint16, copy=True)
    if kv_blocks is not None:
        s[s >= kv_blocks] = PAD  # out of range (and PAD itself) -> PAD
    s.sort(axis=-1)
    if s.shape[-1] > 1:
        repeat = np.zeros(s.shape, dtype=bool)
        repeat[..., 1:] = (s[..., 1:] == s[..., :-1]) & (s[..., 1:] != PAD)
        if repeat.any():
            s[repeat] = PAD
            s.sort(axis=-1)
    return np.ascontiguousarray(s)

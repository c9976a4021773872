"""What each rank computes and sends, decided from the global sabi alone.

Every rank builds the same plan from the same arguments (the handshake checks they agree), so
no rank asks another what it needs: a ring hop that carries nothing anyone downstream reads is
simply not posted on either side, and a Ulysses exchange that feeds no selected tile is skipped
by sender and receiver alike.

A tile is *live* when sabi selects it and the sparse mode and actual lengths leave at least one
(query, key) pair of it attended; dead tiles contribute nothing, so skipping them is exact.
(An explicit atten_mask is not inspected: its tiles count as live when sabi selects them.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .. import sabi as sabi_format
from .shards import Segment, segment_length

# The widest pre/next the local calls pass: any band wider than a sequence is the same band.
_INT32_MAX = 2147483647
_UNBOUNDED = 1 << 62
# A ring hop skips a gap of unneeded key blocks only when it is at least this long.
RUN_GAP_BLOCKS = 2


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@dataclass(frozen=True)
class Geometry:
    """The global problem and how it is cut; identical on every rank."""
    batch: int
    heads: int
    kv_heads: int
    seq_q: int
    seq_kv: int
    head_dim: int
    itemsize: int
    block_shape: Tuple[int, int]
    q_segments: Tuple[Tuple[Segment, ...], ...]  # per rank, global token ranges, held order
    kv_segments: Tuple[Tuple[Segment, ...], ...]
    q_lens: Tuple[int, ...]  # per batch, global actual lengths (full when not given)
    kv_lens: Tuple[int, ...]
    lengths_given: bool
    mode: int
    pre: int
    next: int

    @property
    def world(self) -> int:
        return len(self.q_segments)

    @property
    def blocks(self) -> Tuple[int, int]:
        return sabi_format.block_counts(self.seq_q, self.seq_kv, self.block_shape)


# ------------------------------------------------------------------------------- live tiles


def live_tiles(sabi, g: Geometry) -> np.ndarray:
    """Boolean [B, N, R, C]: tiles selected by sabi (None = all) with an attended pair left."""
    rows, cols = g.blocks
    if sabi is None:
        selected = np.ones((1, 1, rows, cols), dtype=bool)
    else:
        selected = sabi_format.to_block_mask(sabi, g.seq_q, g.seq_kv, g.block_shape)
    live = np.broadcast_to(selected, (g.batch, g.heads, rows, cols)).copy()
    bq, bkv = g.block_shape
    i0 = np.arange(rows, dtype=np.int64)[:, None] * bq  # first row of each query block
    j0 = np.arange(cols, dtype=np.int64)[None, :] * bkv
    for b in range(g.batch):
        lq, lkv = g.q_lens[b], g.kv_lens[b]
        i1 = np.minimum(i0 + bq, lq) - 1  # last row inside the length
        j1 = np.minimum(j0 + bkv, lkv) - 1
        ok = (i1 >= i0) & (j1 >= j0)
        lo, hi = _diagonal_window(g, b)  # attended iff lo <= j - i <= hi
        ok &= (j0 - i1 <= hi) & (j1 - i0 >= lo)
        live[b] &= ok[None]
    return live


def _diagonal_window(g: Geometry, b: int) -> Tuple[int, int]:
    """The global mode as lo <= j - i <= hi for batch b (unbounded sides as +-2^62)."""
    o = g.kv_lens[b] - g.q_lens[b]
    if g.mode == 2:
        return -_UNBOUNDED, 0
    if g.mode == 3:
        return -_UNBOUNDED, o
    if g.mode == 4:
        return o - g.pre, o + g.next
    return -_UNBOUNDED, _UNBOUNDED


def _block_range(seg: Segment, block: int) -> Tuple[int, int]:
    """The blocks a segment covers ([x, x) for an empty one, e.g. a rank with no tokens)."""
    if seg[1] <= seg[0]:
        return 0, 0
    return seg[0] // block, _ceil_div(seg[1], block)


# ------------------------------------------------------------------------- local sub-calls


@dataclass(frozen=True)
class LocalCall:
    """One blitz_sparse_attention call on a (query segment, key range) pair, batches b0..b1-1."""
    b0: int
    b1: int
    kwargs: dict  # sabi, lengths, sparse_mode, pre/next, atten_mask for the local coordinates


def local_calls(live: np.ndarray, g: Geometry, q_seg: Segment, kv_seg: Segment,
                atten_mask=None) -> List[LocalCall]:
    """The calls computing query tokens q_seg against keys kv_seg exactly as the global call
    would (nothing when no live tile falls in the pair). Lengths become local, and a causal or
    band mode becomes the band (sparse_mode 4) it is in local coordinates."""
    bq, bkv = g.block_shape
    r0, r1 = _block_range(q_seg, bq)
    c0, c1 = _block_range(kv_seg, bkv)
    sub = live[:, :, r0:r1, c0:c1]
    if not sub.any():
        return []
    (qa, qb), (ka, kb) = q_seg, kv_seg
    lq = [int(np.clip(g.q_lens[b] - qa, 0, qb - qa)) for b in range(g.batch)]
    lkv = [int(np.clip(g.kv_lens[b] - ka, 0, kb - ka)) for b in range(g.batch)]
    band = [_local_band(g, b, qa, ka, lq[b], lkv[b]) for b in range(g.batch)]
    groups = [(0, g.batch)] if len(set(band)) <= 1 else [(b, b + 1) for b in range(g.batch)]
    calls = []
    for b0, b1 in groups:
        part = sub[b0:b1]
        if not part.any():
            continue
        kwargs = {"sabi": sabi_format.from_block_mask(part), "sparse_mode": g.mode}
        if g.lengths_given:
            kwargs["actual_seq_lengths"] = lq[b0:b1]
            kwargs["actual_seq_lengths_kv"] = lkv[b0:b1]
        if g.mode in (2, 3, 4):
            kwargs["sparse_mode"] = 4
            kwargs["pre_tokens"], kwargs["next_tokens"] = band[b0]
        elif atten_mask is not None:
            m = atten_mask[..., qa:qb, ka:kb]
            if m.ndim >= 3 and m.shape[0] > 1:
                m = m[b0:b1]
            kwargs["atten_mask"] = m.contiguous() if hasattr(m, "contiguous") else np.ascontiguousarray(m)
        calls.append(LocalCall(b0, b1, kwargs))
    return calls


def _local_band(g: Geometry, b: int, qa: int, ka: int, lq: int, lkv: int):
    """(pre, next) of sparse_mode 4 in the pair's coordinates, or None for modes 0/1.

    Global: lo <= j - i <= hi; local i' = i - qa, j' = j - ka, so lo + qa - ka <= j' - i' <=
    hi + qa - ka; local mode 4 allows o' - pre <= j' - i' <= o' + next with o' = lkv - lq.
    """
    if g.mode not in (2, 3, 4):
        return None
    lo, hi = _diagonal_window(g, b)
    o_local, shift = lkv - lq, qa - ka
    pre = _INT32_MAX if lo <= -_UNBOUNDED else o_local - (lo + shift)
    nxt = _INT32_MAX if hi >= _UNBOUNDED else (hi + shift) - o_local
    return (int(np.clip(pre, -_INT32_MAX, _INT32_MAX)), int(np.clip(nxt, -_INT32_MAX, _INT32_MAX)))


# ------------------------------------------------------------------------------- the ring


@dataclass(frozen=True)
class RingPlan:
    """Step t: rank r computes its queries against key/value shard (r - t) mod P; then passes
    on what ranks further down the ring still need of it (per segment, the runs of key blocks
    they read, see _runs), or nothing.

    held[k][t]: the segments of shard k the rank holding it at step t has (t = 0: all of it).
    compute[r][t]: rank r has a live tile at step t.
    """
    world: int
    token_bytes: int  # bytes of one key + value token over all batches and kv heads
    held: Tuple[Tuple[Tuple[Segment, ...], ...], ...]
    compute: Tuple[Tuple[bool, ...], ...]
    full_tokens: Tuple[int, ...]  # per shard

    def shard_at(self, rank: int, step: int) -> int:
        return (rank - step) % self.world

    def sent(self, rank: int, step: int) -> Tuple[Segment, ...]:
        """What rank sends to rank + 1 after step `step` (empty: no send)."""
        return self.held[self.shard_at(rank, step)][step + 1]

    def received(self, rank: int, step: int) -> Tuple[Segment, ...]:
        """What rank receives from rank - 1 for step `step` + 1."""
        return self.held[self.shard_at(rank, step + 1)][step + 1]

    def bytes_sent(self, rank: int) -> int:
        return sum(segment_length(self.sent(rank, t)) for t in range(self.world - 1)) * self.token_bytes

    def bytes_dense(self, rank: int) -> int:
        """What a ring without the sabi would send: every shard over every hop."""
        return sum(self.full_tokens[self.shard_at(rank, t)] for t in range(self.world - 1)) * self.token_bytes


def ring_plan(live: np.ndarray, g: Geometry) -> RingPlan:
    world = g.world
    bq, bkv = g.block_shape
    cols = live.shape[-1]
    per_rank_cols = []  # [r] -> bool [C]: key blocks rank r's queries read
    for segs in g.q_segments:
        rows = np.zeros(live.shape[2], dtype=bool)
        for seg in segs:
            r0, r1 = _block_range(seg, bq)
            rows[r0:r1] = True
        per_rank_cols.append(live[:, :, rows].any(axis=(0, 1, 2)) if rows.any() else np.zeros(cols, bool))
    held, compute = [], [[False] * world for _ in range(world)]
    for k, segs in enumerate(g.kv_segments):
        steps = []
        for t in range(world):
            if t == 0:
                steps.append(tuple(s for s in segs if s[1] > s[0]))
                continue
            later = np.zeros(cols, dtype=bool)
            for t2 in range(t, world):
                later |= per_rank_cols[(k + t2) % world]
            steps.append(tuple(run for seg in segs for run in _runs(seg, later, bkv)))
        held.append(tuple(steps))
        for t in range(world):
            r = (k + t) % world
            compute[r][t] = any(per_rank_cols[r][slice(*_block_range(seg, bkv))].any()
                                for seg in segs if seg[1] > seg[0])
    token_bytes = 2 * g.batch * g.kv_heads * g.head_dim * g.itemsize
    return RingPlan(world, token_bytes, tuple(held), tuple(tuple(c) for c in compute),
                    tuple(segment_length(s) for s in g.kv_segments))


def _runs(seg: Segment, needed_cols: np.ndarray, bkv: int) -> List[Segment]:
    """The token ranges of seg's needed key blocks: runs of needed blocks, two runs merged when
    fewer than RUN_GAP_BLOCKS unneeded blocks separate them (each run is one more message
    piece and one more kernel call per query segment, so tiny gaps are sent, not skipped).
    Merging only ever joins, so a later step's runs lie inside an earlier step's."""
    c0, c1 = _block_range(seg, bkv)
    hits = np.flatnonzero(needed_cols[c0:c1]) + c0
    runs: List[List[int]] = []
    for c in hits.tolist():
        if runs and c - runs[-1][1] - 1 < RUN_GAP_BLOCKS:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return [(a * bkv, min((b + 1) * bkv, seg[1])) for a, b in runs]


# ---------------------------------------------------------------------------- Ulysses


@dataclass(frozen=True)
class UlyssesPlan:
    """Rank r computes query heads heads[r] (and kv heads kv_heads[r]) over the whole sequence.

    q_needed[r][p] / kv_needed[r][p]: rank r reads rank p's query / key-value shard (some live
    tile of r's heads falls in it); outputs go back exactly where queries came from.
    """
    world: int
    heads: Tuple[Tuple[int, int], ...]
    kv_heads: Tuple[Tuple[int, int], ...]
    q_needed: Tuple[Tuple[bool, ...], ...]
    kv_needed: Tuple[Tuple[bool, ...], ...]
    compute: Tuple[bool, ...]
    q_bytes: Tuple[Tuple[int, ...], ...]  # [r][p]: rank p's query shard, r's heads
    kv_bytes: Tuple[Tuple[int, ...], ...]
    out_bytes: Tuple[Tuple[int, ...], ...]  # [r][p]: r's output (and lse) back to p

    def bytes_sent(self, rank: int) -> int:
        p, total = rank, 0
        for r in range(self.world):
            if r == p:
                continue
            total += self.q_bytes[r][p] * self.q_needed[r][p] + self.kv_bytes[r][p] * self.kv_needed[r][p]
            total += self.out_bytes[p][r] * self.q_needed[p][r]  # p returns r's output rows
        return total

    def bytes_dense(self, rank: int) -> int:
        p = rank
        return sum(self.q_bytes[r][p] + self.kv_bytes[r][p] + self.out_bytes[p][r]
                   for r in range(self.world) if r != p)


def ulysses_heads(g: Geometry):
    """Per rank, its query-head range and the kv-head range they read; ValueError when the
    heads do not split so (N % P, and GQA groups either inside one rank or whole per rank)."""
    world, group = g.world, g.heads // g.kv_heads
    if g.heads % world:
        raise ValueError(f"scheme='ulysses' splits the {g.heads} query heads over {world} ranks: "
                         f"num_heads must be a multiple of the group size (use scheme='ring')")
    per = g.heads // world
    if per % group and group % per:
        raise ValueError(f"scheme='ulysses' with {g.heads} heads over {g.kv_heads} kv heads gives each "
                         f"of {world} ranks {per} heads, which neither hold whole GQA groups of "
                         f"{group} nor fit in one (use scheme='ring')")
    heads = tuple((r * per, (r + 1) * per) for r in range(world))
    kv = tuple((h0 // group, (h1 - 1) // group + 1) for h0, h1 in heads)
    return heads, kv


def ulysses_plan(live: np.ndarray, g: Geometry, return_lse: bool) -> UlyssesPlan:
    world = g.world
    heads, kv = ulysses_heads(g)
    bq, bkv = g.block_shape
    q_needed = [[False] * world for _ in range(world)]
    kv_needed = [[False] * world for _ in range(world)]
    q_bytes = [[0] * world for _ in range(world)]
    kv_bytes = [[0] * world for _ in range(world)]
    out_bytes = [[0] * world for _ in range(world)]
    for r, (h0, h1) in enumerate(heads):
        mine = live[:, h0:h1]
        for p in range(world):
            qs, ks = g.q_segments[p], g.kv_segments[p]
            q_needed[r][p] = any(mine[:, :, slice(*_block_range(s, bq))].any() for s in qs if s[1] > s[0])
            kv_needed[r][p] = any(mine[:, :, :, slice(*_block_range(s, bkv))].any() for s in ks if s[1] > s[0])
            lq, lk = segment_length(qs), segment_length(ks)
            q_bytes[r][p] = g.batch * (h1 - h0) * lq * g.head_dim * g.itemsize
            kv_bytes[r][p] = 2 * g.batch * (kv[r][1] - kv[r][0]) * lk * g.head_dim * g.itemsize
            out_bytes[r][p] = q_bytes[r][p] + (g.batch * (h1 - h0) * lq * 4 if return_lse else 0)
    compute = tuple(bool(live[:, h0:h1].any()) for h0, h1 in heads)
    freeze = lambda m: tuple(tuple(row) for row in m)  # noqa: E731
    return UlyssesPlan(world, heads, kv, freeze(q_needed), freeze(kv_needed), compute,
                       freeze(q_bytes), freeze(kv_bytes), freeze(out_bytes))

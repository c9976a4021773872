"""How a sequence is cut across ranks, and the layout views the schemes compute on.

A rank's shard is a tuple of segments, each a global token range [start, end) in the order the
rank holds them. Contiguous sharding gives one segment per rank, in rank order; zig-zag cuts the
sequence into 2P chunks and gives rank r chunks r and 2P-1-r, so under a causal mask every rank
gets one cheap (early) and one expensive (late) chunk. Boundaries fall on multiples of the tile
(bq for queries, bkv for keys; `shard_ranges` uses lcm(bq, bkv) for both, so a rank's queries
and keys cover the same tokens); only the globally last segment may be shorter.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

from .. import limits

Segment = Tuple[int, int]
SHARDINGS = ("contiguous", "zigzag")
# The layouts a shard may come in: the spec's but the packed one (TND), which has no per-batch
# sequence axis to cut.
LAYOUTS = tuple(layout for layout in limits.LAYOUTS if not limits.is_packed(layout))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def check_sharding(sharding) -> str:
    if sharding not in SHARDINGS:
        raise ValueError(f"sharding must be one of {', '.join(SHARDINGS)}, got {sharding!r}")
    return sharding


def shard_unit(block_shape) -> int:
    """The token multiple `shard_ranges` puts boundaries on: lcm(bq, bkv)."""
    bq, bkv = (int(v) for v in block_shape)
    return bq * bkv // math.gcd(bq, bkv)


def shard_ranges(seq: int, world: int, *, block_shape=limits.DEFAULT_BLOCK_SHAPE,
                 sharding: str = "contiguous") -> Tuple[Tuple[Segment, ...], ...]:
    """Per rank, the global token segments [start, end) it holds, in the order it holds them.

    Chunks are ceil(seq / (n x unit)) x unit tokens (unit = lcm(bq, bkv); n = world for
    contiguous, 2 x world for zig-zag); trailing chunks may be short or empty.
    """
    check_sharding(sharding)
    if world < 1:
        raise ValueError(f"world must be >= 1, got {world}")
    unit = shard_unit(block_shape)
    pieces = world if sharding == "contiguous" else 2 * world
    chunk = _ceil_div(_ceil_div(seq, unit), pieces) * unit
    bounds = [(min(i * chunk, seq), min((i + 1) * chunk, seq)) for i in range(pieces)]
    if sharding == "contiguous":
        return tuple((bounds[r],) for r in range(world))
    return tuple((bounds[r], bounds[pieces - 1 - r]) for r in range(world))


def ranges_from_lengths(lengths: Sequence[int]) -> Tuple[Tuple[Segment, ...], ...]:
    """Contiguous segments, in rank order, of the given per-rank lengths."""
    out, start = [], 0
    for n in lengths:
        out.append(((start, start + int(n)),))
        start += int(n)
    return tuple(out)


def segment_length(segments: Sequence[Segment]) -> int:
    return sum(e - s for s, e in segments)


def seq_dim(layout: str) -> int:
    """The sequence axis of a query/key/value tensor in `layout`."""
    return limits.seq_axis(layout)


def shard(x, rank: int, world: int, *, input_layout: str = limits.DEFAULT_INPUT_LAYOUT,
          block_shape=limits.DEFAULT_BLOCK_SHAPE, sharding: str = "contiguous"):
    """Rank `rank`'s shard of a full query/key/value tensor (its segments concatenated)."""
    import torch

    dim = seq_dim(input_layout)
    segments = shard_ranges(x.shape[dim], world, block_shape=block_shape, sharding=sharding)[rank]
    return torch.cat([x.narrow(dim, s, e - s) for s, e in segments], dim=dim).contiguous()


def unshard(pieces, *, input_layout: str = limits.DEFAULT_INPUT_LAYOUT,
            block_shape=limits.DEFAULT_BLOCK_SHAPE, sharding: str = "contiguous", lse: bool = False):
    """The full tensor from every rank's output shard (rank order): outputs in the output
    layout (BSND for BNSD_BSND), or with `lse=True` lse shards [B, N, S]."""
    import torch

    layout = limits.output_layout(input_layout)
    dim = 2 if lse else seq_dim(layout)
    seq = sum(p.shape[dim] for p in pieces)
    segments = shard_ranges(seq, len(pieces), block_shape=block_shape, sharding=sharding)
    parts = []
    for rank, segs in enumerate(segments):
        offset = 0
        for s, e in segs:
            parts.append((s, pieces[rank].narrow(dim, offset, e - s)))
            offset += e - s
    parts.sort(key=lambda p: p[0])
    return torch.cat([p for _, p in parts], dim=dim)


def to_bnsd(x, layout: str, heads: int):
    """A query/key/value tensor as a contiguous [B, N, S, D] view of its data."""
    if limits.is_head_major(layout):
        return x.contiguous()
    if limits.has_fused_heads(layout):
        b, s, h = x.shape
        x = x.reshape(b, s, heads, h // heads)
    return x.permute(0, 2, 1, 3).contiguous()


def from_bnsd(x, layout: str):
    """An output [B, N, S, D] in the output layout of `layout`."""
    written = limits.output_layout(layout)
    if limits.is_head_major(written):
        return x.contiguous()
    y = x.permute(0, 2, 1, 3).contiguous()
    if limits.has_fused_heads(written):
        return y.reshape(y.shape[0], y.shape[1], -1)
    return y  # BSND, and BNSD_BSND's output

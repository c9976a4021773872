"""Ring attention: key/value shards circulate, each step's transfer overlapping its compute.

Step t: rank r holds shard (r - t) mod P, posts the send of what ranks further down still need
of it (RingPlan.sent) and the receive of the next one, computes its queries against the held
shard (only the (query segment, key range) pairs with live tiles), merges the partial result
through the lse, then waits for the transfer.
"""

from __future__ import annotations

from typing import List, Tuple

from .comm import Exchange
from .merge import Accumulator
from .plan import Geometry, RingPlan, local_calls
from .shards import Segment, segment_length

# One held piece: global token range [start, end) at token offset `at` of the held buffer.
Piece = Tuple[int, int, int]


def _pieces(segments) -> List[Piece]:
    out, at = [], 0
    for s, e in segments:
        out.append((s, e, at))
        at += e - s
    return out


def _select(buf, pieces: List[Piece], segments) -> "object":
    """The tokens of `segments` (each inside one held piece) as one contiguous buffer."""
    import torch

    parts = []
    for s, e in segments:
        ps, _, at = next(p for p in pieces if p[0] <= s and e <= p[1])
        parts.append(buf.narrow(3, at + s - ps, e - s))
    return torch.cat(parts, dim=3).contiguous()


def run(q, k, v, g: Geometry, live, plan: RingPlan, rank: int, group, timeout, stats,
        attention, atten_mask):
    """q [B, N, Sq_local, D], k/v [B, Nkv, Skv_local, D] (BNSD, contiguous) -> Accumulator."""
    import torch

    world = g.world
    acc = Accumulator(g.batch, g.heads, q.shape[2], g.head_dim, device=q.device)
    buf = torch.stack([k, v])  # [2, B, Nkv, T, D]: one message per hop
    pieces = _pieces(s for s in g.kv_segments[rank] if s[1] > s[0])
    q_pieces = _pieces(g.q_segments[rank])
    for t in range(world):
        exchange = Exchange(group, timeout, stats)
        incoming, incoming_segments = None, ()
        if t < world - 1:
            outgoing = plan.sent(rank, t)
            if outgoing:
                exchange.send(_select(buf, pieces, outgoing), (rank + 1) % world)
            incoming_segments = plan.received(rank, t)
            if incoming_segments:
                incoming = torch.empty((2, g.batch, g.kv_heads, segment_length(incoming_segments),
                                        g.head_dim), dtype=q.dtype, device=q.device)
                exchange.recv(incoming, (rank - 1) % world)
            exchange.start()
        if plan.compute[rank][t]:
            stats.steps_computed += 1
            _compute(q, buf, pieces, q_pieces, g, live, acc, stats, attention, atten_mask)
        else:
            stats.steps_skipped += 1
        exchange.finish(f"ring step {t} of {world} (rank {rank})")
        buf, pieces = incoming, _pieces(incoming_segments)
    return acc


def _compute(q, buf, pieces, q_pieces, g, live, acc, stats, attention, atten_mask) -> None:
    for qs, qe, q_at in q_pieces:
        if qe <= qs:
            continue
        for ks, ke, k_at in pieces:
            for call in local_calls(live, g, (qs, qe), (ks, ke), atten_mask):
                b = slice(call.b0, call.b1)
                out, lse = attention(
                    q[b, :, q_at:q_at + qe - qs].contiguous(),
                    buf[0, b, :, k_at:k_at + ke - ks].contiguous(),
                    buf[1, b, :, k_at:k_at + ke - ks].contiguous(), **call.kwargs)
                stats.kernel_calls += 1
                acc.add(out, lse, call.b0, call.b1, q_at, q_at + qe - qs)

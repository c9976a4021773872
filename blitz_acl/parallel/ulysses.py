"""Ulysses: an all-to-all over heads, full-sequence attention per head group, and back.

Rank r gathers, for its query heads (and the kv heads they read), every rank's query and
key/value shard, runs one blitz_sparse_attention over the whole sequence with the global sabi's
rows of its heads, and returns each rank its rows. A shard that feeds none of r's live tiles is
not sent (its tokens stay zero; no selected tile reads them), and the output rows of a query
shard that was not sent are zeros with lse -inf on the owner, as the global call gives.
"""

from __future__ import annotations

from .comm import Exchange
from .plan import Geometry, UlyssesPlan
from .shards import segment_length
from .. import sabi as sabi_format


def _place(full, part, segments, dim: int) -> None:
    """Copy `part` (segments concatenated) into `full` at their global positions."""
    at = 0
    for s, e in segments:
        full.narrow(dim, s, e - s).copy_(part.narrow(dim, at, e - s))
        at += e - s


def _take(full, segments, dim: int):
    import torch

    return torch.cat([full.narrow(dim, s, e - s) for s, e in segments], dim=dim).contiguous()


def run(q, k, v, g: Geometry, live, plan: UlyssesPlan, rank: int, group, timeout, stats,
        attention, atten_mask, return_lse: bool):
    """q [B, N, Sq_local, D], k/v [B, Nkv, Skv_local, D] -> (out [B, N, Sq_local, D], lse)."""
    import torch

    world, dev, dt = g.world, q.device, q.dtype
    h0, h1 = plan.heads[rank]
    k0, k1 = plan.kv_heads[rank]
    q_segs = [[s for s in segs if s[1] > s[0]] for segs in g.q_segments]
    kv_segs = [[s for s in segs if s[1] > s[0]] for segs in g.kv_segments]

    # ---- all-to-all in: my heads of every rank's shard
    full_q = torch.zeros((g.batch, h1 - h0, g.seq_q, g.head_dim), dtype=dt, device=dev)
    full_kv = torch.zeros((2, g.batch, k1 - k0, g.seq_kv, g.head_dim), dtype=dt, device=dev)
    exchange, inbox = Exchange(group, timeout, stats), []
    for p in range(world):
        if p == rank:
            continue
        r0, r1 = plan.heads[p]
        c0, c1 = plan.kv_heads[p]
        if plan.q_needed[p][rank]:
            exchange.send(q[:, r0:r1].contiguous(), p)
        if plan.kv_needed[p][rank]:
            exchange.send(torch.stack([k[:, c0:c1], v[:, c0:c1]]).contiguous(), p)
        if plan.q_needed[rank][p]:
            buf = torch.empty((g.batch, h1 - h0, segment_length(q_segs[p]), g.head_dim), dtype=dt, device=dev)
            exchange.recv(buf, p)
            inbox.append((full_q, buf, q_segs[p], 2))
        if plan.kv_needed[rank][p]:
            buf = torch.empty((2, g.batch, k1 - k0, segment_length(kv_segs[p]), g.head_dim), dtype=dt, device=dev)
            exchange.recv(buf, p)
            inbox.append((full_kv, buf, kv_segs[p], 3))
    exchange.start()
    _place(full_q, q[:, h0:h1], q_segs[rank], 2)
    _place(full_kv, torch.stack([k[:, k0:k1], v[:, k0:k1]]), kv_segs[rank], 3)
    exchange.finish(f"ulysses all-to-all of the inputs (rank {rank})")
    for full, buf, segs, dim in inbox:
        _place(full, buf, segs, dim)

    # ---- one full-sequence call over my heads
    if plan.compute[rank]:
        stats.steps_computed += 1
        kwargs = {"sabi": sabi_format.from_block_mask(live[:, h0:h1]), "sparse_mode": g.mode,
                  "pre_tokens": g.pre, "next_tokens": g.next}
        if g.lengths_given:
            kwargs["actual_seq_lengths"] = list(g.q_lens)
            kwargs["actual_seq_lengths_kv"] = list(g.kv_lens)
        if atten_mask is not None and g.mode in (0, 1):
            m = atten_mask
            if m.ndim == 4 and m.shape[1] > 1:
                m = m[:, h0:h1]
            kwargs["atten_mask"] = m
        mine_out, mine_lse = attention(full_q, full_kv[0], full_kv[1], **kwargs)
        stats.kernel_calls += 1
    else:
        stats.steps_skipped += 1
        mine_out = torch.zeros_like(full_q)
        mine_lse = torch.full(full_q.shape[:3], float("-inf"), dtype=torch.float32, device=dev)

    # ---- all-to-all out: every rank its rows of my heads
    out = torch.zeros((g.batch, g.heads, q.shape[2], g.head_dim), dtype=dt, device=dev)
    lse = torch.full((g.batch, g.heads, q.shape[2]), float("-inf"), dtype=torch.float32, device=dev)
    exchange, inbox = Exchange(group, timeout, stats), []
    for p in range(world):
        if p == rank:
            continue
        if plan.q_needed[rank][p]:
            exchange.send(_take(mine_out, q_segs[p], 2), p)
            if return_lse:
                exchange.send(_take(mine_lse, q_segs[p], 2), p)
        if plan.q_needed[p][rank]:
            r0, r1 = plan.heads[p]
            buf = torch.empty((g.batch, r1 - r0, q.shape[2], g.head_dim), dtype=dt, device=dev)
            exchange.recv(buf, p)
            inbox.append((out, buf, r0, r1))
            if return_lse:
                lbuf = torch.empty((g.batch, r1 - r0, q.shape[2]), dtype=torch.float32, device=dev)
                exchange.recv(lbuf, p)
                inbox.append((lse, lbuf, r0, r1))
    exchange.start()
    if q_segs[rank]:
        out[:, h0:h1] = _take(mine_out, q_segs[rank], 2)
        lse[:, h0:h1] = _take(mine_lse, q_segs[rank], 2)
    exchange.finish(f"ulysses all-to-all of the outputs (rank {rank})")
    for dst, buf, r0, r1 in inbox:
        dst[:, r0:r1] = buf
    return out, lse

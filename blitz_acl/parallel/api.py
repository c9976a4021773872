"""sequence_parallel_attention: blitz_sparse_attention over a sequence sharded across ranks."""

from __future__ import annotations

import time
from typing import Optional

import numpy as np

from .. import limits
from .. import sabi as sabi_format
from ..api import blitz_sparse_attention
from . import plan as planning
from . import ring, ulysses
from .comm import ParallelError, ParallelStats, all_gather_ints, fingerprint
from .shards import (LAYOUTS, check_sharding, from_bnsd, ranges_from_lengths, seq_dim,
                     shard_ranges, to_bnsd)

SCHEMES = ("ring", "ulysses")


def sequence_parallel_attention(query, key, value, sabi=None, *, group=None, scheme="ring",
                                sharding="contiguous", timeout: Optional[float] = None,
                                stats: Optional[ParallelStats] = None,
                                num_heads=limits.DEFAULT_NUM_HEADS,
                                num_key_value_heads=limits.DEFAULT_NUM_KEY_VALUE_HEADS,
                                input_layout=limits.DEFAULT_INPUT_LAYOUT,
                                scale_value=limits.DEFAULT_SCALE_VALUE,
                                actual_seq_lengths=None, actual_seq_lengths_kv=None,
                                atten_mask=None, sparse_mode=limits.DEFAULT_SPARSE_MODE,
                                pre_tokens=limits.DEFAULT_PRE_TOKENS,
                                next_tokens=limits.DEFAULT_NEXT_TOKENS,
                                block_shape=limits.DEFAULT_BLOCK_SHAPE,
                                return_lse=limits.DEFAULT_RETURN_LSE, device=None, validate=True):
    """blitz_sparse_attention on a sequence sharded over the ranks of a torch.distributed group.

    Every rank calls it at once with its own shard of query/key/value and the same global
    arguments; it returns that rank's shard of the output (and of the lse), equal within
    rounding to the single-process call on the whole sequence.

    Arguments (beyond those of blitz_sparse_attention, which keep their meaning in GLOBAL
    coordinates: sabi, actual_seq_lengths(_kv), atten_mask, the sparse modes):
        query: this rank's shard, torch tensor; (B, N, Sq_r, D) in BNSD, (B, Sq_r, N, D) in
            BSND, (B, Sq_r, N*D) in BSH (num_heads required), BNSD_BSND (output BSND).
            sharding="contiguous": rank r holds tokens [sum_{p<r} Sq_p, sum_{p<=r} Sq_p), any
            lengths that are multiples of bq (the last rank's may be shorter, even 0).
            sharding="zigzag": rank r holds chunks r and 2P-1-r of shard_ranges(...), in that
            order (`blitz_acl.parallel.shard` cuts a full tensor so).
        key, value: the rank's key/value shard, same rules with bkv.
        sabi: the GLOBAL sabi [Bs, Ns, R, W] (R = ceil(Sq / bq) over the whole sequence), the
            same on every rank. None: every tile.
        group: the torch.distributed process group (default: the world).
        scheme: "ring" (key/value shards travel round the ring, P steps) or "ulysses" (an
            all-to-all over heads: needs N % P == 0). Default "ring".
        sharding: "contiguous" (default) or "zigzag" (balanced for causal masks).
        timeout: seconds each point-to-point wait may take (default: the group's timeout).
        stats: a ParallelStats to fill with this rank's bytes sent / skipped, steps, calls.

    Returns:
        this rank's output shard in the layout and dtype of query; with return_lse=True
        (out, lse) with lse (B, N, Sq_r) float32.

    Raises:
        TypeError / ValueError for bad arguments (on every rank: the ranks compare a digest of
        their arguments first); ParallelError when a peer fails, disagrees, or does not answer
        within the timeout.
    """
    import torch
    import torch.distributed as dist

    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    check_sharding(sharding)
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("sequence_parallel_attention needs torch.distributed initialised "
                           "(torch.distributed.init_process_group)")
    stats = ParallelStats() if stats is None else stats
    started = time.perf_counter()
    rank, world = dist.get_rank(group), dist.get_world_size(group)
    stats.scheme, stats.world, stats.rank = scheme, world, rank

    # ---- local checks, then one handshake: lengths, and that every rank passed the same call
    error, local = None, None
    try:
        local = _local(query, key, value, sabi, input_layout, num_heads, num_key_value_heads)
    except (TypeError, ValueError) as e:
        error = e
    digest = 0 if local is None else fingerprint(
        local["shape"], local["dtype"], input_layout, scheme, sharding, scale_value,
        actual_seq_lengths, actual_seq_lengths_kv, sparse_mode, pre_tokens, next_tokens,
        tuple(block_shape) if isinstance(block_shape, (list, tuple)) else block_shape,
        return_lse, device, local["sabi_bytes"], _mask_digest(atten_mask))
    handshake_device = query.device if isinstance(query, torch.Tensor) else "cpu"
    rows = all_gather_ints([int(error is not None), *(local["lens"] if local else (0, 0)), digest],
                           group, handshake_device, timeout)
    if error is not None:
        raise error
    failed = [p for p, r in enumerate(rows) if r[0]]
    if failed:
        raise ParallelError(f"rank(s) {failed} rejected their arguments; see their errors")
    differ = [p for p, r in enumerate(rows) if r[3] != digest]
    if differ:
        raise ParallelError(f"rank(s) {differ} passed different global arguments (sabi, shapes, dtype, "
                            f"keywords) than rank {rank}; every rank must pass the same call")

    g = _geometry(local, [r[1] for r in rows], [r[2] for r in rows], sharding, world, block_shape,
                  actual_seq_lengths, actual_seq_lengths_kv, sparse_mode, pre_tokens, next_tokens)
    s = None if sabi is None else sabi_format.validate(
        sabi, g.batch, g.heads, g.seq_q, g.seq_kv, g.block_shape, check_entries=validate)
    live = planning.live_tiles(s, g)

    def attention(q, k, v, **kw):
        return blitz_sparse_attention(q, k, v, input_layout="BNSD", scale_value=scale_value,
                                      block_shape=g.block_shape, return_lse=True, device=device,
                                      validate=validate, **kw)

    q, k, v = (to_bnsd(t, input_layout, h) for t, h in
               ((query, g.heads), (key, g.kv_heads), (value, g.kv_heads)))
    if scheme == "ring":
        p = planning.ring_plan(live, g)
        acc = ring.run(q, k, v, g, live, p, rank, group, timeout, stats, attention, atten_mask)
        out, lse = acc.out.to(query.dtype), acc.lse
    else:
        p = planning.ulysses_plan(live, g, return_lse)
        out, lse = ulysses.run(q, k, v, g, live, p, rank, group, timeout, stats, attention,
                               atten_mask, return_lse)
    stats.bytes_skipped = p.bytes_dense(rank) - stats.bytes_sent
    stats.seconds = time.perf_counter() - started
    out = from_bnsd(out, input_layout)
    return (out, lse) if return_lse else out


def _local(query, key, value, sabi, layout, num_heads, num_key_value_heads) -> dict:
    """This rank's shapes read from its shard (BNSD terms), or TypeError / ValueError."""
    import torch

    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch tensor (torch.distributed moves it), "
                            f"got {type(t).__name__}")
    if layout not in LAYOUTS:
        raise ValueError(f"input_layout must be one of {', '.join(LAYOUTS)} for sequence parallel "
                         f"attention, got {layout!r}")
    if query.dtype != key.dtype or key.dtype != value.dtype:
        raise TypeError(f"query, key and value must share a dtype, got {query.dtype}, {key.dtype}, {value.dtype}")
    if key.shape != value.shape:
        raise ValueError(f"key {tuple(key.shape)} and value {tuple(value.shape)} must have the same shape")
    expected = limits.layout_rank(layout)
    for name, t in (("query", query), ("key", key)):
        if t.dim() != expected:
            raise ValueError(f"{name} must be {expected}-d in layout {layout}, got shape {tuple(t.shape)}")
    dim = seq_dim(layout)
    if limits.has_fused_heads(layout):
        if num_heads is None:
            raise ValueError(limits.refuse_bsh_heads())
        heads, h_ax = int(num_heads), limits.axis(layout, "H")
        if heads < 1 or query.shape[h_ax] % heads:
            raise ValueError(f"query's last dim {query.shape[h_ax]} is not num_heads={heads} x D")
        d = query.shape[h_ax] // heads
        if key.shape[h_ax] % d:
            raise ValueError(f"key's last dim {key.shape[h_ax]} is not a multiple of D={d}")
        kv_heads = key.shape[h_ax] // d
    else:
        n_ax, d_ax = limits.axis(layout, "N"), limits.axis(layout, "D")
        heads = query.shape[n_ax]
        kv_heads = key.shape[n_ax]
        d = query.shape[d_ax]
        if key.shape[d_ax] != d:
            raise ValueError(f"query has D={d}, key D={key.shape[d_ax]}")
    if num_key_value_heads and int(num_key_value_heads) != kv_heads:
        raise ValueError(f"num_key_value_heads={num_key_value_heads} but key has {kv_heads} heads")
    if heads % kv_heads:
        raise ValueError(limits.refuse_gqa("num_heads", heads, "num_key_value_heads", kv_heads))
    b_ax = limits.axis(layout, "B")
    if query.shape[b_ax] != key.shape[b_ax]:
        raise ValueError(f"query has batch {query.shape[b_ax]}, key {key.shape[b_ax]}")
    s = None if sabi is None else sabi_format.normalize(sabi)
    return {"shape": (query.shape[b_ax], heads, kv_heads, d), "dtype": str(query.dtype),
            "lens": (query.shape[dim], key.shape[dim]), "itemsize": query.element_size(),
            "sabi_bytes": b"none" if s is None else repr(s.shape).encode() + s.tobytes()}


def _mask_digest(mask) -> bytes:
    if mask is None:
        return b"none"
    a = mask.detach().cpu().numpy() if hasattr(mask, "detach") else np.asarray(mask)
    return repr((a.shape, str(a.dtype))).encode() + np.ascontiguousarray(a).tobytes()


def _lengths(name: str, lengths, batch: int, full: int):
    if lengths is None:
        return (full,) * batch
    vals = [int(v) for v in (lengths.tolist() if hasattr(lengths, "tolist") else lengths)]
    if len(vals) not in (1,) and len(vals) < batch:
        raise ValueError(f"{name} has {len(vals)} entries; expected 1 or >= B = {batch}")
    vals = vals * batch if len(vals) == 1 else vals[:batch]
    bad = [v for v in vals if not 0 <= v <= full]
    if bad:
        raise ValueError(f"{name} entries must lie in [0, {full}] (the global length), got {bad[0]}")
    return tuple(vals)


def _geometry(local, q_lens_r, kv_lens_r, sharding, world, block_shape, asl, asl_kv, mode,
              pre, nxt) -> planning.Geometry:
    bq, bkv = sabi_format.check_block_shape(block_shape)
    seq_q, seq_kv = sum(q_lens_r), sum(kv_lens_r)
    if sharding == "contiguous":
        q_segs, kv_segs = ranges_from_lengths(q_lens_r), ranges_from_lengths(kv_lens_r)
    else:
        q_segs = shard_ranges(seq_q, world, block_shape=(bq, bkv), sharding="zigzag")
        kv_segs = shard_ranges(seq_kv, world, block_shape=(bq, bkv), sharding="zigzag")
        for what, segs, lens in (("query", q_segs, q_lens_r), ("key", kv_segs, kv_lens_r)):
            want = [sum(e - s for s, e in r) for r in segs]
            if want != list(lens):
                raise ValueError(f"sharding='zigzag': the ranks' {what} shards have {list(lens)} tokens; "
                                 f"shard_ranges gives {want} (use blitz_acl.parallel.shard)")
    for what, segs, block, total in (("query", q_segs, bq, seq_q), ("key", kv_segs, bkv, seq_kv)):
        for r, rs in enumerate(segs):
            for s, e in rs:
                if e > s and (s % block or (e % block and e != total)):
                    raise ValueError(f"rank {r}'s {what} shard covers tokens [{s}, {e}): shard boundaries "
                                     f"must be multiples of the block ({block}); only the last may be shorter")
    batch, heads, kv_heads, d = local["shape"]
    if mode not in (0, 1, 2, 3, 4) or isinstance(mode, bool):
        raise ValueError(f"sparse_mode must be 0-4 for sequence parallel attention, got {mode!r}")
    return planning.Geometry(
        batch=batch, heads=heads, kv_heads=kv_heads, seq_q=seq_q, seq_kv=seq_kv, head_dim=d,
        itemsize=local["itemsize"], block_shape=(bq, bkv), q_segments=q_segs, kv_segments=kv_segs,
        q_lens=_lengths("actual_seq_lengths", asl, batch, seq_q),
        kv_lens=_lengths("actual_seq_lengths_kv", asl_kv, batch, seq_kv),
        lengths_given=asl is not None or asl_kv is not None,
        mode=int(mode), pre=int(pre), next=int(nxt))

"""python -m bench --parallel N: sequence-parallel attention on 1, 2, 4 ... N gloo ranks.

For each world size (powers of two up to N, and N) it spawns that many processes on this
machine (one kernel thread each), builds the same global problem on every rank, and runs
blitz_acl.parallel.sequence_parallel_attention for each (pattern, scheme, sharding) row: one
warm-up, then REPEATS timed calls (barrier, call, the slowest rank's time; median reported).
It prints, per row, the time, the bytes the ranks sent, the bytes the sabi saved against the
same scheme without sparsity, and the ring steps computed, and checks the gathered output
against the single-process blitz_sparse_attention (max |difference|).

On one small machine this shows correctness and communication volume, not scaling: the ranks
share its cores and its memory bus, and gloo over loopback is not HCCL.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from datetime import timedelta

# ---- The rows ---------------------------------------------------------------------------------
SHAPE = {"batch": 1, "heads": 4, "seq": 4096, "head_dim": 64, "dtype": "bfloat16"}
BLOCK_SHAPE = (128, 512)
# (pattern, scheme, sharding); zig-zag only where it matters (causal).
ROWS = (
    ("dense", "ring", "contiguous"), ("dense", "ulysses", "contiguous"),
    ("causal", "ring", "contiguous"), ("causal", "ring", "zigzag"), ("causal", "ulysses", "contiguous"),
    ("band", "ring", "contiguous"), ("band", "ulysses", "contiguous"),
    ("random", "ring", "contiguous"), ("random", "ulysses", "contiguous"),
)
RANDOM_SPARSITY = 0.7
BAND_BLOCKS = 1  # key blocks kept on each side of the diagonal
REPEATS = 3
GROUP_TIMEOUT_S = 120.0
NOTE = ("On one 2-core machine this shows correctness and communication volume, not scaling: "
        "the ranks share the cores (one kernel thread each) and talk gloo over loopback.")
# ----------------------------------------------------------------------------------------------


def _problem(pattern: str):
    """(q, k, v BNSD tensors, kwargs) of a row: the same on every rank and in the parent."""
    import torch

    from blitz_acl import sabi as S

    b, h, s, d = (SHAPE[k] for k in ("batch", "heads", "seq", "head_dim"))
    gen = torch.Generator().manual_seed(0)
    dt = getattr(torch, SHAPE["dtype"])
    q, k, v = (torch.randn((b, h, s, d), generator=gen).to(dt) for _ in range(3))
    kwargs = {"block_shape": BLOCK_SHAPE}
    if pattern == "causal":
        kwargs.update(sabi=S.causal_pattern(b, h, s, s, block_shape=BLOCK_SHAPE, shared_heads=True),
                      sparse_mode=3)
    elif pattern == "band":
        kwargs["sabi"] = S.band_pattern(b, h, s, s, BAND_BLOCKS, block_shape=BLOCK_SHAPE)
    elif pattern == "random":
        kwargs["sabi"] = S.random_pattern(b, h, s, s, RANDOM_SPARSITY, block_shape=BLOCK_SHAPE)
    return q, k, v, kwargs


def _rank_main(rank: int, world: int, port: int, results) -> None:
    os.environ["BLITZ_ACL_NUM_THREADS"] = "1"
    import torch
    import torch.distributed as dist

    from blitz_acl.parallel import ParallelStats, sequence_parallel_attention, shard

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=GROUP_TIMEOUT_S))
    try:
        for pattern, scheme, sharding in ROWS:
            q, k, v, kwargs = _problem(pattern)
            mine = [shard(t, rank, world, block_shape=BLOCK_SHAPE, sharding=sharding) for t in (q, k, v)]
            times, stats = [], None
            for i in range(1 + REPEATS):
                stats = ParallelStats()
                dist.barrier()
                t0 = time.perf_counter()
                out = sequence_parallel_attention(*mine, scheme=scheme, sharding=sharding, stats=stats, **kwargs)
                elapsed = torch.tensor([time.perf_counter() - t0], dtype=torch.float64)
                dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)  # the call ends with its slowest rank
                if i:
                    times.append(float(elapsed))
            results.put((rank, pattern, scheme, sharding, sorted(times)[len(times) // 2], stats,
                         out.to(torch.float32).numpy()))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_world(world: int) -> dict:
    """{(pattern, scheme, sharding): (time, [stats per rank], [out per rank])}."""
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank_main, args=(r, world, port, results)) for r in range(world)]
    for p in procs:
        p.start()
    got = {}
    try:
        for _ in range(world * len(ROWS)):
            rank, pattern, scheme, sharding, seconds, stats, out = results.get(timeout=600)
            entry = got.setdefault((pattern, scheme, sharding), [0.0, [None] * world, [None] * world])
            entry[0] = max(entry[0], seconds)
            entry[1][rank], entry[2][rank] = stats, out
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    return got


def main(max_world: int) -> int:
    import numpy as np
    import torch

    from blitz_acl import blitz_sparse_attention
    from blitz_acl.parallel import unshard

    worlds = sorted({w for w in (1, 2, 4, 8, 16) if w <= max_world} | {max_world})
    print(f"[bench] sequence parallel: B={SHAPE['batch']} H={SHAPE['heads']} S={SHAPE['seq']} "
          f"D={SHAPE['head_dim']} {SHAPE['dtype']} tiles {BLOCK_SHAPE}; worlds {worlds}", file=sys.stderr)
    os.environ.setdefault("BLITZ_ACL_NUM_THREADS", "1")
    singles = {}
    for pattern in sorted({r[0] for r in ROWS}):
        q, k, v, kwargs = _problem(pattern)
        singles[pattern] = blitz_sparse_attention(q, k, v, **kwargs).to(torch.float32).numpy()
    header = (f"{'ranks':>5}  {'pattern':<7} {'scheme':<8} {'sharding':<10} {'time_ms':>9} "
              f"{'moved_MB':>9} {'skipped_MB':>10} {'steps':>7} {'calls':>5} {'max_abs_err':>11}")
    lines, ok = [header], True
    for world in worlds:
        started = time.perf_counter()
        got = run_world(world)
        print(f"[bench] {world} rank(s): {time.perf_counter() - started:.0f} s", file=sys.stderr)
        for pattern, scheme, sharding in ROWS:
            seconds, stats, outs = got[(pattern, scheme, sharding)]
            full = unshard([torch.from_numpy(o) for o in outs], block_shape=BLOCK_SHAPE,
                           sharding=sharding).numpy()
            err = float(np.abs(full - singles[pattern]).max())
            ok &= err < 2.5e-2
            moved = sum(s.bytes_sent for s in stats) / 1e6
            skipped = sum(s.bytes_skipped for s in stats) / 1e6
            steps = f"{sum(s.steps_computed for s in stats)}/{sum(s.steps_computed + s.steps_skipped for s in stats)}"
            calls = sum(s.kernel_calls for s in stats)
            lines.append(f"{world:>5}  {pattern:<7} {scheme:<8} {sharding:<10} {seconds * 1e3:>9.1f} "
                         f"{moved:>9.2f} {skipped:>10.2f} {steps:>7} {calls:>5} {err:>11.2e}")
    lines.append(NOTE)
    print("\n".join(lines), flush=True)
    return 0 if ok else 1

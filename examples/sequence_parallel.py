"""Sequence-parallel block-sparse attention with torchrun (gloo on the CPU, HCCL with torch_npu).

    torchrun --nproc-per-node 2 examples/sequence_parallel.py

Every rank builds the same global problem (same seed), keeps its shard, runs the ring and the
Ulysses scheme, and rank 0 checks the gathered output against the single-process call.
"""

from datetime import timedelta

import torch
import torch.distributed as dist

from blitz_acl import blitz_sparse_attention, sabi
from blitz_acl.parallel import ParallelStats, sequence_parallel_attention, shard, unshard

try:  # on Ascend: one NPU per rank, HCCL
    import torch_npu  # noqa: F401

    backend, device = "hccl", "npu"
except ImportError:
    backend, device = "gloo", "cpu"

# The timeout bounds every wait: a rank that dies makes the others raise instead of hanging.
dist.init_process_group(backend, timeout=timedelta(seconds=60))
rank, world = dist.get_rank(), dist.get_world_size()
if device == "npu":
    torch.npu.set_device(rank)

B, N, S, D = 1, 4, 4096, 64
g = torch.Generator().manual_seed(0)
q, k, v = (torch.randn(B, N, S, D, generator=g).to(torch.bfloat16) for _ in range(3))
blocks = sabi.causal_pattern(B, N, S, S, shared_heads=True)  # the GLOBAL sabi, on every rank

for scheme, sharding in (("ring", "contiguous"), ("ring", "zigzag"), ("ulysses", "contiguous")):
    mine = [shard(t, rank, world, sharding=sharding).to(device) for t in (q, k, v)]
    stats = ParallelStats()
    out = sequence_parallel_attention(*mine, blocks, sparse_mode=3, scheme=scheme,
                                      sharding=sharding, stats=stats)
    pieces = [torch.empty_like(out) for _ in range(world)] if world > 1 else [out]
    if world > 1:
        dist.all_gather(pieces, out.contiguous())  # equal shards here (S is a multiple of P x 512)
    if rank == 0:
        full = unshard([p.cpu() for p in pieces], sharding=sharding)
        ref = blitz_sparse_attention(q, k, v, blocks, sparse_mode=3)
        err = (full.float() - ref.float()).abs().max().item()
        print(f"{scheme:8} {sharding:10} max|sharded - single| = {err:.2e}; rank 0 sent "
              f"{stats.bytes_sent / 1e6:.2f} MB, skipped {stats.bytes_skipped / 1e6:.2f} MB, "
              f"computed {stats.steps_computed} of {stats.steps_computed + stats.steps_skipped} steps")
dist.destroy_process_group()

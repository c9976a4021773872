"""Sequence-parallel block-sparse attention over torch.distributed (gloo on the CPU, HCCL on
Ascend): `sequence_parallel_attention` runs blitz_sparse_attention on a sequence sharded over
the ranks of a process group, with the ring or the Ulysses scheme, skipping the transfers and
the steps the global sabi leaves without a selected tile.

    from blitz_acl.parallel import sequence_parallel_attention, shard
    out = sequence_parallel_attention(q_shard, k_shard, v_shard, global_sabi, scheme="ring")

Modules: shards (how the sequence is cut, layouts), plan (what each rank computes and sends,
from the global sabi), ring / ulysses (the two schemes), merge (lse merging), comm (handshake,
timed waits, counters), api (the entry point).
"""

from .api import SCHEMES, sequence_parallel_attention
from .comm import ParallelError, ParallelStats
from .shards import SHARDINGS, shard, shard_ranges, unshard

__all__ = ["sequence_parallel_attention", "shard", "unshard", "shard_ranges", "ParallelStats",
           "ParallelError", "SCHEMES", "SHARDINGS"]

"""torch.distributed plumbing: the argument handshake, timed waits, and the byte counters.

Every wait is bounded: a peer that died closes its sockets (gloo raises at once) and a peer that
hangs trips the timeout, so no rank waits forever. The process group's own timeout
(init_process_group / new_group `timeout=`) bounds the collectives; `timeout` here bounds each
point-to-point wait as well.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta
from typing import List, Optional


class ParallelError(RuntimeError):
    """A peer failed, disagreed on the arguments, or did not answer within the timeout."""


@dataclass
class ParallelStats:
    """What one rank's call did; pass an instance as `stats=` to have it filled."""
    scheme: str = ""
    world: int = 0
    rank: int = 0
    bytes_sent: int = 0  # payload bytes this rank sent to other ranks
    bytes_skipped: int = 0  # what the same scheme without sabi would send, minus bytes_sent
    steps_computed: int = 0  # ring steps (ulysses: 1) with a live tile
    steps_skipped: int = 0
    kernel_calls: int = 0
    seconds: float = 0.0
    notes: List[str] = field(default_factory=list)


def fingerprint(*parts) -> int:
    """A signed 63-bit digest of the arguments every rank must share (sabi bytes, shapes)."""
    h = hashlib.blake2b(digest_size=8)
    for p in parts:
        h.update(p if isinstance(p, (bytes, bytearray, memoryview)) else repr(p).encode())
        h.update(b"\x00")
    return int.from_bytes(h.digest(), "little") >> 1


def all_gather_ints(values: List[int], group, device, timeout: Optional[float]) -> List[List[int]]:
    """Every rank's `values` (same length everywhere), one collective."""
    import torch
    import torch.distributed as dist

    mine = torch.tensor(values, dtype=torch.int64, device=device)
    world = dist.get_world_size(group)
    out = [torch.empty_like(mine) for _ in range(world)]
    work = dist.all_gather(out, mine, group=group, async_op=True)
    wait(work, timeout, "the argument handshake (all_gather)")
    return [[int(v) for v in t.cpu().tolist()] for t in out]


def wait(work, timeout: Optional[float], what: str) -> None:
    try:
        if timeout is None:
            work.wait()
        else:
            work.wait(timeout=timedelta(seconds=timeout))
    except Exception as e:  # gloo/HCCL raise RuntimeError subclasses with the peer's state
        raise ParallelError(f"{what} failed: {e}") from e


class Exchange:
    """A batch of point-to-point sends and receives posted together and waited together."""

    def __init__(self, group, timeout: Optional[float], stats: ParallelStats):
        self.group, self.timeout, self.stats = group, timeout, stats
        self.ops, self.works, self.what = [], [], []

    def _peer(self, rank: int) -> int:
        import torch.distributed as dist

        return rank if self.group is None else dist.get_global_rank(self.group, rank)

    def send(self, tensor, to: int) -> None:
        import torch.distributed as dist

        self.ops.append(dist.P2POp(dist.isend, tensor, self._peer(to), self.group))
        self.what.append(f"send to rank {to}")
        self.stats.bytes_sent += tensor.numel() * tensor.element_size()

    def recv(self, tensor, frm: int) -> None:
        import torch.distributed as dist

        self.ops.append(dist.P2POp(dist.irecv, tensor, self._peer(frm), self.group))
        self.what.append(f"receive from rank {frm}")

    def start(self) -> "Exchange":
        import torch.distributed as dist

        if self.ops:
            self.works = dist.batch_isend_irecv(self.ops)
        return self

    def finish(self, context: str) -> None:
        # A backend may coalesce a batch into fewer works than ops: then name them all at once.
        names = self.what if len(self.works) == len(self.what) else ["; ".join(self.what)] * len(self.works)
        for work, what in zip(self.works, names):
            wait(work, self.timeout, f"{context}: {what}")
        self.ops, self.works, self.what = [], [], []

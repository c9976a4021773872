"""A pool of gloo ranks for tests/test_parallel.py, spawned once and fed many cases.

`Pool(world)` spawns `world` processes (spawn context, one CPU thread each so they share this
2-core machine fairly), each joins one gloo group over TCP on 127.0.0.1 and then runs the tasks
the test sends it: a function name of this module and its arguments. `pool.run(name, per_rank)`
sends every rank its arguments and returns their results in rank order; a rank's exception
comes back as text and fails the test, and a rank that answers nothing within `limit` seconds
fails it too (the pool is then unusable and closed).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import socket
import time
import traceback
from datetime import timedelta

# Every collective and point-to-point wait of the group gives up after this long.
GROUP_TIMEOUT_S = 30.0
# How long the ranks may take to start and join (a loaded 2-core machine takes tens of seconds).
START_LIMIT_S = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, tasks, results, group_timeout, backend):
    os.environ["BLITZ_ACL_NUM_THREADS"] = "1"
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    if backend == "hccl":  # one NPU per rank (tests/npu/test_parallel_npu.py)
        import torch_npu  # noqa: F401

        torch.npu.set_device(rank)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world, timeout=timedelta(seconds=group_timeout))
    results.put((rank, "ready", None))
    while True:
        task = tasks.get()
        if task is None:
            break
        name, kwargs = task
        try:
            results.put((rank, "ok", globals()[name](**kwargs)))
        except BaseException as e:  # noqa: BLE001 - sent back to the test as its message
            results.put((rank, "error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))
    # No destroy_process_group: it waits on peers that may already be gone; exiting frees all.


class Pool:
    def __init__(self, world: int, group_timeout: float = GROUP_TIMEOUT_S, backend: str = "gloo"):
        ctx = mp.get_context("spawn")
        self.world = world
        self.tasks = [ctx.Queue() for _ in range(world)]
        self.results = ctx.Queue()
        port = free_port()
        self.procs = [ctx.Process(target=_worker, args=(r, world, port, self.tasks[r], self.results,
                                                        group_timeout, backend), daemon=True)
                      for r in range(world)]
        for p in self.procs:
            p.start()
        self.started = False

    def wait_ready(self, limit: float = START_LIMIT_S) -> None:
        """Until every rank has joined the group (start-up: torch's import dominates)."""
        if not self.started:
            answers = self.collect(limit)
            assert all(s == "ready" for s, _ in answers), answers
            self.started = True

    def submit(self, name: str, per_rank) -> None:
        for r in range(self.world):
            self.tasks[r].put((name, per_rank[r]))

    def collect(self, limit: float = 60.0):
        """(status, value) per rank, in rank order."""
        got, deadline = {}, time.monotonic() + limit
        while len(got) < self.world:
            left = deadline - time.monotonic()
            try:
                rank, status, value = self.results.get(timeout=max(left, 0.01))
            except queue.Empty:
                self.close(force=True)
                raise AssertionError(f"ranks {sorted(set(range(self.world)) - set(got))} gave no "
                                     f"answer within {limit} s") from None
            got[rank] = (status, value)
        return [got[r] for r in range(self.world)]

    def run(self, name: str, per_rank, limit: float = 60.0):
        self.wait_ready()
        self.submit(name, per_rank)
        answers = self.collect(limit)
        errors = [f"rank {r}: {v}" for r, (s, v) in enumerate(answers) if s != "ok"]
        if errors:
            raise AssertionError("\n".join(errors))
        return [v for _, v in answers]

    def close(self, force: bool = False) -> None:
        for r, p in enumerate(self.procs):
            if p.is_alive() and not force:
                self.tasks[r].put(None)
        deadline = time.monotonic() + (0 if force else 10)
        for p in self.procs:
            p.join(timeout=max(deadline - time.monotonic(), 0))
            if p.is_alive():
                p.terminate()
                p.join(timeout=5)


# ------------------------------------------------------------------------ tasks (in a rank)


def _tensor(a, dtype: str, device: str = "cpu"):
    """float32 numpy values (exact in `dtype`) -> a torch tensor of `dtype` on `device`."""
    import torch

    t = torch.from_numpy(a).to(getattr(torch, dtype))
    return t if device == "cpu" else t.to(f"{device}:{torch.npu.current_device()}")


def attend(query, key, value, dtype, kwargs, device="cpu"):
    """One sequence_parallel_attention call on this rank's shard; numpy float32 results."""
    import torch

    from blitz_acl.parallel import ParallelStats, sequence_parallel_attention

    stats = ParallelStats()
    result = sequence_parallel_attention(_tensor(query, dtype, device), _tensor(key, dtype, device),
                                         _tensor(value, dtype, device), stats=stats, **kwargs)
    out, lse = result if kwargs.get("return_lse") else (result, None)
    return {"out": out.to(torch.float32).cpu().numpy(), "lse": None if lse is None else lse.cpu().numpy(),
            "stats": stats}


def die_or_hang(query, key, value, dtype, kwargs, victim: int, how: str):
    """The victim rank passes the handshake, then exits (or stops answering) just before its
    first ring transfer; the others must raise. Returns (exception type, message, seconds)."""
    import torch.distributed as dist

    from blitz_acl.parallel import comm

    if dist.get_rank() == victim:
        def dying(self):
            if how == "exit":
                os._exit(3)
            time.sleep(3600)

        comm.Exchange.start = dying
    dist.barrier()  # time from both ranks being ready, not from a slow peer's start-up
    started = time.monotonic()
    try:
        attend(query, key, value, dtype, kwargs)
    except Exception as e:  # noqa: BLE001 - the test inspects it
        return (type(e).__name__, str(e), time.monotonic() - started)
    return ("no error", "", time.monotonic() - started)


def bad_call(kind: str):
    """A call every rank makes wrongly in the same way (or, for "one_rank", only rank 1):
    returns the exception's type name and message."""
    import torch
    import torch.distributed as dist

    from blitz_acl.parallel import sequence_parallel_attention

    rank = dist.get_rank()
    q = torch.randn(1, 2, 256, 32)
    kwargs = {"block_shape": (64, 128)}
    if kind == "numpy":
        q = q.numpy()
    elif kind == "unaligned":  # rank 0 holds 200 tokens: not a multiple of bkv = 128
        q = torch.randn(1, 2, 200 if rank == 0 else 256, 32)
    elif kind == "one_rank" and rank == 1:
        q = torch.randn(1, 2, 256, 33)  # D differs on rank 1 only
    try:
        k = q if not isinstance(q, torch.Tensor) else q.clone()
        sequence_parallel_attention(q, k, k, **kwargs)
    except Exception as e:  # noqa: BLE001 - the test inspects it
        return (type(e).__name__, str(e))
    return ("no error", "")

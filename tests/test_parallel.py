"""Sequence-parallel attention (blitz_acl.parallel) on gloo ranks spawned on this machine.

Each case shards one global problem over the ranks of a pool (tests/parallel_pool.py, spawned
once per module), runs sequence_parallel_attention on every rank, puts the shards back together
and checks them against the float64 oracle (tests/oracle.py) within the bounds of
tests/bounds.py, and against the single-process blitz_sparse_attention within the same bound.
The bytes each rank sent and skipped, and the ring steps it computed, are compared with counts
derived here from the oracle's token mask (which key blocks each rank's query rows attend).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

import bounds  # noqa: E402
import oracle  # noqa: E402
from parallel_pool import Pool  # noqa: E402

from blitz_acl import blitz_sparse_attention  # noqa: E402
from blitz_acl import sabi as S  # noqa: E402
from blitz_acl.parallel import shard_ranges  # noqa: E402

# A ring hop sends a rank's needed key blocks in runs; a gap shorter than this many blocks is
# sent rather than skipped (the documented rule of blitz_acl.parallel.plan).
RUN_GAP = 2


@dataclass(frozen=True)
class PCase:
    name: str
    scheme: str = "ring"
    sharding: str = "contiguous"
    dtype: str = "bfloat16"
    batch: int = 1
    heads: int = 2
    kv_heads: int = 0  # 0 = heads
    seq: int = 1000
    head_dim: int = 32
    layout: str = "BNSD"
    block_shape: Tuple[int, int] = (64, 128)
    pattern: Optional[str] = None  # None (every tile), random, frame, causal, band
    sparsity: float = 0.6
    sparse_mode: int = 0
    pre_tokens: int = 2147483647
    next_tokens: int = 2147483647
    actual_q: Optional[Tuple[int, ...]] = None
    actual_kv: Optional[Tuple[int, ...]] = None
    shard_lengths: Optional[Tuple[int, ...]] = None  # uneven contiguous shards (q and kv)
    mask: bool = False  # an explicit random atten_mask, sparse_mode 1
    seed: int = 0


# Small shapes (process start-up dominates): 1000 tokens, 64 x 128 tiles, so a shard holds several
# key blocks, the last one partial, and P = 2 / 4 give 512/488 and 256 x 3 + 232 token shards.
CASES_2 = [
    PCase("dense_ring"),
    PCase("dense_ulysses", scheme="ulysses", dtype="float16"),
    PCase("random_ring_bsnd", pattern="random", layout="BSND", dtype="float16"),
    PCase("random_ulysses_gqa", scheme="ulysses", pattern="random", heads=4, kv_heads=2),
    PCase("frame_ring", pattern="frame", seq=2100, sparsity=0.9),
    PCase("causal_ring", pattern="causal", sparse_mode=3),
    PCase("causal_ring_zigzag", pattern="causal", sparse_mode=2, sharding="zigzag"),
    PCase("causal_ulysses_zigzag_mqa", scheme="ulysses", pattern="causal", sparse_mode=3,
          sharding="zigzag", kv_heads=1),
    PCase("causal_mode_dense_sabi_ring", sparse_mode=2),
    PCase("band_ring_bsh_fp32", pattern="band", sparse_mode=4, pre_tokens=150, next_tokens=40,
          layout="BSH", dtype="float32"),
    PCase("uneven_lengths_ring", pattern="random", batch=2, shard_lengths=(384, 616),
          actual_q=(1000, 530), actual_kv=(700, 1000)),
    PCase("lengths_causal_ulysses", scheme="ulysses", batch=2, pattern="causal", sparse_mode=3,
          actual_q=(1000, 300), actual_kv=(900, 1000), layout="BSND"),
    PCase("mask_ring_gqa", pattern="random", mask=True, sparse_mode=1, heads=4, kv_heads=1),
    PCase("mask_ulysses", scheme="ulysses", pattern="random", mask=True, sparse_mode=1),
]
CASES_4 = [
    PCase("causal_ring_zigzag_4", pattern="causal", sparse_mode=2, sharding="zigzag"),
    PCase("band_ring_4", pattern="band", sparse_mode=4, pre_tokens=200, next_tokens=0),
    PCase("random_ulysses_gqa_4", scheme="ulysses", pattern="random", heads=4, kv_heads=2),
    PCase("uneven_empty_last_ring_4", pattern="random", shard_lengths=(256, 384, 360, 0),
          actual_q=(900,)),
]


# ------------------------------------------------------------------------------ building


def _round(x: np.ndarray, dtype: str) -> np.ndarray:
    return torch.from_numpy(x).to(getattr(torch, dtype)).to(torch.float32).numpy()


def build(c: PCase):
    """Global inputs (float32 values exact in c.dtype, in c.layout) and the global kwargs."""
    rng = np.random.default_rng(c.seed)
    nkv = c.kv_heads or c.heads

    def tensor(n):
        x = rng.standard_normal((c.batch, n, c.seq, c.head_dim)).astype(np.float32)
        if c.layout != "BNSD":
            x = x.transpose(0, 2, 1, 3)
        if c.layout == "BSH":
            x = x.reshape(c.batch, c.seq, n * c.head_dim)
        return _round(np.ascontiguousarray(x), c.dtype)

    q, k, v = tensor(c.heads), tensor(nkv), tensor(nkv)
    kwargs = {"input_layout": c.layout, "block_shape": c.block_shape, "sparse_mode": c.sparse_mode,
              "pre_tokens": c.pre_tokens, "next_tokens": c.next_tokens, "return_lse": True}
    if c.layout == "BSH":
        kwargs["num_heads"] = c.heads
    if c.pattern is not None:
        args = (c.batch, c.heads, c.seq, c.seq)
        kwargs["sabi"] = {
            "random": lambda: S.random_pattern(*args, c.sparsity, block_shape=c.block_shape, seed=c.seed),
            "frame": lambda: S.frame_pattern(*args, c.sparsity, block_shape=c.block_shape, rng="numpy"),
            "causal": lambda: S.causal_pattern(*args, block_shape=c.block_shape, shared_heads=True),
            "band": lambda: S.band_pattern(*args, 1, block_shape=c.block_shape),
        }[c.pattern]()
    if c.actual_q is not None:
        kwargs["actual_seq_lengths"] = list(c.actual_q)
    if c.actual_kv is not None:
        kwargs["actual_seq_lengths_kv"] = list(c.actual_kv)
    if c.mask:
        kwargs["atten_mask"] = rng.random((c.batch, 1, c.seq, c.seq)) < 0.3
    return q, k, v, kwargs


def ranges(c: PCase, world: int):
    """Per rank, the global token segments it holds."""
    if c.shard_lengths is not None:
        ends = np.cumsum(c.shard_lengths)
        return [((int(e - n), int(e)),) for n, e in zip(c.shard_lengths, ends)]
    return shard_ranges(c.seq, world, block_shape=c.block_shape, sharding=c.sharding)


def _seq_axis(layout: str) -> int:
    return 2 if layout == "BNSD" else 1


def split(x: np.ndarray, segs, axis: int) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate([np.take(x, np.arange(s, e), axis=axis) for s, e in segs],
                                               axis=axis))


def join(pieces, rngs, axis: int, seq: int) -> np.ndarray:
    shape = list(pieces[0].shape)
    shape[axis] = seq
    full = np.zeros(shape, dtype=np.float64)
    for piece, segs in zip(pieces, rngs):
        at = 0
        for s, e in segs:
            idx = [slice(None)] * len(shape)
            idx[axis] = slice(s, e)
            src = [slice(None)] * len(shape)
            src[axis] = slice(at, at + e - s)
            full[tuple(idx)] = piece[tuple(src)]
            at += e - s
    return full


# ---------------------------------------------------------------- expected communication


def needed_blocks(allowed: np.ndarray, rows, bkv: int) -> np.ndarray:
    """bool [C]: key blocks some allowed pair of these query rows falls in."""
    seq_kv = allowed.shape[-1]
    cols = -(-seq_kv // bkv)
    hit = allowed[:, :, rows].any(axis=(0, 1, 2)) if len(rows) else np.zeros(seq_kv, bool)
    padded = np.zeros(cols * bkv, dtype=bool)
    padded[:seq_kv] = hit
    return padded.reshape(cols, bkv).any(axis=1)


def run_tokens(seg, blocks: np.ndarray, bkv: int, gap: int) -> int:
    """Tokens of seg's needed key blocks, gaps shorter than `gap` blocks filled in."""
    s, e = seg
    if e <= s:
        return 0
    idx = [c for c in range(s // bkv, -(-e // bkv)) if blocks[c]]
    total, first, last = 0, None, None
    for c in idx + [None]:
        if c is not None and last is not None and c - last - 1 < gap:
            last = c
            continue
        if first is not None:
            total += min((last + 1) * bkv, e) - first * bkv
        first = last = c
    return total


def expected_ring(c: PCase, allowed, rngs):
    """Per rank: (bytes sent, bytes a sabi-blind ring sends, steps with an attended pair)."""
    world, (_, bkv) = len(rngs), c.block_shape
    rows = [np.concatenate([np.arange(s, e) for s, e in segs]) for segs in rngs]
    need = [needed_blocks(allowed, r, bkv) for r in rows]
    token = 2 * c.batch * (c.kv_heads or c.heads) * c.head_dim * np.dtype(_np_dtype(c.dtype)).itemsize
    sent, dense, steps = [0] * world, [0] * world, [0] * world
    for k in range(world):
        own = np.zeros_like(need[0])
        for s, e in rngs[k]:
            own[s // bkv:-(-e // bkv)] |= e > s
        for t in range(world):
            holder = (k + t) % world
            steps[holder] += bool((need[holder] & own).any())
            if t == world - 1:
                continue
            later = np.zeros_like(need[0])
            for t2 in range(t + 1, world):
                later |= need[(k + t2) % world]
            sent[holder] += sum(run_tokens(seg, later, bkv, RUN_GAP) for seg in rngs[k]) * token
            dense[holder] += sum(e - s for s, e in rngs[k]) * token
    return sent, dense, steps


def expected_ulysses(c: PCase, allowed, rngs):
    world, heads, nkv = len(rngs), c.heads, c.kv_heads or c.heads
    item = np.dtype(_np_dtype(c.dtype)).itemsize
    per, group = heads // world, heads // nkv
    mine = [list(range(r * per, (r + 1) * per)) for r in range(world)]
    kvs = [sorted({h // group for h in m}) for m in mine]
    toks = [np.concatenate([np.arange(s, e) for s, e in segs]) for segs in rngs]
    sent, dense = [0] * world, [0] * world
    for r in range(world):
        a = allowed[:, mine[r]]
        for p in range(world):
            if p == r:
                continue
            qn, kn = a[:, :, toks[p]].any(), a[..., toks[p]].any()
            q_bytes = c.batch * per * len(toks[p]) * c.head_dim * item
            kv_bytes = 2 * c.batch * len(kvs[r]) * len(toks[p]) * c.head_dim * item
            back = q_bytes + c.batch * per * len(toks[p]) * 4  # output + float32 lse
            sent[p] += q_bytes * qn + kv_bytes * kn
            sent[r] += back * qn
            dense[p] += q_bytes + kv_bytes
            dense[r] += back
    return sent, dense


def _np_dtype(dtype: str):
    return bounds.numpy_dtype(dtype)


# ---------------------------------------------------------------------------------- the runs


def run_case(pool: Pool, c: PCase, sabi_override=None):
    q, k, v, kwargs = build(c)
    if sabi_override is not None:
        kwargs = dict(kwargs, sabi=sabi_override)
    rngs = ranges(c, pool.world)
    axis = _seq_axis(c.layout)
    per_rank = [{"query": split(q, segs, axis), "key": split(k, segs, axis), "value": split(v, segs, axis),
                 "dtype": c.dtype, "kwargs": dict(kwargs, scheme=c.scheme, sharding=c.sharding)}
                for segs in rngs]
    results = pool.run("attend", per_rank)
    out = join([r["out"] for r in results], rngs, axis, c.seq)
    lse = join([r["lse"] for r in results], rngs, 2, c.seq)
    return q, k, v, kwargs, rngs, out, lse, [r["stats"] for r in results]


def check_case(pool: Pool, c: PCase):
    q, k, v, kwargs, rngs, out, lse, stats = run_case(pool, c)
    t = bounds.truth(q, k, v, c.dtype, **kwargs)
    bounds.assert_within(out, t, c.layout, lse, what=f"{c.name} (sharded, {pool.world} ranks)")

    # The single-process call on the whole sequence: both are within the row's bound of the
    # oracle, so they differ by at most twice it (the partial results are rounded to the dtype
    # before the merge, one more rounding than the single call makes: bf16 rows differ by an ulp).
    tq, tk, tv = (torch.from_numpy(x).to(getattr(torch, c.dtype)) for x in (q, k, v))
    single, _ = blitz_sparse_attention(tq, tk, tv, **kwargs)
    single = bounds.to_bnsd(single.to(torch.float64).numpy(), c.layout, c.heads)
    ours = bounds.to_bnsd(out, c.layout, c.heads)
    err = np.abs(ours - single).max(axis=-1)
    tol = 2 * (bounds.K[c.dtype] * np.abs(t.base_out - t.out).max(axis=-1) + bounds.ATOL[c.dtype]
           + bounds.RTOL[c.dtype] * np.abs(t.out).max(axis=-1))
    worst = np.unravel_index(int(np.argmax(err / tol)), err.shape)
    assert (err <= tol).all(), f"{c.name}: row {worst} differs from the single-process call by {err[worst]:.3g}"

    # Communication: bytes and steps from the oracle's token mask (an explicit mask is not
    # inspected by the plan, so its tiles count by sabi, lengths and mode alone).
    plain = {key: val for key, val in kwargs.items() if key != "atten_mask"}
    if c.mask:
        plain["sparse_mode"] = 0
    allowed = oracle.allowed(q, k, v, **plain)
    if c.scheme == "ring":
        sent, dense, steps = expected_ring(c, allowed, rngs)
        assert [s.steps_computed for s in stats] == steps
        assert [s.steps_computed + s.steps_skipped for s in stats] == [pool.world] * pool.world
    else:
        sent, dense = expected_ulysses(c, allowed, rngs)
    assert [s.bytes_sent for s in stats] == sent
    assert [s.bytes_skipped for s in stats] == [d - s for d, s in zip(dense, sent)]
    return stats


@pytest.fixture(scope="module")
def pool2():
    pool = Pool(2)
    yield pool
    pool.close()


@pytest.mark.parametrize("case", CASES_2, ids=[c.name for c in CASES_2])
def test_two_ranks(pool2, case):
    stats = check_case(pool2, case)
    if case.pattern in ("causal", "band") and case.scheme == "ring" and case.sharding == "contiguous":
        assert sum(s.bytes_skipped for s in stats) > 0, "a causal / band ring must skip a transfer"


def test_dropped_tile_is_caught(pool2):
    """The bound the cases use rejects a sharded run that loses one tile of rank 1's rows."""
    c = PCase("drop", pattern="random", dtype="bfloat16")
    q, k, v, kwargs = build(c)
    dropped = oracle.to_int64(kwargs["sabi"])
    row = 600 // c.block_shape[0]  # a query block of rank 1
    dropped[0, 0, row, 0] = -1
    *_, out, lse, _ = run_case(pool2, c, sabi_override=dropped)
    t = bounds.truth(q, k, v, c.dtype, **kwargs)
    with pytest.raises(AssertionError, match="out row"):
        bounds.assert_within(out, t, c.layout, lse)


def test_zigzag_ranges():
    """Zig-zag: 2P chunks of lcm(bq, bkv) multiples, rank r gets chunks r and 2P-1-r."""
    assert shard_ranges(1000, 2, block_shape=(64, 128), sharding="zigzag") == (
        ((0, 256), (768, 1000)), ((256, 512), (512, 768)))
    assert shard_ranges(1000, 4, block_shape=(64, 128)) == (
        ((0, 256),), ((256, 512),), ((512, 768),), ((768, 1000),))


def test_mismatched_arguments_raise_on_every_rank(pool2):
    """Ranks passing different sabi get ParallelError on every rank, not a hang."""
    c = PCase("mismatch", pattern="random")
    q, k, v, kwargs = build(c)
    rngs = ranges(c, 2)
    per_rank = []
    for r, segs in enumerate(rngs):
        kw = dict(kwargs, sabi=S.random_pattern(1, 2, c.seq, c.seq, 0.5, block_shape=c.block_shape, seed=r))
        per_rank.append({"query": split(q, segs, 2), "key": split(k, segs, 2), "value": split(v, segs, 2),
                         "dtype": c.dtype, "kwargs": kw})
    pool2.wait_ready()
    pool2.submit("attend", per_rank)
    answers = pool2.collect()
    assert all(s == "error" and "ParallelError" in v and "different global arguments" in v
               for s, v in answers), answers


def test_failed_rank_makes_the_others_raise():
    """Rank 1 passes the handshake then exits (one group) or hangs (another group, started at
    the same time to share the start-up) before its first transfer: rank 0 raises
    ParallelError, at once for the exit and within the timeout for the hang, never waits on."""
    timeout = 4.0
    pools = {how: Pool(2, group_timeout=timeout) for how in ("exit", "hang")}
    try:
        c = PCase("victim")
        q, k, v, kwargs = build(c)
        for pool in pools.values():
            pool.wait_ready()
        for how, pool in pools.items():
            for r, segs in enumerate(ranges(c, 2)):
                pool.tasks[r].put(("die_or_hang", {
                    "query": split(q, segs, 2), "key": split(k, segs, 2), "value": split(v, segs, 2),
                    "dtype": c.dtype, "kwargs": dict(kwargs, timeout=timeout), "victim": 1, "how": how}))
        for how, pool in pools.items():
            rank, status, value = pool.results.get(timeout=120)
            assert rank == 0 and status == "ok", (how, rank, status, value)
            kind, message, seconds = value
            assert kind == "ParallelError", (how, kind, message)
            # The exit should be seen at once and the hang after `timeout`;
            # the slack is for a loaded machine, where the victim may reach its exit point late.
            assert seconds < timeout + 30, (how, seconds, message)
    finally:
        for pool in pools.values():
            pool.close(force=True)


@pytest.fixture(scope="module")
def pool4():
    pool = Pool(4)
    yield pool
    pool.close()


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES_4, ids=[c.name for c in CASES_4])
def test_four_ranks(pool4, case):
    check_case(pool4, case)


@pytest.mark.parametrize("kind, expected", [
    ("numpy", ["TypeError", "TypeError"]),
    ("unaligned", ["ValueError", "ValueError"]),
    ("one_rank", ["ParallelError", "ParallelError"]),
])
def test_bad_input_raises_on_every_rank(pool2, kind, expected):
    """Bad input raises a clear exception on every rank (never a hang): numpy shards, a shard
    boundary off the block grid, and shapes that differ on one rank only."""
    answers = pool2.run("bad_call", [{"kind": kind}, {"kind": kind}])
    assert [a[0] for a in answers] == expected, answers


def test_needs_an_initialised_group():
    from blitz_acl.parallel import sequence_parallel_attention

    if dist.is_initialized():
        pytest.skip("this process already has a process group")
    q = torch.zeros(1, 1, 64, 32)
    with pytest.raises(RuntimeError, match="init_process_group"):
        sequence_parallel_attention(q, q, q)
    with pytest.raises(ValueError, match="scheme"):
        sequence_parallel_attention(q, q, q, scheme="tree")

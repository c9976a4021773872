"""Sequence-parallel attention on Ascend: 2 ranks, one NPU each, HCCL (tests/test_parallel.py's
cases on torch_npu tensors, against the float64 oracle within tests/bounds.py).

Marked `npu`; skips with the reason when torch_npu, two NPUs or the custom-op package are
missing (nothing is probed at import).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from test_npu_device import _npu_state  # noqa: E402

pytestmark = pytest.mark.npu

CASE_NAMES = ("dense_ring", "random_ulysses_gqa", "causal_ring_zigzag", "uneven_lengths_ring")


@pytest.fixture(scope="module")
def hccl_pool():
    reason = _npu_state()
    if reason:
        pytest.skip(reason)
    import torch

    if torch.npu.device_count() < 2:
        pytest.skip(f"needs 2 NPUs, found {torch.npu.device_count()}")
    from parallel_pool import Pool

    pool = Pool(2, backend="hccl")
    yield pool
    pool.close()


@pytest.mark.parametrize("name", CASE_NAMES)
def test_two_npus(hccl_pool, name):
    import bounds
    import test_parallel as tp

    c = next(c for c in tp.CASES_2 if c.name == name)
    if c.dtype == "float32":
        pytest.skip("the NPU kernel takes float16 / bfloat16")
    q, k, v, kwargs = tp.build(c)
    rngs = tp.ranges(c, 2)
    axis = tp._seq_axis(c.layout)
    per_rank = [{"query": tp.split(q, s, axis), "key": tp.split(k, s, axis), "value": tp.split(v, s, axis),
                 "dtype": c.dtype, "device": "npu",
                 "kwargs": dict(kwargs, scheme=c.scheme, sharding=c.sharding)} for s in rngs]
    results = hccl_pool.run("attend", per_rank, limit=300)
    out = tp.join([r["out"] for r in results], rngs, axis, c.seq)
    lse = tp.join([r["lse"] for r in results], rngs, 2, c.seq)
    t = bounds.truth(q, k, v, c.dtype, **kwargs)
    bounds.assert_within(out, t, c.layout, lse, what=f"{name} on 2 NPUs")

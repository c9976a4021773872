"""Every "sparse" case is sparse: the measured tile density of each case whose sabi claims to
skip tiles is below what its kind and `sparsity` claim, measured by the oracle's own reading
of sabi. Also the sabi of the NPU suite (tests/npu/patterns.py), which skips here otherwise.

Claims (C = key blocks, R = query blocks):
- random / shuffled / empty_rows / narrow: the builder keeps round(C (1 - sparsity)) blocks a
  row, so density <= 1 - sparsity + 1/(2C);
- frame: the same on the rows the rule does not make dense, plus its FRAME_DENSE_ROWS + 1 dense
  rows: density <= 1 - sparsity + 1/(2C) + 30/R, and the frame rule must leave room: its forced
  9 blocks fewer than the kept ones, and the dense rows at most a quarter of R;
- band: at most 3 blocks a row (diagonal +- 1): density <= 3/C;
- causal: only the tiles the sparse_mode's causal token rule touches.
"""

from pathlib import Path
import sys

import numpy as np
import pytest

import oracle
from cases import CASES

sys.path.insert(0, str(Path(__file__).resolve().parent / "npu"))
import patterns  # noqa: E402  (tests/npu/patterns.py)

FRAME_DENSE_ROWS = 30  # rows 0..28 and the last one (CANN_FACTS.md, blocks_optimized_batched)
FRAME_FORCED = 9  # key blocks 0..7 and the last
SPARSE_KINDS = ("random", "shuffled", "empty_rows", "narrow", "frame", "band", "causal")


def tile_density(p: oracle.Problem) -> float:
    """Share of the R x C tiles that sabi selects (valid distinct entries), over its rows."""
    s = p.sabi
    _, _, _, seq_q, seq_kv, _ = p.dims
    bq, bkv = p.block_shape
    cols = -(-seq_kv // bkv)
    picked = np.zeros(s.shape[:3] + (cols + 1,), bool)
    np.put_along_axis(picked, np.where((s >= 0) & (s < cols), s, cols), True, axis=-1)
    return float(picked[..., :cols].mean())


def _causal_tiles(p: oracle.Problem) -> float:
    """Share of tiles holding a token the mode's causal rule allows (no sabi)."""
    from dataclasses import replace

    a = oracle.allowed_of(replace(p, sabi=None))
    bq, bkv = p.block_shape
    _, _, _, seq_q, seq_kv, _ = p.dims
    r, c = -(-seq_q // bq), -(-seq_kv // bkv)
    pad = np.zeros(a.shape[:2] + (r * bq, c * bkv), bool)
    pad[..., :seq_q, :seq_kv] = a
    return float(pad.reshape(a.shape[:2] + (r, bq, c, bkv)).any(axis=(3, 5)).mean())


def claim(kind: str, sparsity: float, p: oracle.Problem) -> float:
    _, _, _, seq_q, seq_kv, _ = p.dims
    bq, bkv = p.block_shape
    rows, cols = -(-seq_q // bq), -(-seq_kv // bkv)
    if kind in ("random", "shuffled", "empty_rows", "narrow"):
        return 1 - sparsity + 1 / (2 * cols)
    if kind == "frame":
        assert round(cols * (1 - sparsity)) > FRAME_FORCED, "frame: forced blocks swallow the sparsity"
        assert FRAME_DENSE_ROWS <= rows / 4, "frame: dense rows are most of the rows"
        return 1 - sparsity + 1 / (2 * cols) + FRAME_DENSE_ROWS / rows
    if kind == "band":
        return 3 / cols
    if kind == "causal":
        return _causal_tiles(p)
    raise ValueError(kind)


SPARSE = [c for c in CASES if c.sabi in SPARSE_KINDS]


@pytest.mark.parametrize("case", SPARSE, ids=[c.name for c in SPARSE])
def test_sparse_case_is_as_sparse_as_it_claims(case):
    i = case.build()
    p = oracle.parse(i.query, i.key, i.value, **i.kwargs)
    measured, claimed = tile_density(p), claim(case.sabi, case.sparsity, p)
    assert measured < 1.0, f"{case.name}: every tile selected"
    assert measured <= claimed, f"{case.name}: density {measured:.3f} > claimed {claimed:.3f}"


def test_every_sabi_kind_is_checked():
    assert {c.sabi for c in CASES} - {None, "dense_pattern"} <= set(SPARSE_KINDS)
    assert len(SPARSE) >= 15


@pytest.mark.parametrize("spec", patterns.SPARSE_SPECS, ids=[s.name for s in patterns.SPARSE_SPECS])
def test_npu_suite_sabi_is_as_sparse_as_it_claims(spec):
    sabi = spec.sabi()
    s = spec.seq
    zeros = np.zeros((1, 1, s, 1))  # the oracle reads shapes only
    q = np.broadcast_to(zeros, (spec.batch, spec.heads, s, 1))
    p = oracle.parse(q, q, q, sabi)
    measured, claimed = tile_density(p), claim(spec.kind, spec.sparsity, p)
    assert measured <= claimed, f"{spec.name}: density {measured:.3f} > claimed {claimed:.3f}"

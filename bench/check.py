"""Outputs_equal: our output against the reference run with the equivalent mask.

Two methods, chosen by cost:

- "full": every output row, against torch SDPA in float32 on the same (already rounded) inputs,
  with the token mask that the sabi selects (key block listed in the query block's row). The
  mask is built one chunk of query rows at a time, so memory stays at chunk x Skv; the cost is
  that of dense fp32 attention, so it is used while that stays under FULL_CHECK_MAX_FLOPS.
- "sample": a few query blocks (the first, the last and SAMPLE_RANDOM_BLOCKS others, fixed
  seed), against blitz_acl's float64 reference (device="reference") on exactly those rows:
  the query rows of block i with sabi row i are a complete, smaller problem.

Query rows whose sabi row selects nothing are expected to be zeros (DESIGN.md), which a masked
SDPA would turn into NaN; they are compared with zeros.

Tolerance: max |ours - reference| over all checked elements, inputs of unit variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.flops import block_masks, ceil_div

# max abs error allowed per input dtype (unit-variance inputs, outputs of order 1): a few units
# in the last place of each format after a softmax over thousands of keys.
TOLERANCE = {"bfloat16": 2.5e-2, "float16": 4e-3, "float32": 1e-4}
# Dense fp32 attention costs at most this many FLOPs per sparsity for a "full" check (about
# 10 s on a 2-core AVX-512 machine); beyond it the bench samples query blocks.
FULL_CHECK_MAX_FLOPS = 2.0e12
CHUNK_ROWS = 2048  # query rows per masked-SDPA call: bounds the mask to CHUNK_ROWS x Skv
SAMPLE_RANDOM_BLOCKS = 2  # query blocks checked besides the first and the last
SAMPLE_SEED = 4321


@dataclass(frozen=True)
class CheckResult:
    outputs_equal: bool
    max_abs_err: float
    tolerance: float
    method: str  # "full" or "sample"
    rows_checked: int  # query rows per (batch, head)
    reference: str  # what the output was compared with

    def as_dict(self) -> dict:
        return {
            "outputs_equal": self.outputs_equal,
            "max_abs_err": self.max_abs_err,
            "tolerance": self.tolerance,
            "method": self.method,
            "rows_checked": self.rows_checked,
            "reference": self.reference,
        }


def choose_method(requested: str, batch: int, heads: int, seq_q: int, seq_kv: int, head_dim: int) -> str:
    if requested != "auto":
        return requested
    dense_flops = 4 * head_dim * batch * heads * seq_q * seq_kv
    return "full" if dense_flops <= FULL_CHECK_MAX_FLOPS else "sample"


def _to_cpu_float(t):
    return t.detach().to("cpu").float()


def _broadcast_index(index: int, size: int) -> int:
    return 0 if size == 1 else index


def check_full(ours, query, key, value, case, block_shape, scale: float, dtype: str) -> CheckResult:
    """Every row of `ours` [B, N, Sq, D] against fp32 SDPA masked as `case` says."""
    import torch
    import torch.nn.functional as F

    batch, heads, seq_q, _ = query.shape
    kv_heads, seq_kv = key.shape[1], key.shape[2]
    bq, bkv = block_shape
    group = heads // kv_heads
    masks = torch.from_numpy(block_masks(case.sabi, seq_kv, bkv))
    key_block = torch.arange(seq_kv) // bkv
    key_pos = torch.arange(seq_kv)
    worst = 0.0
    for b in range(batch):
        for h in range(heads):
            q = _to_cpu_float(query[b, h])
            k = _to_cpu_float(key[b, h // group])
            v = _to_cpu_float(value[b, h // group])
            out = _to_cpu_float(ours[b, h])
            for start in range(0, seq_q, CHUNK_ROWS):
                stop = min(start + CHUNK_ROWS, seq_q)
                tiles = masks[_broadcast_index(b, masks.shape[0]), _broadcast_index(h, masks.shape[1])]
                query_pos = torch.arange(start, stop)
                mask = tiles[query_pos // bq][:, key_block]  # [rows, Skv], True = attend
                if case.causal_offset is not None:
                    mask &= key_pos[None, :] <= query_pos[:, None] + case.causal_offset
                expected = F.scaled_dot_product_attention(
                    q[None, None, start:stop], k[None, None], v[None, None], attn_mask=mask, scale=scale
                )[0, 0]
                expected[~mask.any(dim=1)] = 0.0  # rows with no allowed key: zeros, not NaN
                worst = max(worst, float((out[start:stop] - expected).abs().max()))
    tol = TOLERANCE[dtype]
    return CheckResult(worst <= tol, worst, tol, "full", seq_q, "torch SDPA float32, masked")


def sample_query_blocks(n_rows: int) -> list:
    """The first and last query block and SAMPLE_RANDOM_BLOCKS others (fixed seed)."""
    picked = {0, n_rows - 1}
    inner = np.arange(1, max(n_rows - 1, 1))
    if inner.size:
        rng = np.random.default_rng(SAMPLE_SEED)
        picked.update(int(i) for i in rng.choice(inner, min(SAMPLE_RANDOM_BLOCKS, inner.size), replace=False))
    return sorted(picked)


def check_sample(ours, query, key, value, case, block_shape, scale: float, dtype: str) -> CheckResult:
    """Sampled query blocks of `ours` against the float64 reference on the same rows."""
    import torch

    from blitz_acl import blitz_sparse_attention

    _, heads, seq_q, _ = query.shape
    seq_kv = key.shape[2]
    bq, _ = block_shape
    key32, value32 = _to_cpu_float(key), _to_cpu_float(value)
    blocks = sample_query_blocks(ceil_div(seq_q, bq))
    worst = 0.0
    rows_checked = 0
    for i in blocks:
        start, stop = i * bq, min((i + 1) * bq, seq_q)
        rows_checked += stop - start
        sabi_rows = np.ascontiguousarray(case.sabi[..., i : i + 1, :])
        # Query block i alone is a problem of its own; the causal rule "j <= i + o" of the whole
        # problem is passed as an explicit mask of the block's rows (1 = masked out).
        mode_args = {}
        if case.causal_offset is not None:
            query_pos = np.arange(start, stop)[:, None]
            mode_args["atten_mask"] = torch.from_numpy(np.arange(seq_kv)[None, :] > query_pos + case.causal_offset)
        expected = blitz_sparse_attention(
            _to_cpu_float(query[:, :, start:stop]), key32, value32, sabi_rows,
            num_heads=heads, input_layout="BNSD", scale_value=scale, block_shape=tuple(block_shape),
            device="reference", **mode_args,
        )
        expected = torch.as_tensor(np.asarray(expected) if not torch.is_tensor(expected) else expected)
        got = _to_cpu_float(ours[:, :, start:stop])
        worst = max(worst, float((got - expected.float()).abs().max()))
    tol = TOLERANCE[dtype]
    return CheckResult(worst <= tol, worst, tol, "sample", rows_checked, "blitz_acl float64 reference")


def check(method: str, ours, query, key, value, case, block_shape, scale: float, dtype: str) -> CheckResult:
    """Outputs_equal of `ours` for the pattern case (sabi, token mask) by `method`."""
    run = {"full": check_full, "sample": check_sample}[method]
    return run(ours, query, key, value, case, block_shape, scale, dtype)

"""What the NPU kernel supports, and the sabi form it is given: pure functions on an AttentionCall.

The custom op's tiling (kernel_src/npu/op_host/tiling_plan.cpp) rejects the same cases; checking
here first gives the caller a Python exception naming the argument instead of a CANN status,
and lets these rules be tested on machines without an NPU.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import limits
from ..call import AttentionCall

# Block shapes, head dims and the sabi pad: the spec's limits (blitz_acl/limits.py), which the
# NPU tiling reads too (kernel_src/common/op_limits.h).
PAD = limits.SABI_PAD
MAX_KV_BLOCKS = PAD - 1  # uint16 indices; PAD is "no block"
MAX_SPARSE_MODE = 4  # token masks 0-4 (DESIGN.md): explicit atten_mask, causal, band


def check_supported(call: AttentionCall) -> None:
    """Raises NotImplementedError / ValueError for what the NPU kernel cannot compute.

    Token masks are supported: sparse_mode 0/1 with an explicit atten_mask (any accepted shape;
    the binding passes it contiguous), 2-4 from indices, with per-batch actual lengths.
    """
    if not 0 <= call.sparse_mode <= MAX_SPARSE_MODE:
        raise NotImplementedError(
            f"device='npu' supports sparse_mode 0-{MAX_SPARSE_MODE}, got {call.sparse_mode}")
    d = call.head_dim
    if d < limits.NPU_HEAD_DIM_MIN or d > limits.NPU_HEAD_DIM_MAX or d % limits.NPU_HEAD_DIM_ALIGN:
        raise ValueError(
            f"device='npu' supports head_dim a multiple of {limits.NPU_HEAD_DIM_ALIGN} in "
            f"[{limits.NPU_HEAD_DIM_MIN}, {limits.NPU_HEAD_DIM_MAX}], got {d}")
    bq, bkv = call.block_shape
    if not limits.block_shape_supported(bq, bkv):
        raise ValueError(f"block_shape={call.block_shape} is not supported by the NPU kernel: expected "
                         f"{limits.BLOCK_SHAPE_RULE}")
    kv_blocks = -(-call.seq_kv // bkv)
    if kv_blocks > MAX_KV_BLOCKS:
        raise ValueError(f"Skv / bkv gives {kv_blocks} key blocks; sabi's uint16 indices allow {MAX_KV_BLOCKS}")


def compact_sabi(sabi: Optional[np.ndarray], kv_blocks: int) -> Optional[np.ndarray]:
    """Rows as the original NPU kernel wants them: valid indices (< kv_blocks) sorted ascending,
    each once, right-padded with 0xFFFF. Same dims as the input; None stays None.

    The kernel itself skips 0xFFFF and out-of-range entries anywhere, but a repeated index would
    count a tile twice (validation catches that unless validate=False), so rows are deduplicated.
    """
    if sabi is None:
        return None
    s = np.array(sabi, dtype=np.uint16, copy=True)
    s[s >= kv_blocks] = PAD  # out of range (and PAD itself) -> PAD
    s.sort(axis=-1)
    if s.shape[-1] > 1:
        repeat = np.zeros(s.shape, dtype=bool)
        repeat[..., 1:] = (s[..., 1:] == s[..., :-1]) & (s[..., 1:] != PAD)
        s[repeat] = PAD
        s.sort(axis=-1)
    return np.ascontiguousarray(s)

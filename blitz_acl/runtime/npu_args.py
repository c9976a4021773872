"""What the NPU kernel supports, and the sabi form it is given: pure functions on an AttentionCall.

The custom op's tiling (kernel_src/npu/op_host/tiling_plan.cpp) rejects the same cases; checking
here first gives the caller a Python exception naming the argument instead of a CANN status,
and lets these rules be tested on machines without an NPU.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..call import AttentionCall

# Mirrors kernel_src/npu/op_host/tiling_plan.h.
HEAD_DIM_MIN, HEAD_DIM_MAX, HEAD_DIM_ALIGN = 16, 256, 16
BLOCK_Q = (64, 128, 256)
BLOCK_KV_STEP, BLOCK_KV_MAX = 64, 1024
MAX_KV_BLOCKS = 0xFFFE  # uint16 indices; 0xFFFF is "no block"
MAX_SPARSE_MODE = 4  # token masks 0-4 (DESIGN.md): explicit atten_mask, causal, band
PAD = 0xFFFF


def check_supported(call: AttentionCall) -> None:
    """Raises NotImplementedError / ValueError for what the NPU kernel cannot compute.

    Token masks are supported: sparse_mode 0/1 with an explicit atten_mask (any accepted shape;
    the binding passes it contiguous), 2-4 from indices, with per-batch actual lengths.
    """
    if not 0 <= call.sparse_mode <= MAX_SPARSE_MODE:
        raise NotImplementedError(
            f"device='npu' supports sparse_mode 0-{MAX_SPARSE_MODE}, got {call.sparse_mode}")
    d = call.head_dim
    if d < HEAD_DIM_MIN or d > HEAD_DIM_MAX or d % HEAD_DIM_ALIGN:
        raise ValueError(
            f"device='npu' supports head_dim a multiple of {HEAD_DIM_ALIGN} in [{HEAD_DIM_MIN}, "
            f"{HEAD_DIM_MAX}], got {d}")
    bq, bkv = call.block_shape
    if bq not in BLOCK_Q or bkv % BLOCK_KV_STEP or bkv > BLOCK_KV_MAX:
        raise ValueError(
            f"block_shape={call.block_shape} is not supported by the NPU kernel: expected bq in "
            f"{BLOCK_Q} and bkv a multiple of {BLOCK_KV_STEP} up to {BLOCK_KV_MAX}")
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

"""What the NPU kernel supports: pure functions on an AttentionCall (the sabi form it is given is
blitz_acl.sabi.compact, the one normal form, applied by npu.py / npu_sim.py).

The custom op's tiling (kernel_src/npu/op_host/tiling_plan.cpp) rejects the same cases; checking
here first gives the caller a Python exception naming the argument instead of a CANN status,
and lets these rules be tested on machines without an NPU.
"""

from __future__ import annotations

from .. import arrays, limits
from ..call import AttentionCall

# Every limit is the spec's (blitz_acl/limits.py), which the NPU tiling reads too
# (kernel_src/common/op_limits.h), and each refusal is worded by the spec (op_refusals.h there).
PAD = limits.SABI_PAD
MAX_KV_BLOCKS = limits.NPU_KV_BLOCKS_MAX
MAX_SPARSE_MODE = max(limits.SPARSE_MODES)


def check_supported(call: AttentionCall) -> None:
    """Raises NotImplementedError / ValueError for what the NPU kernel cannot compute, with the
    message the tiling gives for the same call.

    Token masks are supported: sparse_mode 0/1 with an explicit atten_mask (any accepted shape;
    the binding passes it contiguous), 2-4 from indices, with per-batch actual lengths.
    """
    if call.sparse_mode not in limits.SPARSE_MODES:
        raise NotImplementedError(limits.refuse_sparse_mode(call.sparse_mode))
    if not 1 <= call.num_heads <= limits.NPU_HEADS_MAX:
        raise ValueError(limits.refuse_npu_heads(call.num_heads))
    group = call.num_heads // call.num_key_value_heads
    if group > limits.NPU_GROUP_MAX:
        raise ValueError(limits.refuse_npu_group(group))
    if not 1 <= call.batch <= limits.NPU_BATCH_MAX:
        raise ValueError(limits.refuse_npu_batch(call.batch))
    if not limits.npu_head_dim_supported(call.head_dim):
        raise ValueError(limits.refuse_npu_head_dim(call.head_dim))
    bq, bkv = call.block_shape
    if not limits.block_shape_supported(bq, bkv):
        raise ValueError(limits.refuse_block_shape(bq, bkv, limits.NPU_TITLE))
    kv_blocks = -(-call.seq_kv // bkv)
    if kv_blocks > MAX_KV_BLOCKS:
        raise ValueError(limits.refuse_npu_kv_blocks(kv_blocks))
    if call.atten_mask is not None and arrays.dtype_name(call.atten_mask) not in limits.NPU_MASK_DTYPES:
        raise TypeError(limits.refuse_npu_mask_dtype())

"""The BlitzSparseAttention two-phase call, shared by the device modules.

`prepare` turns an AttentionCall plus its output buffers into descriptors and runs
aclnnBlitzSparseAttentionGetWorkspaceSize (its 27 parameters passed by name through the generated
builder, _op_args.py); `launch` runs the op on a stream. Both register
what they create with the CallScope, so nothing outlives the call on any path.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from .. import arrays, limits
from ..call import AttentionCall
from . import _op_args
from .descriptors import CallScope

LSE_DTYPE = "float32"


def output_shape(call: AttentionCall) -> Tuple[int, ...]:
    """attention_out's shape: the query's, in the output layout (BSND for BNSD_BSND)."""
    if call.output_layout != call.input_layout:  # the query's sizes in the output layout's order
        sizes = {"B": call.batch, "N": call.num_heads, "S": call.seq_q, "D": call.head_dim}
        return tuple(sizes[a] for a in limits.LAYOUT_AXES[call.output_layout])
    return arrays.shape(call.query)


def lse_shape(call: AttentionCall) -> Tuple[int, ...]:
    """[B, N, Sq]; for TND [N, T] (T = every batch's tokens, in the query's order)."""
    if limits.is_packed(call.input_layout):
        return (call.num_heads, arrays.shape(call.query)[0])
    return (call.batch, call.num_heads, call.seq_q)


def allocate_outputs(call: AttentionCall) -> Tuple[Any, Optional[Any]]:
    """attention_out (query's kind, dtype, device) and, if asked for, softmax_lse float32."""
    out = arrays.empty(output_shape(call), call.dtype, like=call.query)
    lse = arrays.empty(lse_shape(call), LSE_DTYPE, like=call.query) if call.return_lse else None
    return out, lse


def prepare(scope: CallScope, call: AttentionCall, out: Any, lse: Optional[Any]):
    """Descriptors for every argument, then GetWorkspaceSize: returns (executor, size).

    The executor is destroyed at scope exit unless `launch` consumes it.
    """
    sabi = None if call.sabi is None else np.ascontiguousarray(call.sabi, dtype=np.uint16)
    # Always passed: the C ABI reads NULL as the original's (128, 128), Python's default is (128, 512).
    block_shape = list(call.block_shape)
    ffi = scope.ffi
    size = ffi.new("uint64_t *")
    executor = ffi.new("aclOpExecutor **")
    # By name: the generated builder puts them in the prototype's order (unsupported inputs are
    # left out, so NULL; inner_precise is the spec's default: the CPU device always accumulates
    # in float32, the NPU reads it).
    args = _op_args.blitz_sparse_attention_get_workspace_size_args(
        ffi.NULL,
        query=scope.tensor(call.query), key=scope.tensor(call.key), value=scope.tensor(call.value),
        atten_mask=scope.tensor(call.atten_mask), sabi=scope.tensor(sabi),
        actual_seq_lengths=scope.int_array(call.actual_seq_lengths),
        actual_seq_lengths_kv=scope.int_array(call.actual_seq_lengths_kv),
        num_heads=call.num_heads, scale_value=call.scale_value, pre_tokens=call.pre_tokens,
        next_tokens=call.next_tokens, input_layout=scope.string(call.input_layout),
        num_key_value_heads=call.num_key_value_heads, sparse_mode=call.sparse_mode,
        softmax_lse_flag=call.return_lse, block_shape=scope.int_array(block_shape),
        attention_out=scope.tensor(out),
        softmax_lse=scope.tensor(lse),  # None (NULL) with the flag off: softmax_lse is OPTIONAL
        workspace_size=size, executor=executor)
    scope.library.call("aclnnBlitzSparseAttentionGetWorkspaceSize", *args)
    token = scope.on_exit("aclDestroyAclOpExecutor", executor[0])
    return (executor[0], token), int(size[0])


def launch(scope: CallScope, executor, workspace, workspace_size: int, stream) -> None:
    """Enqueues the op. The run call consumes the executor whatever its status (as in CANN)."""
    handle, token = executor
    status = scope.library.lib.aclnnBlitzSparseAttention(workspace, workspace_size, handle, stream)
    scope.cancel(token)
    scope.library.status.check(status, "aclnnBlitzSparseAttention")

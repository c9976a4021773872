"""BlitzSelectBlocks through a device library: descriptors, the two-phase call, the sabi back.

Both device libraries export the op: the CPU device's (libblitz_cpu.so, kernel_src/cpu/select)
and npu_sim's (libblitz_npu_sim.so: the NPU plan and the Ascend C kernel run through the
execution model, kernel_src/npu/op_kernel/select_kernel.h). The call is the same: its 22
parameters go by name through the generated builder (_op_args.py), the op runs on a stream of
its own and the binding synchronises before returning, as the attention's call does
(devices/cpu.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import arrays
from . import _op_args, cpu, library
from .descriptors import CallScope

SABI_DTYPE = "uint16"
# select_blocks' device -> the library that runs it (None: the default, the CPU device).
LIBRARIES = {None: library.CPU, "cpu": library.CPU, "npu_sim": library.NPU_SIM}


def _contiguous(x: Any) -> Any:
    """The NPU reads dense row-major tensors (its strides come from the layout)."""
    if arrays.is_torch(x):
        return x if x.is_contiguous() else x.contiguous()
    return np.ascontiguousarray(x)


def run(sel, device=None) -> Any:
    """The sabi [B, N, R, C] uint16 of a checked SelectCall (blitz_acl.block_select), of the
    query's kind, computed by `device`'s library (None / "cpu": the CPU device, "npu_sim")."""
    spec = LIBRARIES[device]
    lib = library.load(spec)
    cpu.ensure_device(lib)
    query, key = sel.query, sel.key
    if spec is library.NPU_SIM:
        query, key = _contiguous(query), _contiguous(key)
    sabi = arrays.empty(sel.sabi_shape, SABI_DTYPE, like=sel.query)
    ffi = lib.ffi
    with CallScope(lib) as scope:
        stream = scope.stream()
        size = ffi.new("uint64_t *")
        executor = ffi.new("aclOpExecutor **")
        args = _op_args.blitz_select_blocks_get_workspace_size_args(
            ffi.NULL,
            query=scope.tensor(query), key=scope.tensor(key),
            actual_seq_lengths=scope.int_array(sel.actual_seq_lengths),
            actual_seq_lengths_kv=scope.int_array(sel.actual_seq_lengths_kv),
            num_heads=sel.num_heads, num_key_value_heads=sel.num_key_value_heads,
            input_layout=scope.string(sel.input_layout), scale_value=sel.scale_value,
            block_shape=scope.int_array(list(sel.block_shape)), method=scope.string(sel.method),
            mass=sel.mass, top_k=sel.top_k, anchor_first=sel.anchors.first,
            anchor_diagonal=sel.anchors.diagonal, anchor_last=sel.anchors.last,
            share_kv_groups=sel.share_kv_groups, stride=sel.stride, sub_block=sel.sub_block,
            refine_below=sel.refine_below, sparse_mode=sel.sparse_mode, pre_tokens=sel.pre_tokens,
            next_tokens=sel.next_tokens, sabi=scope.tensor(sabi),
            workspace_size=size, executor=executor)
        scope.library.call("aclnnBlitzSelectBlocksGetWorkspaceSize", *args)
        token = scope.on_exit("aclDestroyAclOpExecutor", executor[0])
        workspace_size = int(size[0])
        workspace = scope.device_buffer(workspace_size)
        scope.on_exit("aclrtSynchronizeStream", stream)  # drains before the workspace is freed
        status = lib.lib.aclnnBlitzSelectBlocks(workspace, workspace_size, executor[0], stream)
        scope.cancel(token)  # the run call consumes the executor whatever its status
        lib.status.check(status, "aclnnBlitzSelectBlocks")
        cpu._synchronize(lib, stream, scope)
    return sabi

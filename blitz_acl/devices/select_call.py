"""BlitzSelectBlocks on the CPU device library: descriptors, the two-phase call, the sabi back.

The op is the CPU device's own (no NPU version yet); it runs on a stream of its own and the
binding synchronises before returning, as the attention's call does (runtime/cpu.py).
"""

from __future__ import annotations

from typing import Any

from .. import arrays
from . import cpu, library
from .descriptors import CallScope

SABI_DTYPE = "uint16"


def run(sel) -> Any:
    """The sabi [B, N, R, C] uint16 of a checked SelectCall (blitz_acl.block_select), of the
    query's kind."""
    lib = library.load(library.CPU)
    cpu.ensure_device(lib)
    sabi = arrays.empty(sel.sabi_shape, SABI_DTYPE, like=sel.query)
    ffi = lib.ffi
    with CallScope(lib) as scope:
        stream = scope.stream()
        size = ffi.new("uint64_t *")
        executor = ffi.new("aclOpExecutor **")
        scope.library.call(
            "aclnnBlitzSelectBlocksGetWorkspaceSize",
            scope.tensor(sel.query), scope.tensor(sel.key),
            scope.int_array(sel.actual_seq_lengths), scope.int_array(sel.actual_seq_lengths_kv),
            sel.num_heads, sel.num_key_value_heads, scope.string(sel.input_layout), sel.scale_value,
            scope.int_array(list(sel.block_shape)), scope.string(sel.method), sel.mass, sel.top_k,
            sel.anchors.first, sel.anchors.diagonal, sel.anchors.last, sel.share_kv_groups,
            sel.stride, sel.sub_block, sel.refine_below,
            scope.tensor(sabi), size, executor)
        token = scope.on_exit("aclDestroyAclOpExecutor", executor[0])
        workspace_size = int(size[0])
        workspace = scope.device_buffer(workspace_size)
        scope.on_exit("aclrtSynchronizeStream", stream)  # drains before the workspace is freed
        status = lib.lib.aclnnBlitzSelectBlocks(workspace, workspace_size, executor[0], stream)
        scope.cancel(token)  # the run call consumes the executor whatever its status
        lib.status.check(status, "aclnnBlitzSelectBlocks")
        cpu._synchronize(lib, stream, scope)
    return sabi

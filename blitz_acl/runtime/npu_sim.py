"""The npu_sim device: the NPU op's own sources run on the host through an execution model of the
Ascend C API (libblitz_npu_sim.so).

The library is the CPU device's aclnn layer with the NPU backend: GetWorkspaceSize runs the real
op_host tiling (its rejections raise AclError with the tiling's message), and the run launches
the real Ascend C kernel for every cube and vector core of a MIX_AIC_1_2 launch, as host threads,
with every copy, queue, event, buffer budget and alignment rule checked by the model (a
violation raises AclError naming the core, the API and the rule). It exists to test NPU kernel
changes without an NPU; it is slow (tens to hundreds of times slower than the CPU device: every
vector instruction is an interpreted loop) and says nothing about NPU timing.

Same binding path as the CPU device (cpu.run, op_call), with the inputs prepared as the NPU
binding prepares them: contiguous tensors and compacted sabi rows. BLITZ_ACL_NPU_SIM_CORES sets
the vector core count (default 48, a 910B's); BLITZ_ACL_NPU_SIM_LIBRARY overrides the library.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional, Tuple

import numpy as np

from .. import arrays
from ..call import AttentionCall
from . import cpu, library, npu_args

# The model's own export (kernel_src/npu/sim/launcher/sim_backend.cpp), declared here rather
# than in the generated cdef because only this library has it.
_REPORT_CDEF = "int blitzNpuSimLastReport(const char **json);"
_report_lib = None


def _contiguous(x: Any) -> Any:
    if x is None:
        return None
    if arrays.is_torch(x):
        return x if x.is_contiguous() else x.contiguous()
    return np.ascontiguousarray(x)


def run(call: AttentionCall) -> Tuple[Any, Optional[Any]]:
    """(attention_out, softmax_lse or None) for a validated call on host memory (fp16 / bf16)."""
    kv_blocks = -(-call.seq_kv // call.block_shape[1])
    call = dataclasses.replace(
        call, query=_contiguous(call.query), key=_contiguous(call.key), value=_contiguous(call.value),
        atten_mask=_contiguous(call.atten_mask), sabi=npu_args.compact_sabi(call.sabi, kv_blocks))
    return cpu.run(call, library.NPU_SIM)


def last_report() -> dict:
    """The execution model's per-core counters of the last finished launch in this process:
    {"ok", "block_dim", "cube": [per cube core], "vector": [per vector core]}, each core a dict
    of gm_to_ub_bytes, ub_to_gm_bytes, gm_to_l1_bytes, l0c_to_gm_bytes, cube_flops,
    vector_elem_ops."""
    global _report_lib
    import cffi

    lib = library.load(library.NPU_SIM)
    if _report_lib is None:
        ffi = cffi.FFI()
        ffi.cdef(_REPORT_CDEF)
        # The same file dlopen'ed again: the loader hands back the already loaded copy.
        _report_lib = (ffi, ffi.dlopen(str(lib.path), ffi.RTLD_LOCAL | ffi.RTLD_NOW))
    ffi, handle = _report_lib
    text = ffi.new("const char **")
    lib.status.check(handle.blitzNpuSimLastReport(text), "blitzNpuSimLastReport")
    return json.loads(ffi.string(text[0]).decode())

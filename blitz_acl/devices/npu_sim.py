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
the vector core count (default 48, a 910B's), read at each call and passed down
(npu_sim_settings); BLITZ_ACL_NPU_SIM_LIBRARY overrides the library.

count_only() runs the same launch in the model's counting-only mode: every rule is checked and
every counter counted, but nothing is computed, so shapes far beyond what the numeric model can
run in minutes (the seed's S = 118806) can be counted. It returns the counters and nothing else:
the library refuses to complete such a launch as a result (its status says counting-only), and
blitz_sparse_attention never runs one.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Optional, Tuple

import numpy as np

from .. import arrays
from .. import sabi as sabi_format
from ..call import AttentionCall
from . import cpu, library, npu_args

# The library's message for a counting-only launch that passed every check (sim_backend.cpp).
_COUNTING_DONE = "counting-only launch (blitzNpuSimCountNextCall)"


def _contiguous(x: Any) -> Any:
    if x is None:
        return None
    if arrays.is_torch(x):
        return x if x.is_contiguous() else x.contiguous()
    return np.ascontiguousarray(x)


def _as_npu_sees_it(call: AttentionCall) -> AttentionCall:
    kv_blocks = -(-call.seq_kv // call.block_shape[1])
    return dataclasses.replace(
        call, query=_contiguous(call.query), key=_contiguous(call.key), value=_contiguous(call.value),
        atten_mask=_contiguous(call.atten_mask), sabi=sabi_format.compact(call.sabi, kv_blocks))


def run(call: AttentionCall) -> Tuple[Any, Optional[Any]]:
    """(attention_out, softmax_lse or None) for a validated call on host memory (fp16 / bf16)."""
    return cpu.run(_as_npu_sees_it(call), library.NPU_SIM)


def count_only(query, key, value, sabi=None, **kwargs) -> dict:
    """The execution model's counters of one launch in counting-only mode, and nothing else.

    Arguments as blitz_sparse_attention's (device is npu_sim). Every rule of the model is still
    checked (bounds, alignment, UB capacity, queue / event / pipe order, Matmul shapes and End);
    only the arithmetic is skipped, so no output exists: the library ends the launch with a
    counting-only status, which this function expects, and returns last_report() of it
    (counting_only True). A launch whose control flow would read computed data (masked modes:
    the running max of a row) cannot be counted this way and raises AclError saying so."""
    from .. import arguments
    from .status import AclError

    kwargs["device"] = "npu_sim"
    call = _as_npu_sees_it(arguments.normalize(query, key, value, sabi, **kwargs))
    lib = library.load(library.NPU_SIM)  # its own exports: library.NPU_SIM.own_cdef
    lib.call("blitzNpuSimCountNextCall", 1)
    try:
        cpu.run(call, library.NPU_SIM)
    except AclError as e:
        if _COUNTING_DONE not in (e.message or ""):
            raise
        report = last_report()
        if not (report["counting_only"] and report["ok"]):
            raise RuntimeError(f"counting-only launch reported {report['error']!r}") from e
        return report
    finally:
        lib.lib.blitzNpuSimCountNextCall(0)  # also when GetWorkspaceSize refused before arming was used
    raise RuntimeError("count_only: nothing was launched (an empty problem has nothing to count)")


def last_report() -> dict:
    """The execution model's report of the last finished launch in this process: {"ok", "error",
    "counting_only", "block_dim", "counters": {name: meaning}, "cube": [per cube core],
    "vector": [per vector core], "plan": the tiling's blocking and workspace}, each core a dict
    of the counters (bytes GM <-> UB / L1, copies, matmul calls, cube FLOPs, vector instructions,
    repeats and elements, flags, scalar reads)."""
    lib = library.load(library.NPU_SIM)
    text = lib.ffi.new("const char **")
    lib.call("blitzNpuSimLastReport", text)
    return json.loads(lib.ffi.string(text[0]).decode())

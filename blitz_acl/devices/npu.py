"""The NPU device: runs a call on an Ascend NPU through CANN and the custom-op package.

Same two-phase aclnn call as the CPU device (op_call), with torch_npu owning the device side:
  - tensors are passed by their data pointers (contiguous, ND storage format, on the query's
    NPU); sabi is compacted on the host (sorted, unique, right-padded) and copied to the NPU;
  - the workspace comes from torch_npu's caching allocator on the current stream, so its memory
    is not handed to later work before the kernel has finished with it (stream-ordered reuse,
    and record_stream marks the use explicitly);
  - the op runs on torch_npu's current stream, read right before the launch; nothing
    synchronises afterwards: the call is asynchronous like any torch_npu op;
  - aclInit / aclFinalize / aclrtSetDevice are never called: torch_npu owns CANN's process and
    device state (the launch runs inside `torch.npu.device(query's index)`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional, Tuple

import numpy as np

from .. import arrays
from .. import sabi as sabi_format
from ..call import AttentionCall
from . import npu_args, npu_library, op_call
from .descriptors import CallScope

ND_FORMAT = 2  # aclFormat ACL_FORMAT_ND, as torch_npu.get_npu_format reports it


class NpuCallScope(CallScope):
    """CallScope whose tensors live on one NPU: torch_npu tensors by pointer, numpy (sabi)
    uploaded first. Everything uploaded or made contiguous is kept alive for the call."""

    def __init__(self, library, device):
        super().__init__(library)
        self.device = device

    def tensor(self, x: Any):
        if x is None:
            return self.ffi.NULL
        if isinstance(x, np.ndarray):
            return self._host_array(x)
        if not arrays.is_torch(x):
            raise TypeError(f"expected a torch_npu tensor, got {type(x).__name__}")
        return self._npu_tensor(x)

    def _host_array(self, a: np.ndarray):
        """A small host array (sabi, uint16) copied to the NPU on the current stream."""
        import torch

        host = np.ascontiguousarray(a)
        if host.dtype != np.uint16:
            raise TypeError(f"only sabi (uint16) is uploaded from the host, got {host.dtype}")
        # torch has no general uint16 support on NPUs: move the bits as int16, describe as UINT16.
        t = self.keep(torch.from_numpy(host.view(np.int16)).to(self.device))
        return self._create_tensor(host.shape, "uint16", t.data_ptr())

    def _npu_tensor(self, t: Any):
        if t.device != self.device:
            raise ValueError(
                f"all tensors must be on the query's device {self.device}, got one on {t.device}")
        if t.requires_grad:
            t = t.detach()
        fmt = _npu_format(t)
        if fmt is not None and fmt != ND_FORMAT:
            raise ValueError(
                f"a tensor has NPU storage format {fmt} (a private format such as NZ); "
                "BlitzSparseAttention reads ND tensors: convert it with "
                "torch_npu.npu_format_cast(t, 2) first")
        if not t.is_contiguous():
            t = t.contiguous()
        self.keep(t)
        return self._create_tensor(tuple(t.shape), arrays.dtype_name(t), t.data_ptr())


def _npu_format(t: Any) -> Optional[int]:
    try:
        import torch_npu
    except ImportError:
        return None
    get_format = getattr(torch_npu, "get_npu_format", None)
    return None if get_format is None else int(get_format(t))


def _trivial(call: AttentionCall) -> Optional[Tuple[Any, Optional[Any]]]:
    """Outputs for Sq == 0 or Skv == 0 without a launch (empty tensors never reach aclnn)."""
    if call.seq_q and call.seq_kv:
        return None
    out, lse = op_call.allocate_outputs(call)
    out.zero_()
    if lse is not None:
        lse.fill_(-float("inf"))  # nothing attended: lse -inf, as on every device
    return out, lse


def run(call: AttentionCall) -> Tuple[Any, Optional[Any]]:
    """(attention_out, softmax_lse or None), enqueued on the current NPU stream."""
    npu_args.check_supported(call)
    trivial = _trivial(call)
    if trivial is not None:
        return trivial
    import torch
    import torch_npu  # noqa: F401  (registers torch.npu)

    library = npu_library.load()
    device = call.query.device
    kv_blocks = -(-call.seq_kv // call.block_shape[1])
    call = dataclasses.replace(call, sabi=sabi_format.compact(call.sabi, kv_blocks))  # the one normal form
    out, lse = op_call.allocate_outputs(call)
    with torch.npu.device(device.index):
        with NpuCallScope(library, device) as scope:
            executor, workspace_size = op_call.prepare(scope, call, out, lse)
            stream = torch.npu.current_stream(device)
            workspace = scope.ffi.NULL
            if workspace_size:
                buffer = scope.keep(torch.empty(workspace_size, dtype=torch.uint8, device=device))
                buffer.record_stream(stream)
                workspace = scope.ffi.cast("void *", buffer.data_ptr())
            # Read right before the launch: reading it flushes torch_npu's task queue, so the
            # inputs' producers are enqueued ahead of the kernel.
            handle = scope.ffi.cast("aclrtStream", stream.npu_stream)
            op_call.launch(scope, executor, workspace, workspace_size, handle)
    return out, lse

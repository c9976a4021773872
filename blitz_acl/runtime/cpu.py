"""The CPU device: runs a call on libblitz_cpu.so through the same aclnn calls as the NPU.

Each call gets its own stream; the binding synchronises before returning, so the workspace and
every buffer the kernel touches outlive the run (the stream is asynchronous, as on an NPU).
"""

from __future__ import annotations

import threading
from typing import Any, Optional, Tuple

from ..call import AttentionCall
from . import library, op_call
from .descriptors import CallScope

DEVICE_ID = 0  # the CPU device library has one device

_init_lock = threading.Lock()
_initialized = False
_thread = threading.local()


def _ensure_device(lib: library.Library) -> None:
    """aclInit once per process (tolerating an earlier aclInit), aclrtSetDevice once per thread."""
    global _initialized
    with _init_lock:
        if not _initialized:
            status = lib.lib.aclInit(lib.ffi.NULL)
            if status != lib.lib.ACL_ERROR_REPEAT_INITIALIZE:
                lib.status.check(status, "aclInit")
            _initialized = True
    if not getattr(_thread, "device_set", False):
        lib.call("aclrtSetDevice", DEVICE_ID)
        _thread.device_set = True


def run(call: AttentionCall) -> Tuple[Any, Optional[Any]]:
    """(attention_out, softmax_lse or None) for a validated call on host memory."""
    lib = library.load()
    _ensure_device(lib)
    out, lse = op_call.allocate_outputs(call)
    with CallScope(lib) as scope:
        stream = scope.stream()
        executor, workspace_size = op_call.prepare(scope, call, out, lse)
        workspace = scope.device_buffer(workspace_size)
        # Registered after the workspace, so on every path the stream drains before it is freed.
        scope.on_exit("aclrtSynchronizeStream", stream)
        op_call.launch(scope, executor, workspace, workspace_size, stream)
        lib.call("aclrtSynchronizeStream", stream)
    return out, lse

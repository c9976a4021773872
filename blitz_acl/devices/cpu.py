"""The CPU device: runs a call on libblitz_cpu.so through the same aclnn calls as the NPU.

Each call gets its own stream; the binding synchronises before returning, so the workspace and
every buffer the kernel touches outlive the run (the stream is asynchronous, as on an NPU).

Ctrl-C: a wait in C (with the GIL released) cannot run Python's signal handlers, so the main
thread waits in short slices (aclrtSynchronizeStreamWithTimeout), between which SIGINT raises
KeyboardInterrupt. The interrupted call cannot stop the kernel, which still writes the output
and uses the workspace; its scope (workspace, descriptors, stream, the arrays the kernel reads)
is handed to a closer thread, which releases it when the stream drains. At exit the process
waits for such abandoned calls. Other threads never receive signals and wait in one call.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from typing import Any, Optional, Tuple

from ..call import AttentionCall
from . import library, op_call
from .descriptors import CallScope
from .status import AclError

DEVICE_ID = 0  # the CPU device library has one device
# How often the main thread wakes while the stream runs; a Ctrl-C is handled within this.
WAIT_SLICE_MS = 50

_init_lock = threading.Lock()
_initialized = set()  # paths of the libraries aclInit ran in (each has its own runtime state)
_thread = threading.local()


def ensure_device(lib: library.Library) -> None:
    """aclInit once per process and library (tolerating an earlier aclInit), aclrtSetDevice
    once per thread and library, and this call's device settings (Library.pass_settings: kernel
    path, threads, memory capacity, npu_sim's vector cores) passed down for this thread. Called
    before every call; a documented hook for tests that call the library's raw entry points on a
    thread of their own."""
    with _init_lock:
        if lib.path not in _initialized:
            status = lib.lib.aclInit(lib.ffi.NULL)
            if status != lib.lib.ACL_ERROR_REPEAT_INITIALIZE:
                lib.status.check(status, "aclInit")
            _initialized.add(lib.path)
    devices_set = getattr(_thread, "devices_set", None)
    if devices_set is None:
        devices_set = _thread.devices_set = set()
    if lib.path not in devices_set:
        lib.call("aclrtSetDevice", DEVICE_ID)
        devices_set.add(lib.path)
    lib.pass_settings()


_ensure_device = ensure_device  # the old private name, for code written before it became a hook


class _Closer:
    """A daemon thread that releases the scopes of calls the main thread abandoned (Ctrl-C),
    each once its stream has drained."""

    def __init__(self):
        self._abandoned: "queue.SimpleQueue[Tuple[library.Library, Any, CallScope]]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._unfinished = 0  # abandoned calls whose scope is not closed yet
        self._finished = threading.Condition(self._lock)

    def adopt(self, lib: library.Library, stream, scope: CallScope) -> None:
        with self._lock:
            self._unfinished += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="blitz_acl-cpu-closer", daemon=True)
                self._thread.start()
        self._abandoned.put((lib, stream, scope.detach()))

    def _loop(self) -> None:
        while True:
            lib, stream, scope = self._abandoned.get()
            try:
                lib.call("aclrtSynchronizeStream", stream)
            except Exception:  # the caller is gone: nobody is left to report a kernel error to
                pass
            scope.close()
            with self._lock:
                self._unfinished -= 1
                self._finished.notify_all()

    def drain(self) -> None:
        """Waits until every abandoned call has been released (atexit: the kernel may still be
        writing into memory that interpreter shutdown would free)."""
        with self._lock:
            self._finished.wait_for(lambda: self._unfinished == 0)

    def pending(self) -> int:
        with self._lock:
            return self._unfinished


_closer = _Closer()


def _drain_at_exit() -> None:
    _closer.drain()


def _fresh_closer_in_child() -> None:
    # A fork()ed child has no closer thread (only the forking thread survives fork).
    global _closer
    _closer = _Closer()


atexit.register(_drain_at_exit)
os.register_at_fork(after_in_child=_fresh_closer_in_child)


def _drained_within(lib: library.Library, stream, milliseconds: int) -> bool:
    """Whether the stream drained within `milliseconds` (its own failure raises)."""
    try:
        lib.call("aclrtSynchronizeStreamWithTimeout", stream, milliseconds)
    except AclError as error:
        if error.status == lib.lib.ACL_ERROR_RT_STREAM_SYNC_TIMEOUT:
            return False
        raise
    return True


def _synchronize(lib: library.Library, stream, scope: CallScope) -> None:
    """aclrtSynchronizeStream(stream), interruptible by Ctrl-C on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        lib.call("aclrtSynchronizeStream", stream)
        return
    try:
        while not _drained_within(lib, stream, WAIT_SLICE_MS):
            pass
    except AclError:  # the stream's own failure: it has drained, the scope closes as usual
        raise
    except BaseException:  # KeyboardInterrupt between two slices: the kernel runs on
        _closer.adopt(lib, stream, scope)
        raise


def wait_for_abandoned_calls() -> None:
    """Blocks until every interrupted call's kernel has finished and its memory is released
    (what the process does at exit; a hook for tests)."""
    _closer.drain()


def abandoned_calls() -> int:
    """Interrupted calls whose kernel has not finished yet (their memory is still held)."""
    return _closer.pending()


def run(call: AttentionCall, spec: library.LibrarySpec = library.CPU) -> Tuple[Any, Optional[Any]]:
    """(attention_out, softmax_lse or None) for a validated call on host memory, run by the
    device library `spec` (the CPU device's by default; npu_sim passes its own)."""
    lib = library.load(spec)
    ensure_device(lib)
    out, lse = op_call.allocate_outputs(call)
    with CallScope(lib) as scope:
        stream = scope.stream()
        executor, workspace_size = op_call.prepare(scope, call, out, lse)
        workspace = scope.device_buffer(workspace_size)
        # Registered after the workspace, so on every path the stream drains before it is freed.
        scope.on_exit("aclrtSynchronizeStream", stream)
        op_call.launch(scope, executor, workspace, workspace_size, stream)
        _synchronize(lib, stream, scope)
    return out, lse

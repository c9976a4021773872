"""The CPU device: runs a call on libblitz_cpu.so through the same aclnn calls as the NPU.

Each call gets its own stream; the binding synchronises before returning, so the workspace and
every buffer the kernel touches outlive the run (the stream is asynchronous, as on an NPU).

Ctrl-C: aclrtSynchronizeStream blocks in C (with the GIL released), where Python cannot run
its signal handlers, so the main thread does not call it directly: a waiter thread does, and
the main thread waits on an Event in short slices, in which SIGINT raises KeyboardInterrupt at
once. The interrupted call cannot stop the kernel, which still writes the output and uses the
workspace; its scope (workspace, descriptors, stream, the arrays the kernel reads) is handed
to the waiter, which releases it when the stream drains. At exit the process waits for such
abandoned calls. Other threads never receive signals and synchronise directly.
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

DEVICE_ID = 0  # the CPU device library has one device
# How often the main thread wakes while the stream runs; a Ctrl-C is handled within this.
WAIT_SLICE_SECONDS = 0.05

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


class _SyncRequest:
    """One synchronisation the waiter thread performs for the main thread."""

    def __init__(self, lib: library.Library, stream):
        self.lib, self.stream = lib, stream
        self.done = threading.Event()
        self.error: Optional[BaseException] = None
        self.lock = threading.Lock()
        self.abandoned: Optional[CallScope] = None  # set when the main thread gave up waiting


class _Waiter:
    """A daemon thread that synchronises streams for the main thread, one at a time, and
    closes the scopes of calls the main thread abandoned."""

    def __init__(self):
        self._requests: "queue.SimpleQueue[_SyncRequest]" = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._unfinished = set()  # abandoned requests whose scope is not closed yet
        self._finished = threading.Condition(self._lock)

    def submit(self, request: _SyncRequest) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="blitz_acl-cpu-sync", daemon=True)
                self._thread.start()
        self._requests.put(request)

    def abandon(self, request: _SyncRequest, scope: CallScope) -> None:
        """Hands scope to the waiter (or closes it now if the stream already drained)."""
        with request.lock:
            if not request.done.is_set():
                with self._lock:
                    self._unfinished.add(request)
                request.abandoned = scope.detach()
                return
        scope.close()

    def _loop(self) -> None:
        while True:
            request = self._requests.get()
            try:
                request.lib.call("aclrtSynchronizeStream", request.stream)
            except BaseException as e:  # reported by the waiting thread
                request.error = e
            with request.lock:
                request.done.set()
                abandoned = request.abandoned
            if abandoned is not None:
                abandoned.close()
                with self._lock:
                    self._unfinished.discard(request)
                    self._finished.notify_all()

    def drain(self) -> None:
        """Waits until every abandoned call has been released (atexit: the kernel may still be
        writing into memory that interpreter shutdown would free)."""
        with self._lock:
            self._finished.wait_for(lambda: not self._unfinished)

    def pending(self) -> int:
        with self._lock:
            return len(self._unfinished)


_waiter = _Waiter()


def _drain_at_exit() -> None:
    _waiter.drain()


def _fresh_waiter_in_child() -> None:
    # A fork()ed child has no waiter thread (only the forking thread survives fork).
    global _waiter
    _waiter = _Waiter()


atexit.register(_drain_at_exit)
os.register_at_fork(after_in_child=_fresh_waiter_in_child)


def _synchronize(lib: library.Library, stream, scope: CallScope) -> None:
    """aclrtSynchronizeStream(stream), interruptible by Ctrl-C on the main thread."""
    if threading.current_thread() is not threading.main_thread():
        lib.call("aclrtSynchronizeStream", stream)
        return
    request = _SyncRequest(lib, stream)
    _waiter.submit(request)
    try:
        while not request.done.wait(WAIT_SLICE_SECONDS):
            pass
    except BaseException:
        _waiter.abandon(request, scope)
        raise
    if request.error is not None:
        raise request.error


def wait_for_abandoned_calls() -> None:
    """Blocks until every interrupted call's kernel has finished and its memory is released
    (what the process does at exit; a hook for tests)."""
    _waiter.drain()


def abandoned_calls() -> int:
    """Interrupted calls whose kernel has not finished yet (their memory is still held)."""
    return _waiter.pending()


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

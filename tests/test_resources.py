"""Resources: many calls (errors included) leave memory, threads, descriptors and the library's
live handles flat; a workspace that cannot be allocated raises a MemoryError cleanly.

The CPU device has a capacity like an NPU's memory: the machine's physical memory, or
BLITZ_ACL_CPU_MAX_ALLOC_BYTES when smaller, read by the binding at each call and passed down
(blitzCpuSetMemoryCapacity; the library reads no environment for it). Tests set it to make the
workspace allocation fail.
"""

import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

import blitz_acl
import oracle
from blitz_acl.devices import cpu, cpu_settings, status

CAPACITY_ENV = cpu_settings.CAPACITY_ENV
CALLS = 10_000
WARM_UP = 500
RSS_GROWTH_LIMIT = 8 * 2 ** 20
ALL_ZERO = {"tensors": 0, "int_arrays": 0, "executors": 0, "streams": 0, "allocations": 0}
BAD_ALLOC = 200000  # ACL_ERROR_BAD_ALLOC


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _count(path: str) -> int:
    return len(os.listdir(path))


def _settled_thread_count(expected: int, timeout_s: float = 2.0) -> int:
    """This process's thread count once exiting threads are gone. Each call's stream has a
    worker thread that is joined when the stream is destroyed, but the kernel may list a joined
    thread in /proc/self/task for a moment after pthread_join returns (its tid is cleared before
    the task is released); a leaked thread stays, so it still fails after the timeout."""
    deadline = time.monotonic() + timeout_s
    count = _count("/proc/self/task")
    while count != expected and time.monotonic() < deadline:
        time.sleep(0.01)
        count = _count("/proc/self/task")
    return count


@pytest.fixture
def capacity(lib, monkeypatch):
    """Sets the variable and passes it down as every call does (for tests that call aclrtMalloc
    themselves); afterwards the library is back to the physical memory, which the process's
    other tests' raw calls expect (the capacity is the device's, kept until the next call)."""

    def set_to(text: str) -> None:
        monkeypatch.setenv(CAPACITY_ENV, text)
        cpu.ensure_device(lib)

    yield set_to
    monkeypatch.delenv(CAPACITY_ENV, raising=False)
    cpu.ensure_device(lib)


def _small_problem():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 2, 70, 32), dtype=np.float32)
    k = rng.standard_normal((1, 2, 150, 32), dtype=np.float32)
    sabi = blitz_acl.sabi.random_pattern(1, 2, 70, 150, 0.5, block_shape=(64, 64), seed=0)
    bad = sabi.copy()
    bad[0, 1, 1, 0] = 9  # out of range: the library refuses it on every call
    return q, k, sabi, bad


def test_workspace_that_cannot_be_allocated_raises_memory_error(lib, monkeypatch, capacity):
    q, k, sabi, _ = _small_problem()
    monkeypatch.setenv(CAPACITY_ENV, "1")  # set, not passed down: the call itself passes it
    with pytest.raises(MemoryError) as info:
        blitz_acl.blitz_sparse_attention(q, k, k, sabi, block_shape=(64, 64), device="cpu")
    err = info.value
    assert isinstance(err, status.AclOutOfMemoryError) and err.status == BAD_ALLOC
    assert err.function == "aclrtMalloc"
    assert re.search(r"cannot allocate \d+ bytes: 0 bytes are in use and the device holds 1 \(the capacity set "
                     r"by blitzCpuSetMemoryCapacity\)", err.message), err.message
    assert lib.live_objects() == ALL_ZERO
    monkeypatch.delenv(CAPACITY_ENV)
    out = blitz_acl.blitz_sparse_attention(q, k, k, sabi, block_shape=(64, 64), device="cpu")
    expected = oracle.attention(q, k, k, sabi, block_shape=(64, 64))
    np.testing.assert_allclose(out, expected, atol=1e-4, rtol=0)


def test_a_capacity_is_exact(lib, monkeypatch, capacity):
    """The call's one device allocation is its workspace: a capacity of exactly its size runs
    the call, one byte less refuses it, so the value passed down is the one the device holds."""
    q, k, sabi, _ = _small_problem()
    monkeypatch.setenv(CAPACITY_ENV, "1")
    with pytest.raises(MemoryError) as info:
        blitz_acl.blitz_sparse_attention(q, k, k, sabi, block_shape=(64, 64), device="cpu")
    need = int(re.search(r"cannot allocate (\d+) bytes", info.value.message).group(1))
    monkeypatch.setenv(CAPACITY_ENV, str(need - 1))
    with pytest.raises(MemoryError, match=f"cannot allocate {need} bytes: .* the device holds {need - 1} "):
        blitz_acl.blitz_sparse_attention(q, k, k, sabi, block_shape=(64, 64), device="cpu")
    monkeypatch.setenv(CAPACITY_ENV, str(need))
    out = blitz_acl.blitz_sparse_attention(q, k, k, sabi, block_shape=(64, 64), device="cpu")
    np.testing.assert_allclose(out, oracle.attention(q, k, k, sabi, block_shape=(64, 64)), atol=1e-4, rtol=0)
    assert lib.live_objects() == ALL_ZERO


@pytest.mark.parametrize("text", ["lots", "0", "-5", "12 MiB", " 4096"])
def test_a_bad_capacity_is_a_python_error_naming_the_variable(lib, monkeypatch, capacity, text):
    q, k, sabi, _ = _small_problem()
    monkeypatch.setenv(CAPACITY_ENV, text)
    with pytest.raises(ValueError, match=re.escape(f'{CAPACITY_ENV}="{text}" is not a byte count: expected a '
                                                   "positive integer")) as info:
        blitz_acl.blitz_sparse_attention(q, k, k, sabi, block_shape=(64, 64), device="cpu")
    assert not isinstance(info.value, status.AclError)  # refused by the binding, before the library
    assert lib.live_objects() == ALL_ZERO


_PURE_C_CALLER = """
from blitz_acl.devices import library
lib = library.load()
ptr = lib.ffi.new("void **")
print(lib.lib.aclrtMalloc(ptr, 4096, lib.lib.ACL_MEM_MALLOC_HUGE_FIRST))
"""


def test_a_caller_that_never_passes_it_gets_the_physical_memory(lib):
    """The library reads no environment for its capacity: a C caller that never calls
    blitzCpuSetMemoryCapacity allocates as usual whatever the variable says."""
    env = dict(os.environ, **{CAPACITY_ENV: "1"})
    run = subprocess.run([sys.executable, "-c", _PURE_C_CALLER], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "0", run.stdout


def test_absurd_allocation_is_refused_before_malloc(lib):
    """Larger than the machine: BAD_ALLOC with the sizes, never a malloc of 2**62 bytes."""
    ptr = lib.ffi.new("void **")
    with pytest.raises(MemoryError, match=r"cannot allocate 4611686018427387904 bytes: .* physical memory"):
        lib.call("aclrtMalloc", ptr, 2 ** 62, lib.lib.ACL_MEM_MALLOC_HUGE_FIRST)
    assert ptr[0] == lib.ffi.NULL and lib.live_objects()["allocations"] == 0


def test_capacity_counts_live_allocations(lib, capacity):
    capacity("4096")
    first, second = lib.ffi.new("void **"), lib.ffi.new("void **")
    lib.call("aclrtMalloc", first, 3000, lib.lib.ACL_MEM_MALLOC_HUGE_FIRST)
    try:
        with pytest.raises(MemoryError, match="3000 bytes are in use"):
            lib.call("aclrtMalloc", second, 2000, lib.lib.ACL_MEM_MALLOC_HUGE_FIRST)
    finally:
        lib.call("aclrtFree", first[0])
    lib.call("aclrtMalloc", second, 2000, lib.lib.ACL_MEM_MALLOC_HUGE_FIRST)  # freed bytes count again
    lib.call("aclrtFree", second[0])
    assert lib.live_objects()["allocations"] == 0


def test_ten_thousand_calls_leave_everything_flat(lib, monkeypatch, capacity):
    """Valid calls, calls the library rejects, calls Python rejects and calls whose workspace
    cannot be allocated, interleaved: handles, threads, descriptors and RSS stay flat."""
    q, k, sabi, bad = _small_problem()
    expected = oracle.attention(q, k, k, sabi, block_shape=(64, 64))
    kwargs = dict(block_shape=(64, 64), device="cpu")

    def one(i):
        kind = i % 5
        if kind in (0, 1):
            out = blitz_acl.blitz_sparse_attention(q, k, k, sabi, return_lse=kind == 1, **kwargs)
            if i % 1000 == 0:
                np.testing.assert_allclose(out[0] if kind == 1 else out, expected, atol=1e-4, rtol=0)
        elif kind == 2:
            with pytest.raises(status.AclInvalidArgumentError):
                blitz_acl.blitz_sparse_attention(q, k, k, bad, validate=False, **kwargs)
        elif kind == 3:
            with pytest.raises(ValueError):
                blitz_acl.blitz_sparse_attention(q, k, k, bad, **kwargs)
        else:
            os.environ[CAPACITY_ENV] = "1"
            try:
                with pytest.raises(MemoryError):
                    blitz_acl.blitz_sparse_attention(q, k, k, sabi, **kwargs)
            finally:
                del os.environ[CAPACITY_ENV]

    monkeypatch.delenv(CAPACITY_ENV, raising=False)
    for i in range(WARM_UP):  # allocator pools, the waiter thread, first-use caches
        one(i)
    rss_before = _rss_bytes()
    threads_before, fds_before = _count("/proc/self/task"), _count("/proc/self/fd")
    for i in range(CALLS):
        one(i)
    growth = _rss_bytes() - rss_before
    assert lib.live_objects() == ALL_ZERO
    assert _settled_thread_count(threads_before) == threads_before
    assert _count("/proc/self/fd") == fds_before
    if "sanitizer build" in lib.device_info():
        return  # ASan keeps freed memory in quarantine: RSS grows by design; the counts above hold
    assert growth < RSS_GROWTH_LIMIT, f"RSS grew by {growth / 2 ** 20:.1f} MiB over {CALLS} calls"

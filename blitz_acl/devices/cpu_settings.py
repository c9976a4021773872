"""The host device libraries' settings, read here, at the top, and passed down (the kernel reads
no environment, and neither does the runtime for its capacity): which kernel path, how many
threads, and the device's memory capacity.

BLITZ_ACL_CPU_PATH=portable|avx2|avx512|amx|neon|neon_bf16 forces a path (unset or "auto": the
fastest this CPU has); BLITZ_ACL_NUM_THREADS=N sets the threads (unset, or not a positive
integer: every CPU this process may run on). They are read at each call, not once per process,
so a test or the bench can switch paths between calls; `pass_down` hands them to the library
(blitzCpuSetKernelSettings) for the calling thread, and the library copies them into the call
it plans next. The library knows the path names and refuses an unknown one.

BLITZ_ACL_CPU_MAX_ALLOC_BYTES=N (a test setting) makes the device's memory N bytes when that is
less than the machine's physical memory, so an allocation past it fails as on a full NPU (a
MemoryError from aclrtMalloc); unset or empty: the physical memory. Read at each call too and
passed down (blitzCpuSetMemoryCapacity); the capacity is the device's, one for the process.
Anything but a positive byte count raises ValueError here, before the library is called.
"""

from __future__ import annotations

import os
from typing import Mapping, Tuple

PATH_ENV = "BLITZ_ACL_CPU_PATH"
THREADS_ENV = "BLITZ_ACL_NUM_THREADS"
CAPACITY_ENV = "BLITZ_ACL_CPU_MAX_ALLOC_BYTES"
_UINT64_MAX = 2 ** 64 - 1


def read(environ: Mapping[str, str] = os.environ) -> Tuple[str, int]:
    """(path name, "" for auto; thread count, 0 for the library's default)."""
    text = environ.get(THREADS_ENV, "").strip()
    threads = int(text) if text.isdigit() else 0
    return environ.get(PATH_ENV, ""), threads


def read_capacity(environ: Mapping[str, str] = os.environ) -> int:
    """The device's memory capacity in bytes, 0 for the machine's physical memory (the library's
    meaning of 0). Raises ValueError naming the variable for anything but a positive count."""
    text = environ.get(CAPACITY_ENV, "")
    if text == "":
        return 0
    # isascii: str.isdigit also accepts digits int() reads but a C caller would not write ("²").
    capacity = int(text) if text.isascii() and text.isdigit() else 0
    if capacity < 1:
        raise ValueError(f'{CAPACITY_ENV}="{text}" is not a byte count: expected a positive integer '
                         "(unset: the machine's physical memory)")
    return min(capacity, _UINT64_MAX)  # the library caps it at the physical memory anyway


def pass_down(lib) -> None:
    """Gives `lib` this call's settings: the kernel's for the calling thread (every host device
    library takes them; npu_sim ignores them) and the device's memory capacity."""
    capacity = read_capacity()  # first: a bad value changes nothing in the library
    path, threads = read()
    lib.call("blitzCpuSetKernelSettings", path.encode(), threads)
    lib.call("blitzCpuSetMemoryCapacity", capacity)

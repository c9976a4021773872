"""The CPU device's settings, read here, at the top, and passed down (the kernel reads no
environment): which kernel path and how many threads.

BLITZ_ACL_CPU_PATH=portable|avx2|avx512|amx|neon|neon_bf16 forces a path (unset or "auto": the
fastest this CPU has); BLITZ_ACL_NUM_THREADS=N sets the threads (unset, or not a positive
integer: every CPU this process may run on). They are read at each call, not once per process,
so a test or the bench can switch paths between calls; `pass_down` hands them to the library
(blitzCpuSetKernelSettings) for the calling thread, and the library copies them into the call
it plans next. The library knows the path names and refuses an unknown one.
"""

from __future__ import annotations

import os
from typing import Mapping, Tuple

PATH_ENV = "BLITZ_ACL_CPU_PATH"
THREADS_ENV = "BLITZ_ACL_NUM_THREADS"


def read(environ: Mapping[str, str] = os.environ) -> Tuple[str, int]:
    """(path name, "" for auto; thread count, 0 for the library's default)."""
    text = environ.get(THREADS_ENV, "").strip()
    threads = int(text) if text.isdigit() else 0
    return environ.get(PATH_ENV, ""), threads


def pass_down(lib) -> None:
    """Gives `lib` this call's settings for the calling thread (every host device library
    takes them; npu_sim ignores them)."""
    path, threads = read()
    lib.call("blitzCpuSetKernelSettings", path.encode(), threads)

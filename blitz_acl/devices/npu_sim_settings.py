"""The npu_sim device's setting, read here, at the top, and passed down (the launcher, the tiling
and the kernel read no environment): how many vector cores the execution model's platform has.

BLITZ_ACL_NPU_SIM_CORES=N plans every call for N vector cores (N / 2 cube cores; unset or empty:
48, a 910B's). It is read at each call, so a test can compare core counts between calls, and
passed as written to the library (blitzNpuSimSetVectorCores) for the calling thread: the library
holds the range (1..kMaxWorkers, the tiling's worker arrays) and refuses anything else; the
refusal is raised here as an AclInvalidArgumentError naming the variable.
"""

from __future__ import annotations

import os
from typing import Mapping

from .status import AclInvalidArgumentError

CORES_ENV = "BLITZ_ACL_NPU_SIM_CORES"


def read(environ: Mapping[str, str] = os.environ) -> str:
    """The vector core count as written ("" for the library's default)."""
    return environ.get(CORES_ENV, "")


def pass_down(lib) -> None:
    """Gives the npu_sim library `lib` this call's vector core count for the calling thread."""
    text = read()
    try:
        lib.call("blitzNpuSimSetVectorCores", os.fsencode(text))
    except AclInvalidArgumentError as e:
        # e.message is "blitzNpuSimSetVectorCores: <why>", the library's words with the range.
        raise AclInvalidArgumentError(e.status, e.status_name, e.function,
                                      f"{CORES_ENV}={text!r} refused by {e.message}") from None

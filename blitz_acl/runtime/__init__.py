"""Runtime binding: runs a validated AttentionCall on a device library through cffi (ABI mode).

Each device is a module beside this one with `run(call) -> (attention_out, softmax_lse or
None)`: `reference` (float64 numpy, no library), `cpu` (libblitz_cpu.so, this project's CPU device library) and, on Ascend machines,
`npu` (CANN's runtime and the custom-op package), and `npu_sim` (libblitz_npu_sim.so: the NPU
op run on the host through the Ascend C execution model). Modules load their library on first use.
"""

from __future__ import annotations

import importlib

DEVICE_MODULES = {"reference": "blitz_acl.runtime.reference", "cpu": "blitz_acl.runtime.cpu", "npu": "blitz_acl.runtime.npu",
                  "npu_sim": "blitz_acl.runtime.npu_sim"}


def device_module(device: str):
    name = DEVICE_MODULES.get(device)
    if name is None:
        raise ValueError(f"no runtime device {device!r}; expected one of {', '.join(DEVICE_MODULES)}")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        raise NotImplementedError(
            f"device={device!r} is not available in this version of blitz_acl ({name} is missing)") from None


def run(call, device: str):
    """(attention_out, softmax_lse or None) for `call` on `device`."""
    return device_module(device).run(call)

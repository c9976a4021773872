"""The devices: each runs a validated AttentionCall (the CPU, npu_sim and npu devices on their device
library through cffi, ABI mode; `reference` in numpy). The folder was `blitz_acl/runtime` before
issue 13; that name stays as an alias (blitz_acl/runtime.py).

Each device is a module beside this one with `run(call) -> (attention_out, softmax_lse or
None)`: `reference` (float64 numpy, no library), `cpu` (libblitz_cpu.so, this project's CPU device library) and, on Ascend machines,
`npu` (CANN's runtime and the custom-op package), and `npu_sim` (libblitz_npu_sim.so: the NPU
op run on the host through the Ascend C execution model). Modules load their library on first use.
"""

from __future__ import annotations

import importlib

DEVICE_MODULES = {"reference": "blitz_acl.devices.reference", "cpu": "blitz_acl.devices.cpu", "npu": "blitz_acl.devices.npu",
                  "npu_sim": "blitz_acl.devices.npu_sim"}


def device_module(device: str):
    name = DEVICE_MODULES.get(device)
    if name is None:
        raise ValueError(f"no device {device!r}; expected one of {', '.join(DEVICE_MODULES)}")
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

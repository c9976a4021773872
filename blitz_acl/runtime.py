"""The old name of `blitz_acl.devices` (renamed in issue 13: the folder holds the devices).

Kept because the README documented paths under it (`blitz_acl.runtime.status.AclError`,
`blitz_acl.runtime.npu_sim.count_only`): `import blitz_acl.runtime.X` and
`from blitz_acl.runtime import X` give the very module `blitz_acl.devices.X` (the same objects,
so `except blitz_acl.runtime.status.AclError` catches what the devices raise). Nothing in this
repository imports it; new code uses `blitz_acl.devices`.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from . import devices as _devices
from .devices import DEVICE_MODULES, device_module, run  # noqa: F401  (the package's own names)

# Every submodule is light to import (device libraries load on first use), so alias them all now.
for _info in pkgutil.iter_modules(_devices.__path__):
    _module = importlib.import_module(f"{_devices.__name__}.{_info.name}")
    sys.modules[f"{__name__}.{_info.name}"] = _module
    globals()[_info.name] = _module

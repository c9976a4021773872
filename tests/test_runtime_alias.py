"""blitz_acl.runtime, the devices' folder name before issue 13, is an alias of blitz_acl.devices:
the README documented paths under it, so old imports must give the very same modules (an
`except blitz_acl.runtime.status.AclError` must catch what the devices raise)."""

import importlib

import blitz_acl.devices
from blitz_acl.devices import npu_sim, status


def test_old_import_paths_give_the_devices_modules():
    old_status = importlib.import_module("blitz_acl.runtime.status")
    assert old_status is status
    assert old_status.AclError is status.AclError
    from blitz_acl.runtime import npu_sim as old_npu_sim
    assert old_npu_sim is npu_sim and old_npu_sim.count_only is npu_sim.count_only
    import blitz_acl.runtime
    assert blitz_acl.runtime.run is blitz_acl.devices.run

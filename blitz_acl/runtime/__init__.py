"""Runtime binding: runs a validated AttentionCall on a device library through cffi.

Placeholder until the CPU device exists (issue 3).
"""


def run(call, device):
    raise NotImplementedError(
        f"device={device!r} is not available yet: the {device} device library is not built in this version"
    )

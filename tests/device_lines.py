"""The device line (blitzCpuDeviceInfo) as a C caller sees it, and on another thread.

Library.device_info() passes the binding's settings first; these read the line without doing
so, to show what a library holds for the calling thread."""

from __future__ import annotations

import threading


def raw_info(lib) -> str:
    """blitzCpuDeviceInfo for the calling thread, with no settings passed first."""
    info = lib.ffi.new("const char **")
    lib.call("blitzCpuDeviceInfo", info)
    return lib.ffi.string(info[0]).decode()


def raw_info_on_another_thread(lib, before=lambda: None) -> str:
    """raw_info on a fresh thread, after `before()` ran there (settings for that thread)."""
    seen = {}

    def other():
        before()
        seen["info"] = raw_info(lib)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    return seen["info"]

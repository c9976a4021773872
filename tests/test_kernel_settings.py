"""The CPU device's settings (kernel path, threads) are read at the top and passed down: the
binding reads BLITZ_ACL_CPU_PATH / BLITZ_ACL_NUM_THREADS (blitz_acl/devices/cpu_settings.py) and
hands them to blitzCpuSetKernelSettings for the calling thread; a pure-C caller that never sets
them gets the same variables read once by the library. The kernel reads no environment
(tests/cpp: kernel_path_passed_down)."""

import os
import subprocess
import sys
import pytest

from blitz_acl.devices import cpu, library, status
from device_lines import raw_info, raw_info_on_another_thread


@pytest.fixture
def lib():
    loaded = library.load()
    cpu.ensure_device(loaded)
    yield loaded
    cpu.ensure_device(loaded)  # back to the environment's settings for the next test


def test_the_settings_passed_down_are_the_ones_used(lib):
    lib.call("blitzCpuSetKernelSettings", b"portable", 1)
    assert raw_info(lib).startswith("kernel path portable; threads 1;")
    lib.call("blitzCpuSetKernelSettings", lib.ffi.NULL, 3)
    best = next(w[len("best="):] for w in raw_info(lib).replace(";", " ").split() if w.startswith("best="))
    assert raw_info(lib).startswith(f"kernel path {best}; threads 3;")


def test_an_unknown_path_name_is_refused_with_every_name(lib):
    with pytest.raises(status.AclInvalidArgumentError,
                       match=r"kernel path must be one of portable\|avx2\|avx512\|amx\|neon\|neon_bf16 .*'fastest'"):
        lib.call("blitzCpuSetKernelSettings", b"fastest", 0)


def test_settings_belong_to_the_calling_thread(lib):
    lib.call("blitzCpuSetKernelSettings", b"portable", 2)

    def settings_there():
        cpu.ensure_device(lib)
        lib.call("blitzCpuSetKernelSettings", b"portable", 5)

    assert raw_info_on_another_thread(lib, settings_there).startswith("kernel path portable; threads 5;")
    assert raw_info(lib).startswith("kernel path portable; threads 2;")


def test_the_binding_reads_the_environment_at_each_call(lib, monkeypatch):
    monkeypatch.setenv("BLITZ_ACL_CPU_PATH", "portable")
    monkeypatch.setenv("BLITZ_ACL_NUM_THREADS", "2")
    cpu.ensure_device(lib)  # what every call does first
    assert raw_info(lib).startswith("kernel path portable; threads 2;")
    monkeypatch.setenv("BLITZ_ACL_NUM_THREADS", "not a number")  # ignored: the default count
    cpu.ensure_device(lib)
    assert raw_info(lib).startswith(f"kernel path portable; threads {len(os.sched_getaffinity(0))};")


_PURE_C_CALLER = """
import sys
from blitz_acl.devices import library
lib = library.load()
info = lib.ffi.new("const char **")
rc = lib.lib.blitzCpuDeviceInfo(info)
print(rc, lib.ffi.string(info[0]).decode() if rc == 0 else lib.ffi.string(lib.lib.aclGetRecentErrMsg()).decode())
"""


@pytest.mark.parametrize("value, expected", [
    ("portable", "0 kernel path portable; threads 1;"),
    ("fastest", "BLITZ_ACL_CPU_PATH must be one of portable|avx2|avx512|amx|neon|neon_bf16 (or auto), got 'fastest'"),
])
def test_a_caller_that_never_sets_them_gets_the_environment_read_by_the_library(value, expected):
    env = dict(os.environ, BLITZ_ACL_CPU_PATH=value, BLITZ_ACL_NUM_THREADS="1")
    run = subprocess.run([sys.executable, "-c", _PURE_C_CALLER], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert expected in run.stdout, run.stdout

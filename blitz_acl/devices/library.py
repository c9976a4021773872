"""Finding and loading a host device library with cffi in ABI mode: the CPU device's
libblitz_cpu.so, or libblitz_npu_sim.so (device npu_sim: the same aclnn layer with the NPU op run
through the Ascend C execution model). Each is described by a LibrarySpec (CPU, NPU_SIM).

`candidates()` is the one place the search order lives: the override variable
(BLITZ_ACL_CPU_LIBRARY / BLITZ_ACL_NPU_SIM_LIBRARY), the
copy shipped in the package (blitz_acl/_lib), the development build (build_kernel.sh), then the
copy shipped in the installed distribution (a source checkout on sys.path, as when running
`python -m bench` from the repository root, shadows the installed package but not its library). The
library is loaded RTLD_LOCAL, so its CANN-named symbols never interpose on a libascendcl that
torch_npu loaded into the same process, and its ABI version is checked right after loading.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import cffi

from . import _cdef, cpu_settings, npu_sim_settings
from .status import AclError, CheckedCalls, StatusChecker



@dataclass(frozen=True)
class LibrarySpec:
    """One host device library: its file name, its override variable, where build_kernel.sh's
    CMake build leaves it (relative to the repository root), what to call it in messages, and
    the declarations of its own exports beyond the generated cdef (only it has them)."""
    lib_name: str
    env_var: str
    dev_build_dirs: Tuple[str, ...]
    title: str
    own_cdef: str = ""


# The execution model's own exports (kernel_src/npu/sim/launcher/sim_backend.cpp).
_NPU_SIM_CDEF = """
aclError blitzNpuSimLastReport(const char **json);
aclError blitzNpuSimCountNextCall(int armed);
aclError blitzNpuSimSetVectorCores(const char *vectorCores);
"""

CPU = LibrarySpec("libblitz_cpu.so", "BLITZ_ACL_CPU_LIBRARY", ("build/kernel_src/cpu",), "CPU device library")
NPU_SIM = LibrarySpec("libblitz_npu_sim.so", "BLITZ_ACL_NPU_SIM_LIBRARY", ("build/kernel_src/npu/sim/launcher",),
                      "NPU execution model library (device npu_sim)", own_cdef=_NPU_SIM_CDEF)
ENV_VAR = CPU.env_var
LIB_NAME = CPU.lib_name
_PACKAGE_DIR = Path(__file__).resolve().parent.parent


class LibraryNotFoundError(ImportError):
    """No loadable device library; the message lists every path tried."""


class Library(CheckedCalls):
    """The loaded library: `ffi`, the raw `lib`, and calls that check their status."""

    def __init__(self, ffi, lib, path: Path, spec: Optional[LibrarySpec] = None):
        self.ffi = ffi
        self.lib = lib
        self.path = path
        self.spec = spec or CPU
        self.status = StatusChecker(ffi, lib)

    def pass_settings(self) -> None:
        """Passes down the settings a call made now gets, read from the environment here:
        every host device library's (cpu_settings), and npu_sim's vector cores (npu_sim_settings)."""
        cpu_settings.pass_down(self)
        if self.spec is NPU_SIM:
            npu_sim_settings.pass_down(self)

    def live_objects(self) -> dict:
        """Live handle counts in the library (descriptors, executors, streams, allocations)."""
        names = ("tensors", "int_arrays", "executors", "streams", "allocations")
        out = [self.ffi.new("int64_t *") for _ in names]
        self.call("blitzCpuLiveObjects", *out)
        return {n: int(p[0]) for n, p in zip(names, out)}

    def device_info(self) -> str:
        """blitzCpuDeviceInfo with the settings a call made now would get (pass_settings)."""
        self.pass_settings()
        info = self.ffi.new("const char **")
        self.call("blitzCpuDeviceInfo", info)
        return self.ffi.string(info[0]).decode()


def candidates(environ=os.environ, spec: LibrarySpec = CPU) -> List[Path]:
    """Paths to try, in order. A set override variable is the only candidate: an explicit
    choice (a sanitizer build, say) must never fall back silently to another library."""
    override = environ.get(spec.env_var)
    if override:
        return [Path(override)]
    repo = _PACKAGE_DIR.parent
    paths = [_PACKAGE_DIR / "_lib" / spec.lib_name] + [repo / d / spec.lib_name for d in spec.dev_build_dirs]
    installed = _installed_library(spec.lib_name)
    if installed is not None and installed not in paths:
        paths.append(installed)
    return paths


def _installed_library(lib_name: str) -> Optional[Path]:
    """The library inside the installed blitz-acl distribution, if one is installed."""
    try:
        located = metadata.distribution("blitz-acl").locate_file(f"blitz_acl/_lib/{lib_name}")
    except metadata.PackageNotFoundError:
        return None
    return Path(str(located)).resolve()


def _new_ffi(spec: LibrarySpec = CPU):
    ffi = cffi.FFI()
    ffi.cdef(_cdef.CDEF + spec.own_cdef)
    return ffi


def open_library(paths: List[Path], dlopen: Optional[Callable] = None, spec: LibrarySpec = CPU) -> Library:
    """Loads the first path that exists and loads; raises LibraryNotFoundError listing all."""
    ffi = _new_ffi(spec)
    dlopen = dlopen or (lambda p: ffi.dlopen(str(p), ffi.RTLD_LOCAL | ffi.RTLD_NOW))
    tried = []
    for path in paths:
        if not path.is_file():
            tried.append(f"  {path}: not found")
            continue
        try:
            lib = dlopen(path)
        except OSError as e:
            tried.append(f"  {path}: cannot be loaded: {e}")
            continue
        return _checked(Library(ffi, lib, path, spec))
    raise LibraryNotFoundError(
        f"blitz_acl's {spec.title} ({spec.lib_name}) was not found. Tried:\n" + "\n".join(tried) +
        f"\nBuild it with ./build_kernel.sh (or pip install the package), or set {spec.env_var} to the "
        f"path of {spec.lib_name}.")


def _checked(library: Library) -> Library:
    try:
        version_fn = library.lib.blitzAclAbiVersion
    except AttributeError:
        raise LibraryNotFoundError(
            f"{library.path} is not a blitz_acl CPU device library (no blitzAclAbiVersion export)") from None
    version = library.ffi.new("int32_t *")
    library.status.check(version_fn(version), "blitzAclAbiVersion")
    if version[0] != _cdef.ABI_VERSION:
        raise LibraryNotFoundError(
            f"{library.path} implements ABI version {version[0]}, but this blitz_acl needs version "
            f"{_cdef.ABI_VERSION}; rebuild it with ./build_kernel.sh (or reinstall the package)")
    return library


_lock = threading.Lock()
_libraries: Dict[LibrarySpec, Library] = {}


def load(spec: LibrarySpec = CPU) -> Library:
    """The process's copy of a device library (the CPU device's by default), loaded on first use."""
    with _lock:
        if spec not in _libraries:
            _libraries[spec] = open_library(candidates(spec=spec), spec=spec)
        return _libraries[spec]


__all__ = ["AclError", "ENV_VAR", "Library", "LibraryNotFoundError", "candidates", "load", "open_library"]

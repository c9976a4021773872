"""Finding and loading the CPU device library (libblitz_cpu.so) with cffi in ABI mode.

`candidates()` is the one place the search order lives: the BLITZ_ACL_CPU_LIBRARY override, the
copy shipped in the package (blitz_acl/_lib), the development build (build_kernel.sh), then the
copy shipped in the installed distribution (a source checkout on sys.path, as when running
`python -m bench` from the repository root, shadows the installed package but not its library). The
library is loaded RTLD_LOCAL, so its CANN-named symbols never interpose on a libascendcl that
torch_npu loaded into the same process, and its ABI version is checked right after loading.
"""

from __future__ import annotations

import os
import threading
from importlib import metadata
from pathlib import Path
from typing import Callable, List, Optional

import cffi

from . import _cdef
from .status import AclError, CheckedCalls, StatusChecker

ENV_VAR = "BLITZ_ACL_CPU_LIBRARY"
LIB_NAME = "libblitz_cpu.so"
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
# Where build_kernel.sh's CMake build leaves the library, relative to the repository root.
_DEV_BUILD_DIRS = ("build/kernel_src/cpu",)


class LibraryNotFoundError(ImportError):
    """No loadable CPU device library; the message lists every path tried."""


class Library(CheckedCalls):
    """The loaded library: `ffi`, the raw `lib`, and calls that check their status."""

    def __init__(self, ffi, lib, path: Path):
        self.ffi = ffi
        self.lib = lib
        self.path = path
        self.status = StatusChecker(ffi, lib)

    def live_objects(self) -> dict:
        """Live handle counts in the library (descriptors, executors, streams, allocations)."""
        names = ("tensors", "int_arrays", "executors", "streams", "allocations")
        out = [self.ffi.new("int64_t *") for _ in names]
        self.call("blitzCpuLiveObjects", *out)
        return {n: int(p[0]) for n, p in zip(names, out)}

    def device_info(self) -> str:
        info = self.ffi.new("const char **")
        self.call("blitzCpuDeviceInfo", info)
        return self.ffi.string(info[0]).decode()


def candidates(environ=os.environ) -> List[Path]:
    """Paths to try, in order. A set BLITZ_ACL_CPU_LIBRARY is the only candidate: an explicit
    choice (a sanitizer build, say) must never fall back silently to another library."""
    override = environ.get(ENV_VAR)
    if override:
        return [Path(override)]
    repo = _PACKAGE_DIR.parent
    paths = [_PACKAGE_DIR / "_lib" / LIB_NAME] + [repo / d / LIB_NAME for d in _DEV_BUILD_DIRS]
    installed = _installed_library()
    if installed is not None and installed not in paths:
        paths.append(installed)
    return paths


def _installed_library() -> Optional[Path]:
    """The library inside the installed blitz-acl distribution, if one is installed."""
    try:
        located = metadata.distribution("blitz-acl").locate_file(f"blitz_acl/_lib/{LIB_NAME}")
    except metadata.PackageNotFoundError:
        return None
    return Path(str(located)).resolve()


def _new_ffi():
    ffi = cffi.FFI()
    ffi.cdef(_cdef.CDEF)
    return ffi


def open_library(paths: List[Path], dlopen: Optional[Callable] = None) -> Library:
    """Loads the first path that exists and loads; raises LibraryNotFoundError listing all."""
    ffi = _new_ffi()
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
        return _checked(Library(ffi, lib, path))
    raise LibraryNotFoundError(
        "blitz_acl's CPU device library (libblitz_cpu.so) was not found. Tried:\n" + "\n".join(tried) +
        f"\nBuild it with ./build_kernel.sh (or pip install the package), or set {ENV_VAR} to the "
        "path of libblitz_cpu.so.")


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
_library: Optional[Library] = None


def load() -> Library:
    """The process's CPU device library, loaded on first use."""
    global _library
    with _lock:
        if _library is None:
            _library = open_library(candidates())
        return _library


__all__ = ["AclError", "ENV_VAR", "Library", "LibraryNotFoundError", "candidates", "load", "open_library"]

"""Finding and loading the NPU device's libraries: CANN's runtime, then the custom-op package.

CANN's libascendcl (aclrt*, aclGetRecentErrMsg) and libnnopbase (aclCreateTensor and the other
descriptor calls) are loaded RTLD_GLOBAL first, as the custom-op library expects their symbols
to be global; then the package's libcust_opapi.so, which exports the BlitzSparseAttention aclnn
entry points. Nothing is loaded at import: `load()` runs at the first NPU call, after
torch_npu has set up CANN, and reads the environment then (the package path is usually
exported by the set_env.bash that `build_kernel.sh` prints, possibly after import).

`custom_op_candidates()` is the one place the search order lives:
  1. BLITZ_ACL_NPU_LIBRARY: an explicit libcust_opapi.so, the only candidate when set;
  2. each entry of ASCEND_CUSTOM_OPP_PATH (colon-separated): <entry>/op_api/lib/libcust_opapi.so;
  3. the vendors under ASCEND_OPP_PATH in vendors/config.ini's load_priority order:
     $ASCEND_OPP_PATH/vendors/<vendor>/op_api/lib/libcust_opapi.so.
Several vendors each ship a libcust_opapi.so; the first that exports our entry point is used.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence, Tuple

import cffi

from . import _cdef
from .status import CheckedCalls, StatusChecker

ENV_VAR = "BLITZ_ACL_NPU_LIBRARY"
CUSTOM_OPP_VAR = "ASCEND_CUSTOM_OPP_PATH"
OPP_VAR = "ASCEND_OPP_PATH"
CANN_HOME_VARS = ("ASCEND_HOME_PATH", "ASCEND_TOOLKIT_HOME")
CUSTOM_LIB = "libcust_opapi.so"
RUNTIME_LIBS = ("libascendcl.so", "libnnopbase.so")
# The symbol a libcust_opapi.so must export to serve the op (ours, or the original's newest
# revision: both take the same 27-parameter list).
ENTRY_POINT = "aclnnBlitzSparseAttentionGetWorkspaceSize"
INSTALL_HINT = (
    "Build and install the custom-op package with ./build_kernel.sh on a machine with CANN, then "
    "source the set_env.bash line it prints (it prepends the package to ASCEND_CUSTOM_OPP_PATH), "
    f"or set {ENV_VAR} to the path of the package's libcust_opapi.so.")


class NpuLibraryNotFoundError(ImportError):
    """CANN's runtime or the BlitzSparseAttention custom-op package could not be loaded; the
    message lists every path tried and the variable to set."""


def _config_vendors(opp: Path) -> List[str]:
    """Vendor names from $ASCEND_OPP_PATH/vendors/config.ini (load_priority=a,b,...), in order."""
    config = opp / "vendors" / "config.ini"
    try:
        text = config.read_text()
    except OSError:
        return []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "load_priority":
            return [v.strip() for v in value.split(",") if v.strip()]
    return []


def custom_op_candidates(environ: Mapping[str, str] = os.environ) -> List[Path]:
    """libcust_opapi.so paths to try, in order (see the module docstring)."""
    override = environ.get(ENV_VAR)
    if override:
        return [Path(override)]
    out: List[Path] = []
    for entry in environ.get(CUSTOM_OPP_VAR, "").split(":"):
        if entry.strip():
            out.append(Path(entry.strip()) / "op_api" / "lib" / CUSTOM_LIB)
    opp = environ.get(OPP_VAR)
    if opp:
        for vendor in _config_vendors(Path(opp)):
            out.append(Path(opp) / "vendors" / vendor / "op_api" / "lib" / CUSTOM_LIB)
    return out


def runtime_candidates(name: str, environ: Mapping[str, str] = os.environ) -> List[str]:
    """Where to load a CANN runtime library from: the bare name first (the loader finds the copy
    torch_npu already loaded, or one on LD_LIBRARY_PATH), then each CANN home's lib64."""
    out = [name]
    for var in CANN_HOME_VARS:
        home = environ.get(var)
        if home:
            out.append(str(Path(home) / "lib64" / name))
    return out


class NpuLibrary(CheckedCalls):
    """The loaded libraries behind one cffi declaration set.

    `lib` resolves a name in libcust_opapi, then libnnopbase, then libascendcl, so the shared
    call helpers (CallScope, op_call) use it like the CPU device library.
    """

    def __init__(self, ffi, custom, nnopbase, ascendcl, path: Path):
        self.ffi = ffi
        self.path = path
        self.lib = _Chain((custom, nnopbase, ascendcl))
        self.status = StatusChecker(ffi, ascendcl)


class _Chain:
    """Attribute lookup over several cffi libraries, first hit wins."""

    def __init__(self, libs: Sequence):
        self._libs = tuple(libs)

    def __getattr__(self, name: str):
        for lib in self._libs:
            try:
                return getattr(lib, name)
            except AttributeError:
                continue
        raise AttributeError(f"no loaded NPU library exports {name}")


def _new_ffi():
    ffi = cffi.FFI()
    ffi.cdef(_cdef.CDEF)
    return ffi


def _load_runtime(ffi, dlopen, name: str, environ) -> Tuple[object, List[str]]:
    tried = []
    for candidate in runtime_candidates(name, environ):
        try:
            return dlopen(candidate, ffi.RTLD_NOW | ffi.RTLD_GLOBAL), tried
        except OSError as e:
            tried.append(f"  {candidate}: cannot be loaded: {e}")
    raise NpuLibraryNotFoundError(
        f"CANN's {name} could not be loaded. Tried:\n" + "\n".join(tried) +
        "\nInstall CANN and source its set_env.sh (it puts CANN's lib64 on LD_LIBRARY_PATH and sets "
        "ASCEND_HOME_PATH), or import torch_npu first.")


def open_library(environ: Mapping[str, str] = os.environ,
                 dlopen: Optional[Callable] = None) -> NpuLibrary:
    """Loads CANN's runtime and the first custom-op library exporting our entry point."""
    ffi = _new_ffi()
    dlopen = dlopen or (lambda path, flags: ffi.dlopen(path, flags))
    ascendcl, _ = _load_runtime(ffi, dlopen, RUNTIME_LIBS[0], environ)
    nnopbase, _ = _load_runtime(ffi, dlopen, RUNTIME_LIBS[1], environ)
    candidates = custom_op_candidates(environ)
    tried = []
    for path in candidates:
        if not path.is_file():
            tried.append(f"  {path}: not found")
            continue
        try:
            custom = dlopen(str(path), ffi.RTLD_NOW | ffi.RTLD_LOCAL)
        except OSError as e:
            tried.append(f"  {path}: cannot be loaded: {e}")
            continue
        try:
            getattr(custom, ENTRY_POINT)
        except AttributeError:
            tried.append(f"  {path}: does not serve the op (no {ENTRY_POINT})")
            continue
        return NpuLibrary(ffi, custom, nnopbase, ascendcl, path)
    where = "\n".join(tried) if tried else (
        f"  nothing: {ENV_VAR}, {CUSTOM_OPP_VAR} and {OPP_VAR} (vendors/config.ini) name no package")
    raise NpuLibraryNotFoundError(
        f"the BlitzSparseAttention custom-op package ({CUSTOM_LIB}) was not found. Tried:\n{where}\n"
        + INSTALL_HINT)


_lock = threading.Lock()
_library: Optional[NpuLibrary] = None


def load() -> NpuLibrary:
    """The process's NPU libraries, loaded at the first call (never at import)."""
    global _library
    with _lock:
        if _library is None:
            _library = open_library()
        return _library


__all__ = ["ENV_VAR", "NpuLibrary", "NpuLibraryNotFoundError", "custom_op_candidates", "load",
           "open_library", "runtime_candidates"]

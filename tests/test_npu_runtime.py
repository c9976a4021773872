"""NPU device pieces that run without an NPU: library discovery over a fake directory tree, the
error text when CANN or the package is missing, sabi compaction, and the support checks.

No library is really loaded: `open_library` takes the dlopen function, and the fakes below
stand in for CANN's libascendcl / libnnopbase and a vendor's libcust_opapi.so.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blitz_acl import arguments
from blitz_acl import sabi as S
from blitz_acl.devices import npu_args, npu_library
from blitz_acl.devices.npu_library import NpuLibraryNotFoundError

PAD = 0xFFFF


class FakeLib:
    """A loaded library exporting `symbols`; CANN's #define constants resolve like cffi's."""

    def __init__(self, path, symbols=()):
        self.path = str(path)
        self._symbols = set(symbols)
        self._consts = npu_library._new_ffi().dlopen(None)  # #define constants live on any lib

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._symbols:
            return lambda *args: 0
        if name.isupper() or name.startswith(("ACL_", "ACLNN_")):
            return getattr(self._consts, name)
        raise AttributeError(name)


def fake_dlopen(exports, loaded):
    """dlopen stand-in: paths in `exports` load with those symbols; CANN runtime names load;
    anything else fails like a real dlopen."""

    def dlopen(path, flags):
        loaded.append((str(path), flags))
        if str(path) in exports:
            return FakeLib(path, exports[str(path)])
        if Path(str(path)).name in npu_library.RUNTIME_LIBS:
            return FakeLib(path, ("aclGetRecentErrMsg",))
        raise OSError(f"{path}: cannot open shared object file")

    return dlopen


def make_package(root: Path) -> Path:
    lib = root / "op_api" / "lib" / npu_library.CUSTOM_LIB
    lib.parent.mkdir(parents=True)
    lib.write_bytes(b"")
    return lib


def test_candidates_order(tmp_path):
    opp = tmp_path / "opp"
    (opp / "vendors").mkdir(parents=True)
    (opp / "vendors" / "config.ini").write_text("# vendors\nload_priority=first, second,,third\n")
    env = {"ASCEND_CUSTOM_OPP_PATH": f"{tmp_path}/a::{tmp_path}/b:", "ASCEND_OPP_PATH": str(opp)}
    got = npu_library.custom_op_candidates(env)
    lib = Path("op_api") / "lib" / "libcust_opapi.so"
    assert got == [tmp_path / "a" / lib, tmp_path / "b" / lib,
                   opp / "vendors" / "first" / lib, opp / "vendors" / "second" / lib,
                   opp / "vendors" / "third" / lib]


def test_override_is_the_only_candidate(tmp_path):
    env = {"BLITZ_ACL_NPU_LIBRARY": str(tmp_path / "mine.so"),
           "ASCEND_CUSTOM_OPP_PATH": str(tmp_path / "a")}
    assert npu_library.custom_op_candidates(env) == [tmp_path / "mine.so"]


def test_no_config_ini_means_no_vendor_candidates(tmp_path):
    assert npu_library.custom_op_candidates({"ASCEND_OPP_PATH": str(tmp_path)}) == []


def test_runtime_candidates_try_the_loaded_name_first(tmp_path):
    env = {"ASCEND_HOME_PATH": str(tmp_path / "home"), "ASCEND_TOOLKIT_HOME": str(tmp_path / "tk")}
    assert npu_library.runtime_candidates("libascendcl.so", env) == [
        "libascendcl.so", str(tmp_path / "home" / "lib64" / "libascendcl.so"),
        str(tmp_path / "tk" / "lib64" / "libascendcl.so")]


def test_first_package_with_our_entry_point_wins(tmp_path):
    other = make_package(tmp_path / "other_vendor")
    ours = make_package(tmp_path / "ours")
    env = {"ASCEND_CUSTOM_OPP_PATH": f"{tmp_path / 'missing'}:{tmp_path / 'other_vendor'}:{tmp_path / 'ours'}"}
    loaded = []
    exports = {str(other): ("aclnnSomethingElse",), str(ours): (npu_library.ENTRY_POINT,)}
    library = npu_library.open_library(env, fake_dlopen(exports, loaded))
    assert library.path == ours
    names = [Path(p).name for p, _ in loaded]
    # CANN's runtime first (RTLD_GLOBAL), then the custom-op libraries.
    assert names[:2] == ["libascendcl.so", "libnnopbase.so"]
    ffi = library.ffi
    assert all(flags & ffi.RTLD_GLOBAL for _, flags in loaded[:2])
    assert not loaded[-1][1] & ffi.RTLD_GLOBAL
    # Names resolve through the chain: the entry point in the package, constants anywhere.
    assert callable(library.lib.aclnnBlitzSparseAttentionGetWorkspaceSize)
    assert library.lib.ACLNN_ERR_PARAM_INVALID == 161002


def test_missing_package_error_names_every_path(tmp_path):
    other = make_package(tmp_path / "other_vendor")
    opp = tmp_path / "opp"
    (opp / "vendors").mkdir(parents=True)
    (opp / "vendors" / "config.ini").write_text("load_priority=customize\n")
    env = {"ASCEND_CUSTOM_OPP_PATH": f"{tmp_path / 'nowhere'}:{tmp_path / 'other_vendor'}",
           "ASCEND_OPP_PATH": str(opp)}
    with pytest.raises(NpuLibraryNotFoundError) as info:
        npu_library.open_library(env, fake_dlopen({str(other): ()}, []))
    text = str(info.value)
    assert str(tmp_path / "nowhere" / "op_api" / "lib" / "libcust_opapi.so") + ": not found" in text
    assert f"{other}: does not serve the op" in text
    assert str(opp / "vendors" / "customize" / "op_api" / "lib" / "libcust_opapi.so") in text
    assert "build_kernel.sh" in text and "ASCEND_CUSTOM_OPP_PATH" in text
    assert "BLITZ_ACL_NPU_LIBRARY" in text


def test_missing_package_error_when_nothing_is_configured():
    with pytest.raises(NpuLibraryNotFoundError, match="name no package"):
        npu_library.open_library({}, fake_dlopen({}, []))


def test_missing_cann_runtime_error(tmp_path):
    def dlopen(path, flags):
        raise OSError(f"{path}: cannot open shared object file")

    env = {"ASCEND_HOME_PATH": str(tmp_path / "cann")}
    with pytest.raises(NpuLibraryNotFoundError) as info:
        npu_library.open_library(env, dlopen)
    text = str(info.value)
    assert "libascendcl.so" in text and str(tmp_path / "cann" / "lib64" / "libascendcl.so") in text
    assert "set_env.sh" in text


def test_import_loads_nothing():
    """Importing the device module (in a fresh interpreter) imports neither torch nor torch_npu
    and loads no library: discovery happens at the first call."""
    code = ("import sys, blitz_acl, blitz_acl.devices.npu as m; "
            "from blitz_acl.devices import npu_library as l; "
            "print(l._library is None, 'torch_npu' in sys.modules, 'torch' in sys.modules)")
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False"]


# -- sabi compaction -------------------------------------------------------------------------

def test_compact_sorts_dedups_drops_out_of_range_and_pads():
    sabi = np.array([[[[3, PAD, 1, 3, 9, 0],
                       [PAD, PAD, PAD, PAD, PAD, PAD],
                       [5, 4, 3, 2, 1, 0]]]], dtype=np.uint16)
    got = S.compact(sabi, kv_blocks=5)
    expected = np.array([[[[0, 1, 3, PAD, PAD, PAD],
                           [PAD] * 6,
                           [0, 1, 2, 3, 4, PAD]]]], dtype=np.uint16)
    np.testing.assert_array_equal(got, expected)
    assert got.flags.c_contiguous and got.dtype == np.uint16
    assert sabi[0, 0, 0, 0] == 3  # the caller's array is not modified


def test_compact_keeps_the_selected_set():
    rng = np.random.default_rng(0)
    sabi = rng.integers(0, 12, size=(2, 3, 7, 9)).astype(np.uint16)
    sabi[rng.random(sabi.shape) < 0.3] = PAD
    got = S.compact(sabi, kv_blocks=10)
    for idx in np.ndindex(sabi.shape[:-1]):
        row, out = sabi[idx], got[idx]
        want = sorted({int(v) for v in row if v < 10})
        assert list(out[: len(want)]) == want, idx
        assert (out[len(want):] == PAD).all(), idx


def test_compact_none_and_width_one():
    assert S.compact(None, 4) is None
    np.testing.assert_array_equal(
        S.compact(np.array([[[[7]], [[2]]]], dtype=np.uint16), 4), [[[[PAD]], [[2]]]])


# -- what the NPU kernel supports --------------------------------------------------------------

def _call(**overrides):
    rng = np.random.default_rng(1)
    q = rng.standard_normal((1, 2, 200, 64)).astype(np.float32)
    k = rng.standard_normal((1, 2, 700, 64)).astype(np.float32)
    kwargs = dict(device="reference")
    kwargs.update(overrides)
    call = arguments.normalize(q, k, k, **kwargs)
    return dataclasses.replace(call, device="npu")


def test_supported_call_passes():
    npu_args.check_supported(_call(block_shape=(64, 128)))
    npu_args.check_supported(_call(block_shape=(256, 1024)))


MASK_2D = np.zeros((200, 700), dtype=bool)


@pytest.mark.parametrize("kwargs", [
    dict(sparse_mode=1, atten_mask=MASK_2D),
    dict(sparse_mode=0, atten_mask=MASK_2D.astype(np.uint8)[None, None]),
    dict(sparse_mode=1, atten_mask=MASK_2D.astype(np.int8)[None]),
    dict(sparse_mode=2),
    dict(sparse_mode=3, actual_seq_lengths=[150], actual_seq_lengths_kv=[600]),
    dict(sparse_mode=4, pre_tokens=64, next_tokens=0),
    dict(sparse_mode=4, pre_tokens=2 ** 62, next_tokens=-2 ** 62),
], ids=["explicit-2d", "mode0-4d-uint8", "explicit-3d-int8", "causal", "causal-bottom-right-lengths",
        "band", "band-extreme-tokens"])
def test_token_masks_are_supported(kwargs):
    call = _call(**kwargs)
    assert call.sparse_mode == kwargs["sparse_mode"]
    npu_args.check_supported(call)


def test_sparse_mode_outside_the_kernel_is_rejected():
    with pytest.raises(NotImplementedError, match=r"sparse_mode must be one of \(0, 1, 2, 3, 4\), got 5"):
        npu_args.check_supported(dataclasses.replace(_call(), sparse_mode=5))


@pytest.mark.parametrize("kwargs,match", [
    (dict(block_shape=(32, 512)), "block_shape"),
    (dict(block_shape=(128, 192 + 32)), "block_shape"),
])
def test_unsupported_calls_are_rejected(kwargs, match):
    with pytest.raises((NotImplementedError, ValueError), match=match):
        npu_args.check_supported(_call(**kwargs))


@pytest.mark.parametrize("head_dim", [8, 72, 264])
def test_unsupported_head_dim(head_dim):
    q = np.zeros((1, 1, 8, head_dim), dtype=np.float32)
    call = dataclasses.replace(arguments.normalize(q, q, q, device="reference"), device="npu")
    with pytest.raises(ValueError, match="head_dim"):
        npu_args.check_supported(call)


def test_python_limits_mirror_the_tiling_header():
    """npu_args checks the same limits as the op's tiling, so a call the tiling would reject fails
    in Python first, with the same numbers: block shapes, head dims and the sabi pad come from one
    spec (blitz_acl/limits.py and kernel_src/common/op_limits.h, checked fresh by test_aclnn_gen),
    and tiling_plan.h restates none of them."""
    import re

    from blitz_acl import limits

    header = (Path(__file__).resolve().parents[1] / "kernel_src" / "npu" / "op_host" / "tiling_plan.h").read_text()

    assert '#include "../../common/op_limits.h"' in header
    for moved in ("HeadDim", "BlockKv", "BlockQ", "SabiIndex", "SparseMode", "Heads", "Batch", "Group"):
        assert not re.search(rf"constexpr int64_t k\w*{moved}\b", header), moved
    assert npu_args.MAX_KV_BLOCKS == limits.SABI_PAD - 1 and npu_args.PAD == limits.SABI_PAD
    assert npu_args.MAX_SPARSE_MODE == max(limits.SPARSE_MODES)

"""Bad input, DESIGN.md's list, through every door: numpy and torch callers of the public API on
device="cpu", and C callers of the library's entry points (cffi on the raw functions, with no
Python validation in front). Each bad call gets an exception (or a CANN status + message)
naming the argument, the value received and what was expected; none crashes or leaks.

The public API's own table (tests/test_api.py, run there on device="reference") is replayed
here on the CPU device with numpy and with torch inputs.
"""

import os
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

import blitz_acl
import oracle
from blitz_acl.devices import library, status
from blitz_acl.devices.descriptors import CallScope
from test_api import BAD_ARGUMENTS, _qkv
from test_binding import B, D, INVALID, N, NULLPTR, SKV, SQ, _get_workspace_size, _tensor_with

# _qkv's shapes (tests/test_api.py); B, N, SQ, SKV, D above are the C-level tests' (test_binding).
API_B, API_N, API_SQ, API_D = 2, 4, 200, 32

torch = pytest.importorskip("torch")

ATOL_FLOAT32 = 1e-4


def _to_torch(x):
    if not isinstance(x, np.ndarray):
        return x
    if x.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(x))


def _public_call(kind, changes):
    q, k, v = _qkv()
    args = dict(query=q, key=k, value=v, device="cpu")
    args.update(changes)
    if kind == "torch":
        args = {name: _to_torch(x) for name, x in args.items()}
    return blitz_acl.blitz_sparse_attention(args.pop("query"), args.pop("key"), args.pop("value"), **args)


# Cases of the table whose input cannot be expressed as a torch tensor (a numpy-only dtype).
NUMPY_ONLY = {"query_float64"}


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("changes, error, message", [c[1:] for c in BAD_ARGUMENTS],
                         ids=[c[0] for c in BAD_ARGUMENTS])
def test_public_table_on_the_cpu_device(kind, changes, error, message, lib):
    before = lib.live_objects()
    with pytest.raises(error, match=message):
        _public_call(kind, changes)
    assert lib.live_objects() == before


BAD_PUBLIC = [
    # (id, build(kind) -> changes, exception, message pattern)
    ("head_dim_above_cpu_limit", lambda: dict(query=np.zeros((1, 1, 4, 520), np.float32),
                                              key=np.zeros((1, 1, 4, 520), np.float32),
                                              value=np.zeros((1, 1, 4, 520), np.float32)),
     ValueError, r"head_dim 520 .* not supported by the CPU device: expected 1..512"),
    ("zero_heads", lambda: dict(query=np.zeros((API_B, 0, API_SQ, API_D), np.float32)), ValueError,
     "query has 0 heads"),
    ("scale_overflows_float32", lambda: dict(scale_value=1e39), ValueError,
     "scale_value must be finite and fit a float32"),
    ("sabi_ragged_list", lambda: dict(sabi=[[[[0], [1, 2]]]]), ValueError,
     "sabi as a nested list must be rectangular"),
    ("sabi_list_overflow", lambda: dict(sabi=[[[[2 ** 70]]]]), TypeError,
     "sabi as a nested list must be rectangular and hold ints"),
    ("sabi_on_meta", lambda: dict(sabi=torch.zeros(1, 1, 2, 1, dtype=torch.int16, device="meta")),
     ValueError, "sabi is on meta but query is on cpu"),
    ("lengths_on_meta", lambda: dict(actual_seq_lengths=torch.zeros(1, dtype=torch.int64, device="meta")),
     ValueError, "actual_seq_lengths is on meta"),
    ("query_0d", lambda: dict(query=np.float32(1.0)), TypeError, "query must be a numpy array or a torch tensor"),
    ("query_complex", lambda: dict(query=np.zeros((API_B, API_N, API_SQ, API_D), np.complex64)), TypeError,
     "query has dtype complex64"),
    ("key_int", lambda: dict(key=np.zeros((API_B, 2, 300, API_D), np.int32)), TypeError, "key has dtype int32"),
]


@pytest.mark.parametrize("build, error, message", [c[1:] for c in BAD_PUBLIC], ids=[c[0] for c in BAD_PUBLIC])
def test_more_bad_arguments(build, error, message, lib):
    before = lib.live_objects()
    with pytest.raises(error, match=message):
        _public_call("numpy", build())
    assert lib.live_objects() == before


def test_missing_library_through_the_public_api(tmp_path):
    """device='cpu' with no loadable library: ImportError naming the path and the variable."""
    missing = tmp_path / "nowhere" / "libblitz_cpu.so"
    code = ("import numpy as np, blitz_acl\n"
            "q = np.zeros((1, 1, 4, 8), np.float32)\n"
            "try:\n"
            "    blitz_acl.blitz_sparse_attention(q, q, q, device='cpu')\n"
            "except ImportError as e:\n"
            "    print(type(e).__name__, e)\n"
            "    raise SystemExit(3)\n")
    env = dict(os.environ, BLITZ_ACL_CPU_LIBRARY=str(missing))
    package_root = str(Path(blitz_acl.__file__).resolve().parent.parent)  # the blitz_acl under test
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120,
                         cwd=package_root)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "LibraryNotFoundError" in run.stdout and f"{missing}: not found" in run.stdout
    assert library.ENV_VAR in run.stdout


# ------------------------------------------- inputs the boundary must copy, never misread


def test_big_endian_arrays_are_read_as_numbers():
    """A '>f4' array has dtype name float32, but its bytes are not the library's floats."""
    q, k, v = _qkv()
    expected = oracle.attention(q, k, v)
    swapped = [x.astype(x.dtype.newbyteorder(">")) for x in (q, k, v)]
    out = blitz_acl.blitz_sparse_attention(*swapped, device="cpu")
    np.testing.assert_allclose(out, expected, atol=ATOL_FLOAT32, rtol=0)


def test_unaligned_arrays_are_copied():
    """np.frombuffer at an odd offset gives misaligned float32s (UB in the kernel's loads)."""
    q, k, v = _qkv()
    expected = oracle.attention(q, k, v)

    def unaligned(x):
        raw = bytearray(x.nbytes + 1)
        a = np.frombuffer(raw, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
        a[...] = x
        assert not a.flags.aligned
        return a

    out = blitz_acl.blitz_sparse_attention(*(unaligned(x) for x in (q, k, v)), device="cpu")
    np.testing.assert_allclose(out, expected, atol=ATOL_FLOAT32, rtol=0)


def test_non_contiguous_torch_and_numpy_inputs_match_the_reference():
    q, k, v = _qkv()
    expected = oracle.attention(q, k, v)
    tq, tk, tv = (torch.from_numpy(x.copy()).transpose(2, 3).contiguous().transpose(2, 3) for x in (q, k, v))
    assert not tq.is_contiguous()
    np.testing.assert_allclose(blitz_acl.blitz_sparse_attention(tq, tk, tv, device="cpu").numpy(),
                               expected, atol=ATOL_FLOAT32, rtol=0)
    fq, fk, fv = (np.asfortranarray(x) for x in (q, k, v))
    np.testing.assert_allclose(blitz_acl.blitz_sparse_attention(fq, fk, fv, device="cpu"),
                               expected, atol=ATOL_FLOAT32, rtol=0)


# ----------------------------------------------------- the C entry point, no Python in front


def _strided(dims, strides, dtype_name, storage_elements=None, data="zeros"):
    """A descriptor with explicit strides over a zeroed buffer (data=None: a NULL pointer)."""
    def make(scope):
        ffi, raw = scope.ffi, scope.library.lib
        count = storage_elements
        if count is None:
            count = 1 + sum((d - 1) * s for d, s in zip(dims, strides)) if all(dims) else 0
        d = scope.keep(ffi.new("int64_t[]", list(dims)))
        s = scope.keep(ffi.new("int64_t[]", list(strides)))
        storage = scope.keep(ffi.new("int64_t[]", [count]))
        ptr = ffi.NULL
        if data is not None:
            buf = scope.keep(np.zeros(max(count, 1) * 8, np.uint8))
            ptr = ffi.cast("void *", buf.ctypes.data)
        handle = scope.library.create("aclCreateTensor", d, len(dims), getattr(raw, dtype_name), s, 0,
                                      raw.ACL_FORMAT_ND, storage, 1, ptr)
        scope.on_exit("aclDestroyTensor", handle)
        return handle
    return make


def _destroyed_tensor(scope):
    handle = _tensor_with([B, N, SKV, D], "ACL_FLOAT")(CallScope(scope.library))
    scope.library.call("aclDestroyTensor", handle)
    return handle


C_BAD_CALLS = {
    "null_key": ({"key": lambda s: s.ffi.NULL}, NULLPTR, "key is NULL"),
    "null_value": ({"value": lambda s: s.ffi.NULL}, NULLPTR, "value is NULL"),
    "null_data": ({"value": _strided([B, N, SKV, D], [N * SKV * D, SKV * D, D, 1], "ACL_FLOAT", data=None)},
                  NULLPTR, "value has 44800 elements but its data pointer is NULL"),
    "destroyed_tensor": ({"key": _destroyed_tensor}, INVALID, "key is not a live aclTensor"),
    "sabi_not_contiguous": ({"sabi": _strided([B, N, 2, 2], [16, 8, 4, 2], "ACL_UINT16")}, INVALID,
                            "sabi must be contiguous"),
    "lse_not_contiguous": ({"softmaxLse": _strided([B, N, SQ], [2 * N * SQ, 2 * SQ, 2], "ACL_FLOAT")},
                           INVALID, "softmaxLse must be contiguous"),
    "lse_dtype": ({"softmaxLse": _tensor_with([B, N, SQ], "ACL_FLOAT16")}, INVALID,
                  "softmaxLse has dtype ACL_FLOAT16; expected ACL_FLOAT"),
    "query_d_stride": ({"query": _strided([B, N, SQ, D], [N * SQ * D * 2, SQ * D * 2, D * 2, 2], "ACL_FLOAT")},
                       INVALID, "the last dim (D) must have stride 1, got 2"),
    "out_overlapping": ({"attentionOut": _strided([B, N, SQ, D], [0, 0, 1, 1], "ACL_FLOAT")}, INVALID,
                        "attentionOut has overlapping strides"),
    "head_dim_600": ({"query": _tensor_with([B, N, SQ, 600], "ACL_FLOAT"),
                      "key": _tensor_with([B, N, SKV, 600], "ACL_FLOAT"),
                      "value": _tensor_with([B, N, SKV, 600], "ACL_FLOAT"),
                      "attentionOut": _tensor_with([B, N, SQ, 600], "ACL_FLOAT")}, INVALID,
                     "head_dim 600 is not supported by the CPU device: expected 1..512"),
    "kv_heads_negative": ({"numKeyValueHeads": lambda s: -1}, INVALID, "numKeyValueHeads = -1; expected >= 0"),
    "heads_negative": ({"numHeads": lambda s: -2}, INVALID, "numHeads = -2; expected >= 1"),
    "sparse_mode_negative": ({"sparseMode": lambda s: -1}, INVALID, "sparse_mode must be one of (0, 1, 2, 3, 4), got -1"),
    "scale_inf": ({"scaleValue": lambda s: float("inf")}, INVALID, "is not a finite float"),
    "scale_overflows_float32": ({"scaleValue": lambda s: 1e39}, INVALID, "is not a finite float"),
    "lengths_negative": ({"actualSeqLengths": lambda s: s.int_array([-1])}, INVALID,
                         "actualSeqLengths[0] = -1 is outside [0, 200]"),
    "kv_lengths_too_long": ({"actualSeqLengthsKv": lambda s: s.int_array([SKV + 1])}, INVALID,
                            "actualSeqLengthsKv[0] = 701 is outside [0, 700]"),
    "foreign_int_array": ({"actualSeqLengths": lambda s: s.ffi.cast("aclIntArray *", 0x2000)}, INVALID,
                          "actualSeqLengths is not a live aclIntArray"),
    "layout_unterminated": ({"inputLayout": lambda s: s.string("B" * 40)}, INVALID, "input_layout must be one of BNSD"),
    "layout_empty": ({"inputLayout": lambda s: s.string("")}, INVALID, "input_layout must be one of BNSD, BSND, BSH, BNSD_BSND, TND, got ''"),
    "sabi_5d": ({"sabi": _tensor_with([1, B, N, 2, 2], "ACL_UINT16")}, INVALID, "sabi has shape [1, 1, 2, 2, 2]"),
    "sabi_batch": ({"sabi": _tensor_with([3, N, 2, 2], "ACL_UINT16")}, INVALID, "1 or B=1"),
    "sabi_heads": ({"sabi": _tensor_with([B, 3, 2, 2], "ACL_UINT16")}, INVALID, "1 or N=2"),
    "mask_4d_heads": ({"attenMask": _tensor_with([1, N + 1, SQ, SKV], "ACL_BOOL")}, INVALID, "1 or N"),
    "mask_last_stride": ({"attenMask": _strided([SQ, SKV], [2 * SKV, 2], "ACL_BOOL")}, INVALID,
                         "attenMask: the last dim must have stride 1"),
    "block_shape_zero": ({"blockShape": lambda s: s.int_array([0, 0])}, INVALID, "block_shape (0, 0)"),
    "block_shape_huge": ({"blockShape": lambda s: s.int_array([2 ** 62, 2 ** 62])}, INVALID, "not supported"),
    "quant_offset": ({"quantOffset2": _tensor_with([1], "ACL_FLOAT")}, INVALID, "quantOffset2 is not supported"),
}


@pytest.mark.parametrize("name", list(C_BAD_CALLS))
def test_c_entry_point_rejects(lib, name):
    overrides, expected, fragment = C_BAD_CALLS[name]
    rc, message = _get_workspace_size(lib, overrides)
    assert rc == expected, message
    assert fragment in message, message


def test_c_runtime_calls_reject_bad_arguments(lib):
    """The ACL runtime subset: wrong enums, NULLs, foreign handles, impossible sizes."""
    ffi, raw = lib.ffi, lib.lib
    before = lib.live_objects()
    ptr = ffi.new("void **")
    buf = np.zeros(16, np.uint8)
    src = ffi.cast("void *", buf.ctypes.data)
    foreign = ffi.cast("void *", 0x3000)
    cases = [
        (lambda: raw.aclrtMalloc(ptr, 64, ffi.cast("aclrtMemMallocPolicy", 99)), "policy 99"),
        (lambda: raw.aclrtMalloc(ffi.NULL, 64, raw.ACL_MEM_MALLOC_HUGE_FIRST), "devPtr is NULL"),
        (lambda: raw.aclrtMalloc(ptr, 0, raw.ACL_MEM_MALLOC_HUGE_FIRST), "size is 0"),
        (lambda: raw.aclrtMemcpy(src, 16, src, 8, ffi.cast("aclrtMemcpyKind", 42)), "kind 42"),
        (lambda: raw.aclrtMemcpy(src, 8, src, 16, raw.ACL_MEMCPY_HOST_TO_HOST), "count 16 exceeds destMax 8"),
        (lambda: raw.aclrtMemcpy(ffi.NULL, 16, src, 8, raw.ACL_MEMCPY_HOST_TO_HOST), "dst or src is NULL"),
        (lambda: raw.aclrtFree(ffi.NULL), "devPtr is NULL"),
        (lambda: raw.aclrtDestroyStream(foreign), "not a live aclrtStream"),
        (lambda: raw.aclrtSynchronizeStream(foreign), "not a live aclrtStream"),
        (lambda: raw.aclDestroyAclOpExecutor(ffi.cast("aclOpExecutor *", foreign)), "not a live aclOpExecutor"),
        (lambda: raw.aclSetAclOpExecutorRepeatable(ffi.NULL), "executor is NULL"),
        (lambda: raw.aclnnBlitzSparseAttention(ffi.NULL, 0, ffi.NULL, ffi.NULL), "executor is NULL"),
        (lambda: raw.aclDestroyTensor(ffi.cast("aclTensor *", foreign)), "not a live aclTensor"),
        (lambda: raw.aclDestroyIntArray(ffi.cast("aclIntArray *", foreign)), "not a live aclIntArray"),
        (lambda: raw.aclrtGetDevice(ffi.NULL), "deviceId is NULL"),
        (lambda: raw.aclrtSetDevice(-1), "device -1 does not exist"),
    ]
    for make_call, fragment in cases:
        assert make_call() != 0, fragment
        assert fragment in lib.status.recent_message()
    for handle_call, fragment in [
        (lambda: raw.aclCreateIntArray(ffi.NULL, 3), "value is NULL but size is 3"),
        (lambda: raw.aclCreateIntArray(ffi.new("int64_t[]", 1), 2 ** 40), "implausibly large"),
    ]:
        assert handle_call() == ffi.NULL
        assert fragment in lib.status.recent_message()
    assert lib.live_objects() == before


@pytest.mark.parametrize("dims, strides, offset, fragment", [
    ([2, -3], [3, 1], 0, "viewDims holds a negative value (-3)"),
    ([2, 3], [-3, 1], 0, "stride holds a negative value (-3)"),
    ([2, 3], [3, 1], -1, "offset -1 is negative"),
    ([2 ** 40, 2 ** 40], [1, 1], 0, "more elements than fit in int64"),
    ([2, 3], [2 ** 62, 2 ** 62], 0, "the view's extent overflows int64"),
])
def test_c_descriptor_geometry_is_checked(lib, dims, strides, offset, fragment):
    ffi, raw = lib.ffi, lib.lib
    d = ffi.new("int64_t[]", dims)
    s = ffi.new("int64_t[]", strides)
    storage = ffi.new("int64_t[]", [6])
    buf = np.zeros(8, np.float32)
    before = lib.live_objects()
    handle = raw.aclCreateTensor(d, 2, raw.ACL_FLOAT, s, offset, raw.ACL_FORMAT_ND, d if fragment.startswith("more")
                                 else storage, 2 if fragment.startswith("more") else 1,
                                 ffi.cast("void *", buf.ctypes.data))
    assert handle == ffi.NULL
    assert fragment in lib.status.recent_message()
    assert lib.live_objects() == before


def test_double_destroy_and_use_after_run_are_errors_not_crashes(lib):
    from abi_params import PARAMS
    from test_binding import _arguments, _valid_arrays

    with CallScope(lib) as scope:
        args = _arguments(scope, _valid_arrays())
        lib.call("aclnnBlitzSparseAttentionGetWorkspaceSize", *[args[p] for p in PARAMS])
        executor = args["executor"][0]
        lib.call("aclDestroyAclOpExecutor", executor)
        assert lib.lib.aclDestroyAclOpExecutor(executor) == INVALID
        assert "not a live aclOpExecutor" in lib.status.recent_message()
        assert lib.lib.aclSetAclOpExecutorRepeatable(executor) == INVALID
        assert lib.lib.aclnnBlitzSparseAttention(lib.ffi.NULL, 0, executor, lib.ffi.NULL) == INVALID
    assert lib.live_objects() == {k: 0 for k in lib.live_objects()}


def test_errors_keep_their_status_and_argument(lib):
    """What a Python caller catches: a ValueError subclass with CANN's status kept."""
    q, k, v = _qkv()
    sabi = np.zeros((API_B, API_N, 2, 1), np.uint16)
    sabi[1, 3, 1, 0] = 40
    with pytest.raises(status.AclInvalidArgumentError) as info:
        blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="cpu", validate=False)
    err = info.value
    assert isinstance(err, ValueError) and err.status == INVALID
    assert err.function == "aclnnBlitzSparseAttentionGetWorkspaceSize"
    assert "sabi[b=1, h=3, row=1, col=0] = 40: key block index out of range" in err.message

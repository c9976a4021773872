"""The cffi binding and the CPU device library's C-level behaviour.

Library discovery and its error text, status -> exception with the library's message, the C
entry point's own argument checks (reached without the Python validation in front), the
asynchronous stream and the workspace's lifetime, the GIL, and resource counts over many calls.
"""

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import blitz_acl
from blitz_acl import limits
from blitz_acl.devices import _cdef, library, status
from blitz_acl.devices.descriptors import CallScope

from abi_params import PARAMS

NULLPTR, INVALID = 161001, 161002  # ACLNN_ERR_PARAM_NULLPTR / _INVALID (CANN's values)


def _live(lib):
    return lib.live_objects()


# ------------------------------------------------------------------------------ discovery


def test_missing_library_lists_every_path_and_the_variable(tmp_path):
    paths = [tmp_path / "a" / library.LIB_NAME, tmp_path / "b" / library.LIB_NAME]
    with pytest.raises(library.LibraryNotFoundError) as info:
        library.open_library(paths)
    text = str(info.value)
    for p in paths:
        assert f"{p}: not found" in text
    assert library.ENV_VAR in text and "build_kernel.sh" in text


def test_unloadable_file_is_reported_with_the_loader_error(tmp_path):
    fake = tmp_path / library.LIB_NAME
    fake.write_text("not an ELF file")
    with pytest.raises(library.LibraryNotFoundError, match=r"cannot be loaded: .*"):
        library.open_library([fake])


def test_foreign_library_is_refused(tmp_path):
    libm = Path("/lib/x86_64-linux-gnu/libm.so.6")
    if not libm.exists():
        pytest.skip("no libm at the Debian path")
    with pytest.raises(library.LibraryNotFoundError, match="not a blitz_acl CPU device library"):
        library.open_library([libm])


def test_abi_version_mismatch_is_refused(lib, monkeypatch):
    monkeypatch.setattr(_cdef, "ABI_VERSION", _cdef.ABI_VERSION + 1)
    with pytest.raises(library.LibraryNotFoundError, match="ABI version"):
        library.open_library([lib.path])


def test_candidates_order_and_override(tmp_path):
    default = library.candidates(environ={})
    assert default[0].parts[-3:] == ("blitz_acl", "_lib", library.LIB_NAME)
    assert any("build" in p.parts for p in default[1:])
    override = tmp_path / "custom.so"
    assert library.candidates(environ={library.ENV_VAR: str(override)}) == [override]


def test_only_cann_names_and_our_own_are_exported(lib):
    """The version script keeps C++ internals out of the dynamic symbol table."""
    import subprocess

    nm = subprocess.run(["nm", "-D", "--defined-only", str(lib.path)], capture_output=True, text=True)
    if nm.returncode != 0:
        pytest.skip("nm not available")
    names = [line.split()[-1] for line in nm.stdout.splitlines() if line.strip()]
    assert names and all(n.startswith(("acl", "blitz")) for n in names), names


# ------------------------------------------------------------------ statuses and messages


def test_status_becomes_exception_with_library_message(lib):
    with pytest.raises(status.AclDeviceError) as info:
        lib.call("aclrtSetDevice", 7)
    err = info.value
    assert err.status == 200002 and err.status_name == "ACL_ERROR_INVALID_DEVICE"
    assert "device 7 does not exist" in err.message and "aclrtSetDevice" in str(err)


def test_invalid_argument_is_a_value_error(lib):
    with pytest.raises(ValueError) as info:
        lib.call("aclrtFree", lib.ffi.cast("void *", 0x1234))
    assert isinstance(info.value, status.AclInvalidArgumentError)
    assert "not memory from aclrtMalloc" in info.value.message


def test_repeat_init_is_reported(lib):
    with pytest.raises(status.AclStateError) as info:
        lib.call("aclInit", lib.ffi.NULL)  # the binding already initialised the library
    assert info.value.status == 100002


def test_messages_are_per_thread(lib):
    seen = {}

    def fail_other():
        try:
            lib.call("aclrtSetDevice", 5)
        except status.AclError as e:
            seen["other"] = e.message

    with pytest.raises(status.AclError):
        lib.call("aclrtSetDevice", 9)
    worker = threading.Thread(target=fail_other)
    worker.start()
    worker.join()
    assert "device 5" in seen["other"]
    assert "device 9" in lib.status.recent_message()


# -------------------------------------------------- the C entry point's own argument checks

B, N, SQ, SKV, D = 1, 2, 200, 700, 32


def _valid_arrays():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, N, SQ, D), dtype=np.float32)
    k = rng.standard_normal((B, N, SKV, D), dtype=np.float32)
    v = rng.standard_normal((B, N, SKV, D), dtype=np.float32)
    sabi = blitz_acl.sabi.random_pattern(B, N, SQ, SKV, 0.5, seed=0)
    return dict(q=q, k=k, v=v, sabi=sabi, out=np.empty_like(q), lse=np.empty((B, N, SQ), np.float32))


def _arguments(scope, a):
    """Every GetWorkspaceSize argument of a valid call, by parameter name."""
    ffi = scope.ffi
    args = dict.fromkeys(PARAMS, ffi.NULL)
    args.update(
        query=scope.tensor(a["q"]), key=scope.tensor(a["k"]), value=scope.tensor(a["v"]),
        sabi=scope.tensor(a["sabi"]), numHeads=N, scaleValue=D ** -0.5, preTokens=2**31 - 1,
        nextTokens=0, inputLayout=scope.string("BNSD"), numKeyValueHeads=0, sparseMode=0,
        innerPrecise=1, softmaxLseFlag=True, blockShape=scope.int_array([128, 512]),
        attentionOut=scope.tensor(a["out"]),
        softmaxLse=scope.tensor(a["lse"]), workspaceSize=ffi.new("uint64_t *"),
        executor=ffi.new("aclOpExecutor **"))
    return args


def _get_workspace_size(lib, overrides=None, arrays=None):
    """(status, message) of GetWorkspaceSize with some arguments replaced; frees what it made."""
    before = _live(lib)
    with CallScope(lib) as scope:
        a = _valid_arrays()
        a.update(arrays or {})
        args = _arguments(scope, a)
        for name, make in (overrides or {}).items():
            args[name] = make(scope)
        rc = lib.lib.aclnnBlitzSparseAttentionGetWorkspaceSize(*[args[p] for p in PARAMS])
        message = lib.status.recent_message()
        if rc == 0:
            lib.call("aclDestroyAclOpExecutor", args["executor"][0])
    assert _live(lib) == before
    return rc, message


def _tensor_with(dims, dtype_name, data=None, fmt="ACL_FORMAT_ND"):
    def make(scope):
        ffi, raw = scope.ffi, scope.library.lib
        d = scope.keep(ffi.new("int64_t[]", dims))
        strides, step = [], 1
        for n in reversed(dims):
            strides.insert(0, step)
            step *= n
        s = scope.keep(ffi.new("int64_t[]", strides))
        buf = scope.keep(np.zeros(max(step, 1) * 8, np.uint8)) if data is None else data
        handle = scope.library.create("aclCreateTensor", d, len(dims), getattr(raw, dtype_name), s, 0,
                                      getattr(raw, fmt), d, len(dims), ffi.cast("void *", buf.ctypes.data))
        scope.on_exit("aclDestroyTensor", handle)
        return handle
    return make


def test_valid_arguments_pass(lib):
    rc, message = _get_workspace_size(lib)
    assert rc == 0, message


BAD_CALLS = {
    # name: (overrides or array replacements, expected status, message fragment)
    "null_query": ({"query": lambda s: s.ffi.NULL}, NULLPTR, "query is NULL"),
    "null_out": ({"attentionOut": lambda s: s.ffi.NULL}, NULLPTR, "attentionOut is NULL"),
    "null_lse_with_flag": ({"softmaxLse": lambda s: s.ffi.NULL}, NULLPTR, "softmaxLse is NULL"),
    "null_layout": ({"inputLayout": lambda s: s.ffi.NULL}, NULLPTR, "inputLayout is NULL"),
    "null_workspace_size": ({"workspaceSize": lambda s: s.ffi.NULL}, NULLPTR, "workspaceSize is NULL"),
    "null_executor": ({"executor": lambda s: s.ffi.NULL}, NULLPTR, "executor is NULL"),
    "foreign_tensor": ({"key": lambda s: s.ffi.cast("aclTensor *", 0x1000)}, INVALID, "not a live aclTensor"),
    "bad_layout": ({"inputLayout": lambda s: s.string("NSBD")}, INVALID, "input_layout must be one of BNSD, BSND, BSH, BNSD_BSND, TND, got 'NSBD'"),
    "pse_given": ({"pseShift": _tensor_with([B, N, SQ, SKV], "ACL_FLOAT16")}, INVALID, "pseShift is not supported"),
    "quant_given": ({"deqScale1": _tensor_with([1], "ACL_UINT64")}, INVALID, "deqScale1 is not supported"),
    "heads_zero": ({"numHeads": lambda s: 0}, INVALID, "numHeads = 0"),
    "heads_mismatch": ({"numHeads": lambda s: 4}, INVALID, "expected 4"),
    "kv_heads_not_divisor": ({"numKeyValueHeads": lambda s: 3}, INVALID, "not a multiple of numKeyValueHeads"),
    "sparse_mode_5": ({"sparseMode": lambda s: 5}, INVALID, "sparse_mode must be one of (0, 1, 2, 3, 4), got 5"),
    "mode1_without_mask": ({"sparseMode": lambda s: 1}, NULLPTR, "sparseMode 1 requires"),
    "inner_precise": ({"innerPrecise": lambda s: 9}, INVALID, "innerPrecise = 9"),
    "scale_nan": ({"scaleValue": lambda s: float("nan")}, INVALID, "scaleValue"),
    "block_shape_unsupported": ({"blockShape": lambda s: s.int_array([100, 512])}, INVALID, "block_shape (100, 512) is not supported by the CPU device"),
    "block_shape_length": ({"blockShape": lambda s: s.int_array([128])}, INVALID, "expected (bq, bkv)"),
    "lengths_too_long": ({"actualSeqLengths": lambda s: s.int_array([SQ + 1])}, INVALID, "actualSeqLengths[0] = 201"),
    "mask_dtype": ({"attenMask": _tensor_with([SQ, SKV], "ACL_FLOAT")}, INVALID,
                   limits.refuse_mask_dtype("attenMask", "ACL_FLOAT")),
    "mask_shape": ({"attenMask": _tensor_with([SQ, SKV - 1], "ACL_BOOL")}, INVALID, "attenMask has shape"),
    "format_nchw": ({"query": _tensor_with([B, N, SQ, D], "ACL_FLOAT", fmt="ACL_FORMAT_NCHW")}, INVALID,
                    "ACL_FORMAT_NCHW"),
    "query_dtype_int8": ({"query": _tensor_with([B, N, SQ, D], "ACL_INT8")}, INVALID,
                         limits.refuse_qkv_dtype("query", "ACL_INT8")),
    "key_dtype_differs": ({"key": _tensor_with([B, N, SKV, D], "ACL_FLOAT16")}, INVALID, "key has dtype ACL_FLOAT16"),
    "key_batch": ({"key": _tensor_with([2, N, SKV, D], "ACL_FLOAT"),
                   "value": _tensor_with([2, N, SKV, D], "ACL_FLOAT")}, INVALID, "expected batch 1"),
    "value_shape": ({"value": _tensor_with([B, N, SKV - 1, D], "ACL_FLOAT")}, INVALID, "but value has shape"),
    "query_rank": ({"query": _tensor_with([N, SQ, D], "ACL_FLOAT")}, INVALID, "needs 4 dims"),
    "out_shape": ({"attentionOut": _tensor_with([B, N, SQ + 1, D], "ACL_FLOAT")}, INVALID, "attentionOut has shape"),
    "lse_shape": ({"softmaxLse": _tensor_with([B, N, SQ - 1], "ACL_FLOAT")}, INVALID, "softmaxLse has shape"),
    "sabi_dtype": ({"sabi": _tensor_with([B, N, 2, 2], "ACL_INT32")}, INVALID, "sabi has dtype ACL_INT32"),
    "sabi_rows": ({"sabi": _tensor_with([B, N, 3, 2], "ACL_UINT16")}, INVALID, "R=ceil(200/128)=2"),
    "sabi_too_wide": ({"sabi": _tensor_with([B, N, 2, 3], "ACL_UINT16")}, INVALID, "W<=ceil(700/512)=2"),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_c_checks_reject_bad_arguments(lib, name):
    overrides, expected, fragment = BAD_CALLS[name]
    rc, message = _get_workspace_size(lib, overrides)
    assert rc == expected, message
    assert fragment in message


@pytest.mark.parametrize("entries,fragment", [
    ([[0, 2], [1, 0xFFFF]], "sabi[b=0, h=0, row=0, col=1] = 2: key block index out of range"),
    ([[1, 1], [0, 0xFFFF]], "sabi[b=0, h=0, row=0, col=1] = 1: key block 1 appears twice"),
])
def test_c_checks_every_sabi_index(lib, entries, fragment):
    sabi = np.broadcast_to(np.array(entries, np.uint16), (B, N, 2, 2)).copy()
    rc, message = _get_workspace_size(lib, arrays={"sabi": sabi})
    assert rc == INVALID and fragment in message


def test_c_checks_reach_python_without_validation():
    """validate=False skips the Python sabi scan; the library still refuses a bad index."""
    a = _valid_arrays()
    sabi = a["sabi"].copy()
    sabi[0, 1, 1, 0] = 7
    with pytest.raises(status.AclInvalidArgumentError) as info:
        blitz_acl.blitz_sparse_attention(a["q"], a["k"], a["v"], sabi, device="cpu", validate=False)
    assert info.value.status == INVALID and "sabi[b=0, h=1, row=1, col=0] = 7" in info.value.message


def test_bad_descriptor_arguments(lib):
    ffi, raw = lib.ffi, lib.lib
    dims = ffi.new("int64_t[]", [2, 3])
    strides = ffi.new("int64_t[]", [3, 1])
    buf = np.zeros(6, np.float32)
    ptr = ffi.cast("void *", buf.ctypes.data)
    cases = [
        ((dims, 2, 99, strides, 0, raw.ACL_FORMAT_ND, dims, 2, ptr), "dataType 99"),
        ((dims, 2, raw.ACL_FLOAT, strides, 0, 77, dims, 2, ptr), "format 77"),
        ((ffi.NULL, 2, raw.ACL_FLOAT, strides, 0, raw.ACL_FORMAT_ND, dims, 2, ptr), "viewDims is NULL"),
        ((dims, 2, raw.ACL_FLOAT, strides, 1, raw.ACL_FORMAT_ND, dims, 2, ptr), "the view reaches element 6"),
        ((dims, 9, raw.ACL_FLOAT, strides, 0, raw.ACL_FORMAT_ND, dims, 2, ptr), "at most 8"),
    ]
    before = _live(lib)
    for args, fragment in cases:
        assert raw.aclCreateTensor(*args) == ffi.NULL
        assert fragment in lib.status.recent_message()
    assert _live(lib) == before


# ------------------------------------------------------------------ the run call and streams


def _prepared(lib, scope, a):
    args = _arguments(scope, a)
    lib.call("aclnnBlitzSparseAttentionGetWorkspaceSize", *[args[p] for p in PARAMS])
    return args["executor"][0], int(args["workspaceSize"][0])


def test_run_checks_workspace_and_consumes_the_executor(lib):
    before = _live(lib)
    with CallScope(lib) as scope:
        executor, size = _prepared(lib, scope, _valid_arrays())
        assert size > 0
        rc = lib.lib.aclnnBlitzSparseAttention(lib.ffi.NULL, size, executor, lib.ffi.NULL)
        assert rc == NULLPTR and "workspace is NULL" in lib.status.recent_message()
        # The executor is gone even though the run was refused, as in CANN.
        rc = lib.lib.aclnnBlitzSparseAttention(lib.ffi.NULL, size, executor, lib.ffi.NULL)
        assert rc == INVALID and "not a live aclOpExecutor" in lib.status.recent_message()
        executor, size = _prepared(lib, scope, _valid_arrays())
        rc = lib.lib.aclnnBlitzSparseAttention(scope.device_buffer(size), size - 1, executor, lib.ffi.NULL)
        assert rc == INVALID and "smaller than" in lib.status.recent_message()
    assert _live(lib) == before


def test_repeatable_executor_runs_twice(lib):
    a = _valid_arrays()
    expected = blitz_acl.blitz_sparse_attention(a["q"], a["k"], a["v"], a["sabi"], device="reference")
    with CallScope(lib) as scope:
        executor, size = _prepared(lib, scope, a)
        lib.call("aclSetAclOpExecutorRepeatable", executor)
        workspace = scope.device_buffer(size)
        stream = scope.stream()
        for _ in range(2):
            a["out"][...] = np.nan
            lib.call("aclnnBlitzSparseAttention", workspace, size, executor, stream)
            lib.call("aclrtSynchronizeStream", stream)
            np.testing.assert_allclose(a["out"], expected, atol=1e-4, rtol=0)
        lib.call("aclDestroyAclOpExecutor", executor)
    assert _live(lib)["executors"] == 0


def _long_call_arrays():
    """Dense fp32 [1, 4, 4096, 64]: a call of tens of milliseconds; out starts as NaN."""
    rng = np.random.default_rng(1)
    seq = 4096
    q = rng.standard_normal((1, 4, seq, 64), dtype=np.float32)
    return dict(_valid_arrays(), q=q, k=q.copy(), v=q.copy(), out=np.full_like(q, np.nan), sabi=None,
                lse=np.empty((1, 4, seq), np.float32))


def _launch_long_call(lib, scope, a):
    """Queues the call on a new stream of scope's (drained at its exit) and returns the stream."""
    args = _arguments(scope, a)
    args.update(numHeads=4, sabi=lib.ffi.NULL)
    lib.call("aclnnBlitzSparseAttentionGetWorkspaceSize", *[args[p] for p in PARAMS])
    size = int(args["workspaceSize"][0])
    workspace, stream = scope.device_buffer(size), scope.stream()
    scope.on_exit("aclrtSynchronizeStream", stream)
    lib.call("aclnnBlitzSparseAttention", workspace, size, args["executor"][0], stream)
    return stream


def test_stream_is_asynchronous_and_sync_waits(lib):
    """The run call returns while the kernel is still working; synchronize waits for it."""
    a = _long_call_arrays()
    with CallScope(lib) as scope:
        stream = _launch_long_call(lib, scope, a)
        pending = bool(np.isnan(a["out"]).any())
        lib.call("aclrtSynchronizeStream", stream)
        assert pending, "the run call waited for the kernel: the stream is not asynchronous"
        assert not np.isnan(a["out"]).any()


def test_a_timed_synchronize_gives_up_and_the_work_runs_on(lib):
    """aclrtSynchronizeStreamWithTimeout: ACL_ERROR_RT_STREAM_SYNC_TIMEOUT while the kernel still
    runs (the binding's Ctrl-C slices rely on it), success once it drained (-1 waits), and
    CANN's range (-1 or > 0 ms) enforced."""
    a = _long_call_arrays()
    for bad in (0, -2):
        with pytest.raises(status.AclInvalidArgumentError, match=f"timeout must be -1 .* got {bad}"):
            lib.call("aclrtSynchronizeStreamWithTimeout", lib.ffi.NULL, bad)
    with CallScope(lib) as scope:
        stream = _launch_long_call(lib, scope, a)
        with pytest.raises(status.AclError, match="did not finish within 1 ms") as timed_out:
            lib.call("aclrtSynchronizeStreamWithTimeout", stream, 1)
        assert timed_out.value.status == lib.lib.ACL_ERROR_RT_STREAM_SYNC_TIMEOUT
        lib.call("aclrtSynchronizeStreamWithTimeout", stream, -1)
        assert not np.isnan(a["out"]).any()
        lib.call("aclrtSynchronizeStreamWithTimeout", stream, 1)  # drained: returns at once


def test_binding_frees_the_workspace_only_after_the_stream_drains(lib, monkeypatch):
    """On success and on failure after launch, aclrtFree follows aclrtSynchronizeStream."""
    order = []
    real_call = library.Library.call
    fail = {"first_sync": True}

    def recording_call(self, function, *args):
        order.append(function)
        if function == "aclrtSynchronizeStreamWithTimeout" and fail["first_sync"] is None:
            fail["first_sync"] = False
            raise status.AclInternalError(500000, "ACL_ERROR_INTERNAL_ERROR", function, "injected")
        return real_call(self, function, *args)

    monkeypatch.setattr(library.Library, "call", recording_call)
    a = _valid_arrays()
    blitz_acl.blitz_sparse_attention(a["q"], a["k"], a["v"], a["sabi"], device="cpu")
    assert order.index("aclrtFree") > order.index("aclrtSynchronizeStreamWithTimeout")

    order.clear()
    fail["first_sync"] = None  # the explicit synchronize fails: the scope must still drain first
    with pytest.raises(status.AclInternalError, match="injected"):
        blitz_acl.blitz_sparse_attention(a["q"], a["k"], a["v"], a["sabi"], device="cpu")
    explicit, drain = order.index("aclrtSynchronizeStreamWithTimeout"), order.index("aclrtSynchronizeStream")
    assert explicit < drain < order.index("aclrtFree") < order.index("aclrtDestroyStream")
    monkeypatch.undo()
    assert _live(lib) == {k: 0 for k in _live(lib)}


def test_gil_is_released_while_the_kernel_runs():
    rng = np.random.default_rng(2)
    q = rng.standard_normal((1, 4, 4096, 64), dtype=np.float32)
    done = threading.Event()

    def work():
        blitz_acl.blitz_sparse_attention(q, q, q, device="cpu")
        done.set()

    worker = threading.Thread(target=work)
    start = time.perf_counter()
    worker.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    elapsed = time.perf_counter() - start
    # With the GIL held for the whole call this loop could not run at all.
    assert ticks >= 10, f"main thread ran {ticks} times in {elapsed:.3f}s"


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_many_calls_leave_no_live_objects_and_flat_memory(lib):
    rng = np.random.default_rng(3)
    q = rng.standard_normal((1, 2, 130, 32), dtype=np.float32)
    k = rng.standard_normal((1, 2, 600, 32), dtype=np.float32)
    sabi = blitz_acl.sabi.random_pattern(1, 2, 130, 600, 0.5, seed=0)
    bad = sabi.copy()
    bad[0, 0, 0, 0] = 9  # rejected by the library on every call

    def one(i):
        if i % 4 == 3:
            with pytest.raises(status.AclInvalidArgumentError):
                blitz_acl.blitz_sparse_attention(q, k, k, bad, device="cpu", validate=False)
        else:
            blitz_acl.blitz_sparse_attention(q, k, k, sabi, device="cpu", return_lse=True)

    for i in range(100):  # warm-up: allocator pools, thread stacks
        one(i)
    rss_before = _rss_bytes()
    for i in range(1000):
        one(i)
    growth = _rss_bytes() - rss_before
    assert _live(lib) == {"tensors": 0, "int_arrays": 0, "executors": 0, "streams": 0, "allocations": 0}
    if "sanitizer build" in lib.device_info():
        return  # ASan keeps freed memory in quarantine: RSS grows by design; the counts above hold
    assert growth < 8 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 1000 calls"


def _run_raw(lib, scope, args):
    lib.call("aclnnBlitzSparseAttentionGetWorkspaceSize", *[args[p] for p in PARAMS])
    size = int(args["workspaceSize"][0])
    workspace, stream = scope.device_buffer(size), scope.stream()
    scope.on_exit("aclrtSynchronizeStream", stream)
    lib.call("aclnnBlitzSparseAttention", workspace, size, args["executor"][0], stream)
    lib.call("aclrtSynchronizeStream", stream)


def test_null_block_shape_is_128_by_128(lib):
    """NULL (or empty) blockShape is the original's (128, 128): a sabi indexing 128-wide key
    blocks is accepted and computed as such (checked against the reference at (128, 128))."""
    rng = np.random.default_rng(3)
    q = rng.standard_normal((B, N, 256, D), dtype=np.float32)
    k = rng.standard_normal((B, N, 640, D), dtype=np.float32)
    v = rng.standard_normal((B, N, 640, D), dtype=np.float32)
    sabi = blitz_acl.sabi.random_pattern(B, N, 256, 640, 0.5, block_shape=(128, 128), seed=1)
    assert sabi.shape[-1] > 640 // 512 + 1  # wider than a (128, 512) sabi could be
    expected = blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=(128, 128), device="reference")
    for block_shape in (None, []):
        a = dict(q=q, k=k, v=v, sabi=sabi, out=np.full_like(q, np.nan), lse=None)
        with CallScope(lib) as scope:
            args = _arguments(scope, a)
            args.update(softmaxLseFlag=False, softmaxLse=scope.ffi.NULL,
                        blockShape=scope.ffi.NULL if block_shape is None else scope.int_array(block_shape))
            _run_raw(lib, scope, args)
        np.testing.assert_allclose(a["out"], expected, atol=1e-4, rtol=0)


def test_lse_flag_false_accepts_null_and_leaves_lse_untouched(lib):
    a = _valid_arrays()
    expected = blitz_acl.blitz_sparse_attention(a["q"], a["k"], a["v"], a["sabi"], device="reference")
    for lse in ("null", "buffer", "empty"):
        a["out"][...] = np.nan
        a["lse"] = np.full((B, N, SQ), 7.0, np.float32) if lse == "buffer" else np.empty((0,), np.float32)
        with CallScope(lib) as scope:
            args = _arguments(scope, a)
            args.update(softmaxLseFlag=False, blockShape=scope.int_array([128, 512]))
            if lse == "null":
                args["softmaxLse"] = scope.ffi.NULL
            _run_raw(lib, scope, args)
        np.testing.assert_allclose(a["out"], expected, atol=1e-4, rtol=0)
        if lse == "buffer":
            assert (a["lse"] == 7.0).all()


def test_lse_flag_true_needs_the_lse_tensor(lib):
    rc, message = _get_workspace_size(lib, {"softmaxLse": lambda scope: scope.ffi.NULL,
                                            "blockShape": lambda scope: scope.int_array([128, 512])})
    assert rc == 161001 and "softmaxLse is NULL but softmaxLseFlag is true" in message


def test_lengths_longer_than_batch_use_the_first_b(lib):
    """actualSeqLengths with more than B entries: the first B are used (the original's rule)."""
    a = _valid_arrays()
    expected = blitz_acl.blitz_sparse_attention(a["q"], a["k"], a["v"], a["sabi"], actual_seq_lengths=[150],
                                                actual_seq_lengths_kv=[600], device="reference")
    with CallScope(lib) as scope:
        args = _arguments(scope, a)
        args.update(actualSeqLengths=scope.int_array([150, 9999, -1]),
                    actualSeqLengthsKv=scope.int_array([600, 0]), blockShape=scope.int_array([128, 512]),
                    softmaxLseFlag=False, softmaxLse=scope.ffi.NULL)
        _run_raw(lib, scope, args)
    np.testing.assert_allclose(a["out"], expected, atol=1e-4, rtol=0)
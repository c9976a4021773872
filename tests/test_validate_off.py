"""validate=False: what is still guaranteed, proven under AddressSanitizer in CI's sanitizer job.

validate=False skips Python's O(sabi) scan of sabi entries and atten_mask values. Then:
- the C entry point still checks every sabi index and every length at GetWorkspaceSize, so a
  bad value is an error (a ValueError carrying CANN's status), never a read;
- the kernel reads sabi from the caller's memory when it runs. A caller may change it between
  GetWorkspaceSize and the run (a repeatable executor reused with new indices): the kernel
  bounds-guards every index itself, so an out-of-range index acts as "no block" (zeros where
  nothing else is selected) and a repeated one stays in bounds;
- atten_mask bytes other than 0/1 mean "masked" (any nonzero byte), never an index.
Under the sanitizer build (BLITZ_ACL_CPU_LIBRARY=build-sanitize/..., libasan preloaded) any
out-of-bounds access in these calls aborts the process, so passing here is the proof.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import blitz_acl
from blitz_acl import sabi as S
import bounds
from blitz_acl.devices import status
from blitz_acl.devices.descriptors import CallScope

# Set by .ci/run's sanitizer job: the library under test must be the sanitizer build.
EXPECT_SANITIZER_ENV = "BLITZ_ACL_EXPECT_SANITIZER"
B, N, SQ, SKV, D = 2, 2, 200, 700, 32
BLOCK = (64, 128)  # R = 4 query blocks, C = 6 key blocks
ALL_ZERO = {"tensors": 0, "int_arrays": 0, "executors": 0, "streams": 0, "allocations": 0}


def _qkv(seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((B, N, SQ, D), dtype=np.float32)
    k = rng.standard_normal((B, N, SKV, D), dtype=np.float32)
    v = rng.standard_normal((B, N, SKV, D), dtype=np.float32)
    return q, k, v


def _within_oracle(out, q, k, v, lse=None, **kwargs):
    """A float32 answer within tests/bounds.py's bound of the independent oracle."""
    bounds.assert_within(out, bounds.truth(q, k, v, "float32", **kwargs), "BNSD", lse)


def test_sanitizer_build_is_the_library_under_test_when_expected(lib):
    if os.environ.get(EXPECT_SANITIZER_ENV) != "1":
        pytest.skip(f"{EXPECT_SANITIZER_ENV} is not set (only the sanitizer job sets it)")
    assert "sanitizer build" in lib.device_info(), (lib.path, lib.device_info())


@pytest.mark.parametrize("entry, fragment", [
    (6, "= 6: key block index out of range"),
    (0xFFFE, "= 65534: key block index out of range"),
    (-2, None),  # not an index at all: Python's dtype conversion refuses it even with validate=False
])
def test_bad_index_without_validation_is_an_error(lib, entry, fragment):
    q, k, v = _qkv()
    sabi = S.random_pattern(B, N, SQ, SKV, 0.5, block_shape=BLOCK, seed=1).astype(np.int32)
    sabi[sabi == S.PAD] = -1
    sabi[1, 0, 2, 0] = entry
    error = ValueError if fragment is None else status.AclInvalidArgumentError
    with pytest.raises(error) as info:
        blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=BLOCK, device="cpu", validate=False)
    if fragment is not None:
        assert f"sabi[b=1, h=0, row=2, col=0] {fragment}" in info.value.message
    assert lib.live_objects() == ALL_ZERO


def test_repeated_index_without_validation_is_an_error(lib):
    q, k, v = _qkv()
    sabi = np.full((1, 1, 4, 3), S.PAD, np.uint16)
    sabi[0, 0, :, 0] = 1
    sabi[0, 0, 3, 2] = 1
    with pytest.raises(status.AclInvalidArgumentError, match=r"sabi\[b=0, h=0, row=3, col=2\] = 1: key block 1 appears twice"):
        blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=BLOCK, device="cpu", validate=False)


def _repeatable_call(lib, scope, q, k, v, sabi, lse):
    """A repeatable executor over caller-owned sabi memory; returns (executor, ws, size, stream)."""
    from abi_params import PARAMS

    ffi = scope.ffi
    out = np.full_like(q, np.nan)
    args = dict.fromkeys(PARAMS, ffi.NULL)
    args.update(
        query=scope.tensor(q), key=scope.tensor(k), value=scope.tensor(v), sabi=scope.tensor(sabi),
        numHeads=N, scaleValue=D ** -0.5, preTokens=2 ** 31 - 1, nextTokens=2 ** 31 - 1,
        inputLayout=scope.string("BNSD"), numKeyValueHeads=0, sparseMode=0, innerPrecise=1,
        softmaxLseFlag=True, blockShape=scope.int_array(list(BLOCK)), attentionOut=scope.tensor(out),
        softmaxLse=scope.tensor(lse), workspaceSize=ffi.new("uint64_t *"), executor=ffi.new("aclOpExecutor **"))
    lib.call("aclnnBlitzSparseAttentionGetWorkspaceSize", *[args[p] for p in PARAMS])
    executor = args["executor"][0]
    lib.call("aclSetAclOpExecutorRepeatable", executor)
    scope.on_exit("aclDestroyAclOpExecutor", executor)
    size = int(args["workspaceSize"][0])
    workspace, stream = scope.device_buffer(size), scope.stream()
    scope.on_exit("aclrtSynchronizeStream", stream)
    return executor, workspace, size, stream, out


def test_kernel_guards_indices_changed_after_the_checks(lib):
    """sabi is valid at GetWorkspaceSize, then overwritten with out-of-range and repeated
    indices before a second run: the kernel reads only in-bounds tiles."""
    q, k, v = _qkv(3)
    sabi = S.random_pattern(B, N, SQ, SKV, 0.5, block_shape=BLOCK, seed=2, shuffle=True)
    lse = np.empty((B, N, SQ), np.float32)
    with CallScope(lib) as scope:
        executor, workspace, size, stream, out = _repeatable_call(lib, scope, q, k, v, sabi, lse)
        lib.call("aclnnBlitzSparseAttention", workspace, size, executor, stream)
        lib.call("aclrtSynchronizeStream", stream)
        _within_oracle(out, q, k, v, sabi=sabi, block_shape=BLOCK)

        # Out of range: past C, the largest uint16 index, and the row's own width.
        kept = sabi.copy()
        rng = np.random.default_rng(4)
        hit = rng.random(sabi.shape) < 0.4
        sabi[hit] = rng.choice(np.array([6, 7, 300, 0xFFFE], np.uint16), size=int(hit.sum()))
        kept[hit] = S.PAD
        lib.call("aclnnBlitzSparseAttention", workspace, size, executor, stream)
        lib.call("aclrtSynchronizeStream", stream)
        _within_oracle(out, q, k, v, lse, sabi=kept, block_shape=BLOCK)
        empty_rows = (kept == S.PAD).all(axis=-1)
        assert empty_rows.any(), "the pattern should leave some rows with no valid block"

        # Every entry of every row the same block: in bounds, and the output is the row that
        # lists block 5 alone (a repeated tile's weights cancel in the normalisation). The lse
        # is unspecified here: the kernel adds the tile once per repeat (ln(W) too large).
        sabi[...] = 5
        lib.call("aclnnBlitzSparseAttention", workspace, size, executor, stream)
        lib.call("aclrtSynchronizeStream", stream)
        once = np.full_like(sabi, S.PAD)
        once[..., 0] = 5
        _within_oracle(out, q, k, v, sabi=once, block_shape=BLOCK)
        assert np.isfinite(lse).all()
    assert lib.live_objects() == ALL_ZERO


@pytest.mark.parametrize("values", [(-1, 0), (2, 0), (127, 0), (-128, 1)])
def test_mask_bytes_other_than_zero_and_one_mean_masked(values):
    """validate=False skips the 0/1 check of an int8 mask; any nonzero byte masks the token."""
    q, k, v = _qkv(5)
    rng = np.random.default_rng(6)
    pick = rng.random((SQ, SKV)) < 0.3
    mask = np.where(pick, values[0], values[1]).astype(np.int8)
    out = blitz_acl.blitz_sparse_attention(q, k, v, atten_mask=mask, device="cpu", validate=False)
    _within_oracle(out, q, k, v, atten_mask=mask != 0)


@pytest.mark.parametrize("lengths, kv_lengths", [
    ([0, SQ], [SKV, 0]), ([1], [1]), ([SQ - 1, 65], [SKV - 1, 129]),
])
def test_edge_lengths_stay_in_bounds(lengths, kv_lengths):
    """The extreme valid lengths (0, 1, full, tile +- 1) with a sabi that lists every block."""
    q, k, v = _qkv(7)
    sabi = S.dense_pattern(B, N, SQ, SKV, block_shape=BLOCK)
    kwargs = dict(actual_seq_lengths=lengths, actual_seq_lengths_kv=kv_lengths, block_shape=BLOCK,
                  return_lse=True)
    out, lse = blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="cpu", validate=False, **kwargs)
    _within_oracle(out, q, k, v, lse, sabi=sabi, **kwargs)


@pytest.mark.parametrize("length", [-1, SKV + 1, 2 ** 62, -(2 ** 63)])
def test_bad_lengths_are_refused_by_the_library(lib, length):
    """Lengths are checked in C whatever Python did, and copied into the plan (a caller cannot
    change them before the run)."""
    from test_binding import _get_workspace_size

    rc, message = _get_workspace_size(lib, {"actualSeqLengthsKv": lambda s: s.int_array([length])})
    assert rc == 161002 and f"actualSeqLengthsKv[0] = {length} is outside" in message


# A child that makes the kernel read past a buffer through a descriptor that lies about its
# storage (the one thing the library cannot check: how big caller memory really is).
OOB_CHILD = textwrap.dedent("""
    import numpy as np
    from blitz_acl.devices import cpu, library
    from blitz_acl.devices.descriptors import CallScope
    lib = library.load()
    cpu.ensure_device(lib)
    ffi = lib.ffi
    q = np.ones((1, 1, 64, 32), np.float32)
    short = np.ones((1, 1, 16, 32), np.float32)  # key/value claim 64 rows but hold 16
    out = np.empty_like(q)
    with CallScope(lib) as scope:
        def tensor(a, dims):
            d = scope.keep(ffi.new("int64_t[]", dims))
            strides, step = [], 1
            for n in reversed(dims):
                strides.insert(0, step); step *= n
            s = scope.keep(ffi.new("int64_t[]", strides))
            h = lib.create("aclCreateTensor", d, 4, lib.lib.ACL_FLOAT, s, 0, lib.lib.ACL_FORMAT_ND, d, 4,
                           ffi.cast("void *", a.ctypes.data))
            scope.on_exit("aclDestroyTensor", h)
            return h
        size, ex = ffi.new("uint64_t *"), ffi.new("aclOpExecutor **")
        lib.call("aclnnBlitzSparseAttentionGetWorkspaceSize", tensor(q, [1, 1, 64, 32]),
                 tensor(short, [1, 1, 64, 32]), tensor(short, [1, 1, 64, 32]), *([ffi.NULL] * 10),
                 1, 1.0, 2**31 - 1, 2**31 - 1, scope.string("BNSD"), 0, 0, 1, False, ffi.NULL,
                 tensor(out, [1, 1, 64, 32]), ffi.NULL, size, ex)
        ws = scope.device_buffer(int(size[0]))
        lib.call("aclnnBlitzSparseAttention", ws, int(size[0]), ex[0], ffi.NULL)
        lib.call("aclrtSynchronizeStream", ffi.NULL)
    print("no error detected")
""")


def test_the_sanitizer_job_would_catch_an_out_of_bounds_read(lib, tmp_path):
    """The proof above is only as good as the sanitizer: a real overflow must abort the run."""
    if "sanitizer build" not in lib.device_info():
        pytest.skip("needs the sanitizer build (./build_kernel.sh --sanitize; see .ci/run)")
    script = tmp_path / "oob.py"
    script.write_text(OOB_CHILD)
    package_root = str(Path(blitz_acl.__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode != 0 and "AddressSanitizer: heap-buffer-overflow" in run.stderr, run.stdout + run.stderr[-2000:]

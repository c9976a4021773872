"""Fuzz targets: functions of a byte string that must never crash, hang or break an invariant.

`sabi_validation(data)`: a sabi (any integer dtype, a shape near the expected one, entries
anywhere) and call geometry from the bytes. Python's checks may only raise TypeError/ValueError;
the library, reached with validate=False, must accept exactly what Python's entry checks
accept (and report the same first bad entry); accepted calls run.

`c_entry_point(data)`: every argument of aclnnBlitzSparseAttentionGetWorkspaceSize from the
bytes, called on the raw entry point (no Python validation): NULLs, live and destroyed handles,
dtype and format enums in and out of range, ranks, dims, strides (including overlapping and
non-contiguous), heads, layouts (including unterminated garbage), scales, modes, lengths, block
shapes. Descriptors are truthful about their storage (the one thing the library cannot check);
the status must be 0, ACLNN_ERR_PARAM_NULLPTR or ACLNN_ERR_PARAM_INVALID with a message; a
call that is accepted must run to completion; no handle may be left alive.

Both read the bytes through `ByteReader`, so any engine (atheris/libFuzzer, or plain random
bytes) drives them. Run them with tests/fuzz/run_fuzz.py.
"""

from __future__ import annotations

import math
import struct

import numpy as np

import blitz_acl
from blitz_acl import sabi as S
from blitz_acl.devices import cpu, library
from blitz_acl.devices.descriptors import CallScope

from abi_params import PARAMS  # tests/abi_params.py (the runner puts tests/ on sys.path)

NULLPTR, INVALID = 161001, 161002  # ACLNN_ERR_PARAM_NULLPTR / _INVALID
# Bounds that keep one case fast (milliseconds) while reaching every check.
MAX_DIM = 300
MAX_ELEMENTS = 1 << 18
MAX_RANK = 9  # one past the library's limit of 8


class ByteReader:
    """Deterministic choices from a byte string; reads zeros once it is exhausted."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def _take(self, n: int) -> bytes:
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk.ljust(n, b"\0")

    def int_in(self, lo: int, hi: int) -> int:
        span = hi - lo + 1
        raw = int.from_bytes(self._take(8 if span > 1 << 16 else 2), "little")
        return lo + raw % span

    def flag(self) -> bool:
        return bool(self._take(1)[0] & 1)

    def rare(self, n: int) -> bool:
        """True with probability 1/n; False once the bytes run out (exhausted input = plausible)."""
        return self.int_in(0, n - 1) == n - 1

    def pick(self, options):
        return options[self.int_in(0, len(options) - 1)]

    def float64(self) -> float:
        return struct.unpack("<d", self._take(8))[0]

    def raw(self, n: int) -> bytes:
        return self._take(n)


_lib = None


def _library():
    global _lib
    if _lib is None:
        _lib = library.load()
        cpu.ensure_device(_lib)
    return _lib


# ------------------------------------------------------------------------------ sabi checks

SABI_DTYPES = ("uint16", "int16", "int32", "int64")
BLOCK_SHAPES = ((64, 64), (64, 128), (128, 512), (256, 1024))


def sabi_validation(data: bytes) -> None:
    r = ByteReader(data)
    batch, heads = r.int_in(1, 2), r.int_in(1, 3)
    bq, bkv = r.pick(BLOCK_SHAPES)
    seq_q, seq_kv = r.int_in(1, 300), r.int_in(1, 1100)
    rows, cols = S.block_counts(seq_q, seq_kv, (bq, bkv))
    shape = (r.pick((1, batch, batch + 1)), r.pick((1, heads, heads + 1)),
             r.pick((rows, rows, rows - 1, rows + 1)), r.int_in(0, cols + 1))
    if r.flag():
        shape = shape[1:]  # 3-d sabi
    dtype = np.dtype(r.pick(SABI_DTYPES))
    count = int(np.prod(shape))
    if r.flag():  # mostly plausible entries: -1 / PAD and indices near the valid range
        values = np.array([r.int_in(-1, cols + 1) for _ in range(count)], np.int64).astype(dtype)
    else:  # raw bytes: any value of the dtype
        values = np.frombuffer(r.raw(count * dtype.itemsize), dtype=dtype.newbyteorder("<")).astype(dtype)
    sabi = values.reshape(shape)

    # Random values (not constants, under which every selection gives the same output), so an
    # accepted call's answer is checked against the independent oracle.
    rng = np.random.default_rng(r.int_in(0, 2 ** 32 - 1))
    q = rng.standard_normal((batch, heads, seq_q, 16), dtype=np.float32)
    k = rng.standard_normal((batch, heads, seq_kv, 16), dtype=np.float32)
    v = rng.standard_normal((batch, heads, seq_kv, 16), dtype=np.float32)
    kwargs = dict(block_shape=(bq, bkv), device="cpu")
    checked_error = unchecked_error = None
    outs = []
    try:
        outs.append(blitz_acl.blitz_sparse_attention(q, k, v, sabi, **kwargs))
    except (TypeError, ValueError) as e:
        checked_error = e
    try:
        outs.append(blitz_acl.blitz_sparse_attention(q, k, v, sabi, validate=False, **kwargs))
    except (TypeError, ValueError) as e:
        unchecked_error = e
    assert (checked_error is None) == (unchecked_error is None), (checked_error, unchecked_error)
    if outs:
        import bounds  # tests/bounds.py: the oracle within the suite's float32 bound

        truth = bounds.truth(q, k, v, "float32", sabi=sabi, block_shape=(bq, bkv))
        for out in outs:
            bounds.assert_within(out, truth, "BNSD", what="sabi_validation")
    assert _library().live_objects() == dict.fromkeys(_library().live_objects(), 0)


# ------------------------------------------------------------------------ the C entry point

TENSOR_PARAMS = ("query", "key", "value", "pseShift", "attenMask", "sabi", "deqScale1", "quantScale1",
                 "deqScale2", "quantScale2", "quantOffset2", "attentionOut", "softmaxLse")
OPTIONAL_TENSORS = {"pseShift", "attenMask", "sabi", "deqScale1", "quantScale1", "deqScale2", "quantScale2",
                    "quantOffset2", "softmaxLse"}
DTYPES = {"ACL_FLOAT": np.float32, "ACL_FLOAT16": np.float16, "ACL_BF16": np.uint16, "ACL_BOOL": np.uint8,
          "ACL_INT8": np.int8, "ACL_UINT8": np.uint8, "ACL_UINT16": np.uint16, "ACL_INT64": np.int64,
          "ACL_INT32": np.int32, "ACL_DOUBLE": np.float64}
LAYOUTS = (b"BNSD", b"BSND", b"BSH", b"BNSD_BSND", b"", b"bnsd", b"BNSD\0X", b"B" * 40)
SPECIAL_SCALES = (0.125, 0.0, -1.0, math.inf, -math.inf, math.nan, 1e39, 5e-324)
INT64_EDGES = (0, 1, -1, 2, 2 ** 31 - 1, -(2 ** 31), 2 ** 63 - 1, -(2 ** 63))


def _in_layout(layout: bytes, b: int, heads: int, seq: int, d: int):
    if layout in (b"BSND", b"BNSD_BSND_OUT"):
        return [b, seq, heads, d]
    if layout == b"BSH":
        return [b, seq, heads * d]
    return [b, heads, seq, d]


def _dims_for(r: ByteReader, role: str, geometry, layout: bytes):
    """Plausible dims for a role most of the time (so checks past the first are reached)."""
    b, n, nkv, sq, skv, d = geometry
    out_layout = b"BNSD_BSND_OUT" if layout == b"BNSD_BSND" else layout
    plausible = {
        "query": _in_layout(layout, b, n, sq, d), "attentionOut": _in_layout(out_layout, b, n, sq, d),
        "key": _in_layout(layout, b, nkv, skv, d), "value": _in_layout(layout, b, nkv, skv, d),
        "softmaxLse": [b, n, sq], "attenMask": [sq, skv],
        "sabi": [b, n, -(-sq // 128), max(1, -(-skv // 512))],
    }.get(role, [1])
    choice = r.int_in(0, 15)
    if choice <= 12:
        return plausible
    if choice == 13:  # one dim off by a little
        dims = list(plausible)
        i = r.int_in(0, len(dims) - 1)
        dims[i] = max(0, dims[i] + r.pick((-1, 1, 2)))
        return dims
    return [r.int_in(0, 8 if choice == 14 else MAX_DIM) for _ in range(r.int_in(0, MAX_RANK))]


def _tensor(r: ByteReader, scope: CallScope, role: str, geometry, layout: bytes, default_dtype: str):
    lib, ffi = scope.library, scope.ffi
    if role in OPTIONAL_TENSORS:
        wanted = role in ("sabi", "attenMask", "softmaxLse")
        if (not r.flag()) if wanted else (not r.rare(40)):  # quantisation/pse: given rarely
            return ffi.NULL
    if r.rare(100):
        return ffi.NULL
    if r.rare(100):
        return ffi.cast("aclTensor *", r.int_in(1, 1 << 20) * 64)  # a pointer that is no tensor
    dims = _dims_for(r, role, geometry, layout)
    dtype_name = r.pick(sorted(DTYPES)) if r.rare(30) else default_dtype
    raw_dtype = r.int_in(-5, 40) if r.rare(50) else getattr(lib.lib, dtype_name)
    raw_format = r.int_in(-2, 50) if r.rare(50) else lib.lib.ACL_FORMAT_ND
    strides, step = [], 1
    for n in reversed(dims):
        strides.insert(0, step)
        step *= max(n, 1)
    kind = r.int_in(0, 15)
    if kind == 13 and strides:  # non-contiguous: every stride doubled
        strides = [2 * s for s in strides]
    elif kind == 14 and strides:  # a broadcast (stride 0) dim, overlapping elements
        strides[r.int_in(0, len(strides) - 1)] = 0
    elif kind == 15 and strides:  # arbitrary strides
        strides = [r.int_in(0, 4 * MAX_DIM) for _ in strides]
    offset = r.int_in(0, 16) if r.rare(10) else 0
    extent = offset + (1 + sum((n - 1) * s for n, s in zip(dims, strides)) if all(dims) else 0)
    if extent > MAX_ELEMENTS:
        return ffi.NULL
    np_dtype = DTYPES.get(dtype_name, np.uint8)
    if role == "sabi":
        buffer = np.array([r.pick((0, 1, 2, 3, 0xFFFF, 0xFFFE)) for _ in range(max(extent, 1))], np.uint16)
    elif role == "attenMask":
        buffer = np.frombuffer(r.raw(max(extent, 1)), np.uint8).copy()
    else:
        buffer = np.zeros(max(extent, 1) * 8 // np.dtype(np_dtype).itemsize + 1, np_dtype)  # truthful, padded
    scope.keep(buffer)
    c_dims = scope.keep(ffi.new("int64_t[]", dims or [0]))
    c_strides = scope.keep(ffi.new("int64_t[]", strides or [0]))
    storage = scope.keep(ffi.new("int64_t[]", [max(extent, 0)]))
    data = ffi.NULL if r.rare(100) else ffi.cast("void *", buffer.ctypes.data)
    handle = lib.lib.aclCreateTensor(c_dims, len(dims), ffi.cast("aclDataType", raw_dtype), c_strides, offset,
                                     ffi.cast("aclFormat", raw_format), storage, 1, data)
    if handle == ffi.NULL:
        return ffi.NULL  # refused at creation (bad enum, geometry): also a valid outcome
    if r.rare(100):
        lib.call("aclDestroyTensor", handle)  # a destroyed handle
        return handle
    scope.on_exit("aclDestroyTensor", handle)
    return handle


def _int_array(r: ByteReader, scope: CallScope, plausible):
    ffi = scope.ffi
    choice = r.int_in(0, 15)
    if choice <= 5:
        return ffi.NULL
    if choice == 14:
        values = [r.pick(INT64_EDGES) for _ in range(r.int_in(0, 4))]
    elif choice == 15:
        values = [r.int_in(-2, MAX_DIM + 2) for _ in range(r.int_in(0, 4))]
    else:
        values = plausible
    return scope.int_array(values)


def c_entry_point(data: bytes) -> None:
    r = ByteReader(data)
    lib = _library()
    ffi = lib.ffi
    nkv = r.int_in(1, 2)
    geometry = (r.int_in(1, 2), nkv * r.int_in(1, 2), nkv, r.int_in(1, 200), r.int_in(1, 400),
                r.pick((1, 600)) if r.rare(20) else r.pick((16, 32, 64, 80)))
    layout = r.pick(LAYOUTS) if r.rare(10) else r.pick(LAYOUTS[:4])
    b, n, _, sq, skv, d = geometry
    dtype = r.pick(("ACL_FLOAT", "ACL_FLOAT16", "ACL_BF16"))
    before = lib.live_objects()
    with CallScope(lib) as scope:
        args = dict.fromkeys(PARAMS, ffi.NULL)
        for role in TENSOR_PARAMS:
            role_dtype = {"attenMask": "ACL_BOOL", "sabi": "ACL_UINT16", "softmaxLse": "ACL_FLOAT"}.get(role, dtype)
            args[role] = _tensor(r, scope, role, geometry, layout, role_dtype)
        args["actualSeqLengths"] = _int_array(r, scope, [r.int_in(0, sq)])
        args["actualSeqLengthsKv"] = _int_array(r, scope, [r.int_in(0, skv) for _ in range(b)])
        args["blockShape"] = _int_array(r, scope, [r.pick((64, 128, 256)), 64 * r.int_in(1, 16)])
        args["numHeads"] = r.pick(INT64_EDGES) if r.rare(20) else n
        args["numKeyValueHeads"] = r.pick(INT64_EDGES) if r.rare(20) else r.pick((0, nkv))
        args["scaleValue"] = r.float64() if r.rare(10) else r.pick(SPECIAL_SCALES) if r.rare(10) else d ** -0.5
        args["preTokens"], args["nextTokens"] = r.pick(INT64_EDGES), r.pick(INT64_EDGES)
        args["inputLayout"] = ffi.NULL if r.rare(100) else scope.string(layout.decode("latin-1"))
        args["sparseMode"] = r.pick(INT64_EDGES) if r.rare(20) else r.int_in(0, 4)
        args["innerPrecise"] = r.pick(INT64_EDGES) if r.rare(20) else r.int_in(0, 3)
        args["softmaxLseFlag"] = r.flag()
        args["workspaceSize"] = ffi.NULL if r.rare(100) else ffi.new("uint64_t *")
        args["executor"] = ffi.NULL if r.rare(100) else ffi.new("aclOpExecutor **")

        rc = lib.lib.aclnnBlitzSparseAttentionGetWorkspaceSize(*[args[p] for p in PARAMS])
        message = lib.status.recent_message()
        assert rc in (0, NULLPTR, INVALID), (rc, message)
        if rc != 0:
            assert message.startswith("aclnnBlitzSparseAttentionGetWorkspaceSize: "), message
        else:
            size = int(args["workspaceSize"][0])
            workspace = scope.device_buffer(size)
            stream = scope.stream()
            scope.on_exit("aclrtSynchronizeStream", stream)
            lib.call("aclnnBlitzSparseAttention", workspace, size, args["executor"][0], stream)
            lib.call("aclrtSynchronizeStream", stream)
    after = lib.live_objects()
    assert after == before, (before, after)


TARGETS = {"sabi": sabi_validation, "c_entry": c_entry_point}

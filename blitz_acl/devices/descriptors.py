"""The boundary between Python objects and the library's descriptors.

`CallScope` owns everything one call creates (descriptors, executor, stream, workspace) and
releases it on every path, errors included, in reverse order of creation. One helper per tensor
kind (`numpy_tensor`, `torch_tensor`) checks dtype, contiguity and device, passes the data
pointer without copying a contiguous input, and keeps the object alive for the call.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from .. import arrays

# Element dtype name (blitz_acl.arrays' names) -> aclDataType member.
ACL_DTYPES = {
    "float32": "ACL_FLOAT",
    "float16": "ACL_FLOAT16",
    "bfloat16": "ACL_BF16",
    "bool": "ACL_BOOL",
    "int8": "ACL_INT8",
    "uint8": "ACL_UINT8",
    "uint16": "ACL_UINT16",
    "int64": "ACL_INT64",
}


class CallScope:
    """Releases what a call created when the `with` block ends, newest first.

    A release that fails while another error propagates is dropped (the first error is the
    useful one); on the success path it raises.
    """

    def __init__(self, library):
        self.library = library
        self.ffi = library.ffi
        self._releases: List[Optional[Callable[[], None]]] = []
        self._alive: List[Any] = []  # Python objects whose memory the library points into

    def __enter__(self) -> "CallScope":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        first_error = None
        while self._releases:
            release = self._releases.pop()
            if release is None:
                continue
            try:
                release()
            except BaseException as e:  # keep releasing the rest, even past a Ctrl-C
                first_error = first_error or e
        self._alive.clear()
        if first_error is not None and (exc_type is None or not isinstance(first_error, Exception)):
            raise first_error

    def detach(self) -> "CallScope":
        """Moves every pending release and kept object into a new scope and returns it; this
        one is left empty. For a call abandoned while its stream still runs (Ctrl-C): the new
        scope is closed later, by whoever sees the stream drain."""
        moved = CallScope.__new__(CallScope)
        moved.library, moved.ffi = self.library, self.ffi
        moved._releases, self._releases = self._releases, []
        moved._alive, self._alive = self._alive, []
        return moved

    def close(self) -> None:
        """Runs the releases now; failures are dropped (nobody is left to report them to)."""
        try:
            self.__exit__(None, None, None)
        except BaseException:
            pass

    def keep(self, obj: Any) -> Any:
        self._alive.append(obj)
        return obj

    def on_exit(self, function: str, *args) -> int:
        """Registers library.call(function, *args) to run at exit; returns a token for `cancel`."""
        self._releases.append(lambda: self.library.call(function, *args))
        return len(self._releases) - 1

    def cancel(self, token: int) -> None:
        """Drops a registered release (its object was consumed, e.g. an executor that ran)."""
        self._releases[token] = None

    # -- handles ---------------------------------------------------------------------------

    def tensor(self, x: Any):
        """An aclTensor over a numpy array or torch CPU tensor, or NULL for None."""
        if x is None:
            return self.ffi.NULL
        if arrays.is_torch(x):
            return torch_tensor(self, x)
        if isinstance(x, np.ndarray):
            return numpy_tensor(self, x)
        raise TypeError(f"expected a numpy array or a torch tensor, got {type(x).__name__}")

    def int_array(self, values: Optional[Sequence[int]]):
        """An aclIntArray holding values, or NULL for None."""
        if values is None:
            return self.ffi.NULL
        data = self.keep(self.ffi.new("int64_t[]", [int(v) for v in values]))
        handle = self.library.create("aclCreateIntArray", data, len(values))
        self.on_exit("aclDestroyIntArray", handle)
        return handle

    def string(self, text: str):
        return self.keep(self.ffi.new("char[]", text.encode()))

    def stream(self):
        """A new stream, destroyed at exit (destroying waits for its queued work)."""
        out = self.ffi.new("aclrtStream *")
        self.library.call("aclrtCreateStream", out)
        self.on_exit("aclrtDestroyStream", out[0])
        return out[0]

    def device_buffer(self, size: int):
        """size bytes from aclrtMalloc (NULL for 0), freed at exit."""
        if size == 0:
            return self.ffi.NULL
        out = self.ffi.new("void **")
        self.library.call("aclrtMalloc", out, size, self.library.lib.ACL_MEM_MALLOC_HUGE_FIRST)
        self.on_exit("aclrtFree", out[0])
        return out[0]

    def _create_tensor(self, shape, dtype_name: str, data_ptr: int):
        acl_dtype = ACL_DTYPES.get(dtype_name)
        if acl_dtype is None:
            raise TypeError(f"dtype {dtype_name} has no aclDataType the CPU device handles")
        dims = self.keep(self.ffi.new("int64_t[]", list(shape)))
        strides = self.keep(self.ffi.new("int64_t[]", _contiguous_strides(shape)))
        handle = self.library.create(
            "aclCreateTensor", dims, len(shape), getattr(self.library.lib, acl_dtype), strides, 0,
            self.library.lib.ACL_FORMAT_ND, dims, len(shape), self.ffi.cast("void *", data_ptr))
        self.on_exit("aclDestroyTensor", handle)
        return handle


def _contiguous_strides(shape) -> List[int]:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= max(int(d), 1)
    return strides[::-1]


def numpy_tensor(scope: CallScope, a: np.ndarray):
    """A C-contiguous, aligned, native-byte-order numpy array as is, kept alive for the call.

    Anything else is copied first: a strided view; a big-endian array (its dtype name is still
    "float32", but the library reads native numbers); an unaligned one (e.g. np.frombuffer at
    an odd offset: the kernel loads whole elements, misaligned loads are undefined behaviour).
    """
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if not (a.flags.c_contiguous and a.flags.aligned):
        a = np.require(a, requirements=("C", "A"))
    scope.keep(a)
    return scope._create_tensor(a.shape, arrays.dtype_name(a), a.ctypes.data)


def torch_tensor(scope: CallScope, t: Any):
    """A contiguous CPU torch tensor by data_ptr (a strided one is copied), kept alive."""
    if t.device.type != "cpu":
        raise ValueError(f"the CPU device takes CPU tensors, got one on {t.device}")
    if t.requires_grad:
        t = t.detach()
    if not t.is_contiguous():
        t = t.contiguous()
    scope.keep(t)
    return scope._create_tensor(tuple(t.shape), arrays.dtype_name(t), t.data_ptr())


__all__ = ["ACL_DTYPES", "CallScope", "numpy_tensor", "torch_tensor"]

"""The two array kinds blitz_acl accepts (numpy arrays, torch tensors) behind one small API.

numpy arrays may hold ml_dtypes.bfloat16. torch is optional: this module imports it only when a
caller already holds a torch tensor (then it is in sys.modules) or asks for a torch output.

Public helpers: `kind`, `is_torch`, `dtype_name`, `shape`, `device_type`, `to_numpy`,
`numpy_dtype`, `torch_dtype`, `from_numpy`, `empty`.
"""

from __future__ import annotations

import sys
from typing import Any, Tuple

import ml_dtypes
import numpy as np

NUMPY = "numpy"
TORCH = "torch"

_NUMPY_DTYPES = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "bool": np.dtype(np.bool_),
    "int8": np.dtype(np.int8),
    "uint8": np.dtype(np.uint8),
    "int16": np.dtype(np.int16),
    "uint16": np.dtype(np.uint16),
    "int32": np.dtype(np.int32),
    "int64": np.dtype(np.int64),
}


def _torch_module():
    """torch if it is already imported, else None (a torch tensor implies it is imported)."""
    return sys.modules.get("torch")


def is_torch(x: Any) -> bool:
    torch = _torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


def kind(x: Any) -> str:
    """"numpy" or "torch"; raises TypeError for anything else."""
    if isinstance(x, np.ndarray):
        return NUMPY
    if is_torch(x):
        return TORCH
    raise TypeError(f"expected a numpy array or a torch tensor, got {type(x).__name__}")


def dtype_name(x: Any) -> str:
    """The dtype's short name: "float32", "bfloat16", "int8", "bool", ..."""
    if is_torch(x):
        return str(x.dtype).rsplit(".", 1)[-1]
    return np.asarray(x).dtype.name


def shape(x: Any) -> Tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def device_type(x: Any) -> str:
    """"cpu" for numpy arrays, the torch device type ("cpu", "npu", "cuda", ...) for tensors."""
    return x.device.type if is_torch(x) else "cpu"


def numpy_dtype(name: str) -> np.dtype:
    try:
        return _NUMPY_DTYPES[name]
    except KeyError:
        raise TypeError(f"no numpy dtype for {name!r}") from None


def torch_dtype(name: str):
    import torch

    try:
        return getattr(torch, name) if name != "bool" else torch.bool
    except AttributeError:
        raise TypeError(f"no torch dtype for {name!r}") from None


def to_numpy(x: Any) -> np.ndarray:
    """A host numpy array with the same dtype (bfloat16 -> ml_dtypes.bfloat16); no copy if numpy.

    torch tensors are detached and copied to the host when they live on a device.
    """
    if not is_torch(x):
        return np.asarray(x)
    t = x.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if dtype_name(t) == "bfloat16":
        # numpy has no bfloat16: reinterpret the 16-bit payload, which is bit-exact.
        import torch

        return t.contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def from_numpy(a: np.ndarray, like: Any, dtype: str) -> Any:
    """`a` converted to dtype `dtype`, as the kind of `like` (on like's device for torch)."""
    target = numpy_dtype(dtype)
    host = np.ascontiguousarray(a.astype(target, copy=False))
    if not is_torch(like):
        return host
    import torch

    if dtype == "bfloat16":
        t = torch.from_numpy(host.view(np.int16)).view(torch.bfloat16)
    else:
        t = torch.from_numpy(host)
    return t.to(like.device) if like.device.type != "cpu" else t


def empty(shape_: Tuple[int, ...], dtype: str, like: Any) -> Any:
    """An uninitialised array of `shape_` and `dtype`, of the kind (and device) of `like`."""
    if not is_torch(like):
        return np.empty(shape_, dtype=numpy_dtype(dtype))
    return _torch_module().empty(shape_, dtype=torch_dtype(dtype), device=like.device)

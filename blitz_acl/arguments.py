"""Every argument check of blitz_sparse_attention, in one place, producing an AttentionCall.

Each failure raises TypeError (wrong kind or dtype) or ValueError (wrong value or shape) with a
message naming the argument, the value received and what was expected. Devices receive only
calls that passed here, so they re-check nothing that is decided here.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Tuple

import numpy as np

from . import arrays, limits
from . import sabi as sabi_format
from .call import AttentionCall

# Layouts, sparse modes, dtypes and the per-device limits are the spec's (blitz_acl/limits.py,
# generated from aclnn_gen/spec.py); the refusals use its messages, as the C++ checks do.
LAYOUTS = limits.LAYOUTS
DEVICES = ("reference", "cpu", "npu", "npu_sim")
SPARSE_MODES = limits.SPARSE_MODES
# torch_bsa encoded inner_precise = 0 as sparse_mode + 10; blitz_acl has no inner_precise.
TORCH_BSA_PRECISE_OFFSET = limits.TORCH_BSA_PRECISE_OFFSET
MASK_DTYPES = limits.MASK_DTYPES
NPU_DTYPES = limits.NPU_DTYPES
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1

# scale_value travels to the kernels as a float32.
FLOAT32_MAX = float(np.finfo(np.float32).max)

# In sparse modes 2-4 the original (like PromptFlashAttention) takes a compressed
# 2048 x 2048 causal mask; here the mode alone defines the mask, so such a mask is accepted
# for compatibility and ignored.
COMPRESSED_MASK_SIDE = 2048


def _describe(x: Any) -> str:
    if arrays.is_torch(x):
        return f"a torch tensor of shape {arrays.shape(x)} on {x.device}"
    if isinstance(x, np.ndarray):
        return f"a numpy array of shape {arrays.shape(x)}"
    return f"a {type(x).__name__}"


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _int_arg(name: str, v: Any, lo: int = INT64_MIN, hi: int = INT64_MAX) -> int:
    if not _is_int(v):
        raise TypeError(f"{name} must be an int, got {v!r} ({type(v).__name__})")
    if not lo <= int(v) <= hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {int(v)}")
    return int(v)


def _layout_arg(v: Any) -> str:
    """input_layout, one of the spec's layout names (blitz_sparse_attention's and select_blocks')."""
    if not isinstance(v, str):
        raise TypeError(f"input_layout must be a string, got {v!r}")
    if v not in LAYOUTS:
        raise ValueError(limits.refuse_layout(v))
    return v


def _bool_arg(name: str, v: Any) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def _tensors(query, key, value) -> Tuple[str, str]:
    """Kind and dtype shared by query/key/value; TypeError/ValueError on any mismatch."""
    named = (("query", query), ("key", key), ("value", value))
    kinds = []
    for name, x in named:
        try:
            kinds.append(arrays.kind(x))
        except TypeError:
            raise TypeError(f"{name} must be a numpy array or a torch tensor, got {_describe(x)}") from None
    if len(set(kinds)) != 1:
        raise TypeError(
            f"query, key and value must be of one kind, got query: {kinds[0]}, key: {kinds[1]}, "
            f"value: {kinds[2]}")
    devices = [str(x.device) if arrays.is_torch(x) else "cpu" for _, x in named]
    if len(set(devices)) != 1:
        raise ValueError(
            f"query, key and value must be on one device, got query on {devices[0]}, key on "
            f"{devices[1]}, value on {devices[2]}")
    dtype = arrays.dtype_name(query)
    if dtype not in limits.CPU_DTYPES:
        raise TypeError(limits.refuse_qkv_dtype("query", dtype))
    for name, x in named[1:]:
        if arrays.dtype_name(x) != dtype:
            raise TypeError(f"{name} has dtype {arrays.dtype_name(x)}; expected query's dtype {dtype}")
    return kinds[0], dtype


def _shapes(query, key, value, layout: str, num_heads, num_key_value_heads):
    """(B, N, Nkv, Sq, Skv, D) read from the shapes in `layout`, checked against the head args."""
    if num_heads is not None:
        _int_arg("num_heads", num_heads, 1)
    nkv_arg = _int_arg("num_key_value_heads", num_key_value_heads, 0)
    qs, ks, vs = arrays.shape(query), arrays.shape(key), arrays.shape(value)
    ndim, dims = limits.layout_rank(layout), limits.layout_dims(layout)
    for name, s in (("query", qs), ("key", ks), ("value", vs)):
        if len(s) != ndim:
            raise ValueError(f"{name} has shape {s}; input_layout={layout!r} expects {ndim}-d {dims}")
    if ks != vs:
        raise ValueError(f"key has shape {ks} but value has shape {vs}; they must be equal")
    if limits.is_packed(layout):  # batch and lengths come from the cumulative lengths (_packed)
        n_ax, t_ax, d_ax = (limits.axis(layout, a) for a in ("N", "T", "D"))
        n, t, d = qs[n_ax], qs[t_ax], qs[d_ax]
        nkv, tkv, dk = ks[n_ax], ks[t_ax], ks[d_ax]
        qs, ks = (1, n, t, d), (1, nkv, tkv, dk)  # read below as BNSD with one packed sequence
        layout = "BNSD"
    elif qs[limits.axis(layout, "B")] != ks[limits.axis(layout, "B")]:
        b_ax = limits.axis(layout, "B")
        raise ValueError(f"query has batch {qs[b_ax]} but key has batch {ks[b_ax]} (shapes {qs}, {ks})")

    b_ax, s_ax = limits.axis(layout, "B"), limits.axis(layout, "S")
    if limits.has_fused_heads(layout):
        h_ax = limits.axis(layout, "H")
        if num_heads is None:
            raise ValueError(limits.refuse_bsh_heads())
        n = int(num_heads)
        if qs[h_ax] % n:
            raise ValueError(limits.refuse_bsh_hidden("query", qs[h_ax], n))
        d = qs[h_ax] // n
        nkv = nkv_arg or n
        if ks[h_ax] != nkv * d:
            hint = f"; set num_key_value_heads={ks[h_ax] // d}" if d and ks[h_ax] % d == 0 else ""
            raise ValueError(
                f"key has hidden size {ks[h_ax]}, expected num_key_value_heads ({nkv}) x head_dim "
                f"({d}) = {nkv * d}{hint}")
        return qs[b_ax], n, nkv, qs[s_ax], ks[s_ax], d

    n_ax, d_ax = limits.axis(layout, "N"), limits.axis(layout, "D")
    b, n, sq, d = qs[b_ax], qs[n_ax], qs[s_ax], qs[d_ax]
    nkv, skv, dk = ks[n_ax], ks[s_ax], ks[d_ax]
    if num_heads is not None and int(num_heads) != n:
        raise ValueError(f"num_heads={num_heads} but query of shape {qs} in {layout} has {n} heads")
    if nkv_arg and nkv_arg != nkv:
        raise ValueError(
            f"num_key_value_heads={nkv_arg} but key of shape {ks} in {layout} has {nkv} heads")
    if dk != d:
        raise ValueError(f"query has head_dim {d} but key has head_dim {dk} (shapes {qs}, {ks})")
    return b, n, nkv, sq, skv, d


def _host_readable(name: str, x: Any, query) -> None:
    """A torch tensor argument that is read on the host (sabi, lengths) must be on the CPU or
    on the query's device; anything else (a meta tensor, another accelerator) is refused."""
    if not arrays.is_torch(x):
        return
    where, query_where = arrays.device_type(x), arrays.device_type(query)
    if where not in ("cpu", query_where):
        raise ValueError(
            f"{name} is on {x.device} but query is on {query.device if arrays.is_torch(query) else 'cpu'}; "
            f"expected {name} on the CPU or on the query's device")


def _nested_list(name: str, x: Any) -> Any:
    """A nested list/tuple as a numpy integer array (other inputs unchanged); ragged or
    non-integer lists raise errors that name the argument."""
    if not isinstance(x, (list, tuple)):
        return x
    try:
        a = np.asarray(x)
    except (ValueError, OverflowError) as e:
        raise ValueError(f"{name} as a nested list must be rectangular and hold ints: {e}") from None
    if a.dtype == object:
        raise TypeError(f"{name} as a nested list must be rectangular and hold ints, got {x!r:.80}")
    return a


def _lengths(name: str, lengths: Any, batch: int, full: int) -> Optional[Tuple[int, ...]]:
    """actual_seq_lengths(_kv) expanded to `batch` ints in [0, full], or None. As in the
    original: one entry applies to every batch; B or more give the first B (the rest ignored)."""
    if lengths is None:
        return None
    if arrays.is_torch(lengths) or isinstance(lengths, np.ndarray):
        if len(arrays.shape(lengths)) != 1:
            raise ValueError(f"{name} must be 1-d, got shape {arrays.shape(lengths)}")
        lengths = arrays.to_numpy(lengths).tolist()
    if not isinstance(lengths, (list, tuple)):
        raise TypeError(f"{name} must be a list of ints (length 1 or >= B={batch}), got {lengths!r}")
    if len(lengths) != 1 and len(lengths) < batch:
        raise ValueError(limits.refuse_lengths_count(name, len(lengths), batch))
    out = []
    for i, v in enumerate(lengths[:1] if len(lengths) == 1 else lengths[:batch]):
        if not _is_int(v):
            raise TypeError(f"{name}[{i}] must be an int, got {v!r}")
        if not 0 <= v <= full:
            raise ValueError(limits.refuse_length_value(name, i, int(v), full))
        out.append(int(v))
    return tuple(out * batch) if len(out) == 1 else tuple(out)


def _packed(name: str, lengths: Any, tokens: int) -> Tuple[Tuple[int, ...], int]:
    """TND's actual_seq_lengths(_kv): required and cumulative, as the original documents (entry b
    = tokens of batches 0..b; B = their count), non-decreasing from >= 0 and ending at the
    tensor's T. Returns (the cumulative tuple as given, the longest batch's length)."""
    if lengths is None:
        raise ValueError(limits.refuse_packed_required(name))
    if arrays.is_torch(lengths) or isinstance(lengths, np.ndarray):
        if len(arrays.shape(lengths)) != 1:
            raise ValueError(f"{name} must be 1-d, got shape {arrays.shape(lengths)}")
        lengths = arrays.to_numpy(lengths).tolist()
    if not isinstance(lengths, (list, tuple)) or not lengths:
        raise TypeError(f"{name} must be a non-empty list of ints (cumulative, one per batch), got {lengths!r}")
    previous, longest = 0, 0
    for b, end in enumerate(lengths):
        if not _is_int(end):
            raise TypeError(f"{name}[{b}] must be an int, got {end!r}")
        if not previous <= end <= tokens:
            raise ValueError(limits.refuse_packed_entry(name, b, int(end), previous, tokens))
        longest, previous = max(longest, int(end) - previous), int(end)
    if previous != tokens:
        raise ValueError(limits.refuse_packed_end(name, previous, tokens))
    return tuple(int(v) for v in lengths), longest


def _sparse_mode(sparse_mode: Any) -> int:
    mode = _int_arg("sparse_mode", sparse_mode)
    if mode in SPARSE_MODES:
        return mode
    if mode - TORCH_BSA_PRECISE_OFFSET in SPARSE_MODES:
        raise ValueError(
            f"sparse_mode={mode} is torch_bsa's way to select inner_precise=0; blitz_acl has no "
            f"inner_precise: pass sparse_mode={mode - TORCH_BSA_PRECISE_OFFSET}")
    raise ValueError(limits.refuse_sparse_mode(mode))


def _mask_shape_ok(shape, batch: int, heads: int, seq_q: int, seq_kv: int) -> bool:
    """[Sq', Skv'], [1|B, Sq', Skv'] or [1|B, 1|N, Sq', Skv'] with Sq' >= Sq, Skv' >= Skv (the
    original's forms; its top-left [Sq, Skv] window is used, e.g. keys padded to 32)."""
    if not 2 <= len(shape) <= 4 or shape[-2] < seq_q or shape[-1] < seq_kv:
        return False
    if len(shape) >= 3 and shape[0] not in (1, batch):
        return False
    return len(shape) != 4 or shape[1] in (1, heads)


def _mask(atten_mask, mode: int, batch: int, heads: int, seq_q: int, seq_kv: int, query, validate: bool):
    """The explicit mask to apply (as given), or None; checks dtype, shape, device, values."""
    if atten_mask is None:
        if mode == 1:
            raise ValueError("sparse_mode=1 requires atten_mask ([Sq, Skv] bool/int8/uint8, 1 = masked out)")
        return None
    try:
        arrays.kind(atten_mask)
    except TypeError:
        raise TypeError(f"atten_mask must be a numpy array or a torch tensor, got {_describe(atten_mask)}") from None
    dtype = arrays.dtype_name(atten_mask)
    if dtype not in MASK_DTYPES:
        raise TypeError(limits.refuse_mask_dtype("atten_mask", dtype))
    shape = arrays.shape(atten_mask)
    if mode >= 2:
        side = COMPRESSED_MASK_SIDE
        if shape[-2:] == (side, side) and all(d == 1 for d in shape[:-2]):
            return None
        raise ValueError(
            f"atten_mask has shape {shape}; sparse_mode={mode} builds its mask from indices, so "
            f"atten_mask must be None (or the original's compressed [{side}, {side}] mask, ignored)")
    if not _mask_shape_ok(shape, batch, heads, seq_q, seq_kv):
        raise ValueError(limits.refuse_mask_shape("atten_mask", str(shape), batch, heads, seq_q, seq_kv))
    if arrays.device_type(atten_mask) != arrays.device_type(query):
        raise ValueError(
            f"atten_mask is on {arrays.device_type(atten_mask)} but query is on "
            f"{arrays.device_type(query)}; they must be on one device")
    if validate and dtype != "bool":
        values = arrays.to_numpy(atten_mask)[..., :seq_q, :seq_kv]  # the window that is read
        if values.size and (values.min() < 0 or values.max() > 1):
            raise ValueError(
                f"atten_mask ({dtype}) holds values outside {{0, 1}} (min {values.min()}, max "
                f"{values.max()}); expected 1 = masked out, 0 = attend")
    return atten_mask


def _device(device: Any, query, dtype: str) -> str:
    where = arrays.device_type(query)
    if device is None:
        return "npu" if where == "npu" else "cpu"
    if not isinstance(device, str) or device not in DEVICES:
        raise ValueError(f"device must be None or one of {', '.join(map(repr, DEVICES))}, got {device!r}")
    if device in ("cpu", "npu_sim") and where != "cpu":
        raise ValueError(
            f"device={device!r} needs host inputs (numpy arrays or CPU torch tensors), but query is on "
            f"{query.device}; use device='npu' or move the tensors with .cpu()")
    if device == "npu":
        if where != "npu":
            try:
                import torch_npu  # noqa: F401
                note = ""
            except ImportError:
                note = " (torch_npu is not installed on this machine)"
            raise ValueError(
                f"device='npu' needs torch_npu tensors on an NPU, but query is "
                f"{_describe(query)}{note}; use device='cpu' or device='reference' here")
        if dtype not in NPU_DTYPES:
            raise TypeError(f"device='npu': {limits.refuse_npu_dtype()}, got {dtype}")
    return device


def _block_shape(block_shape: Any, device: str) -> Tuple[int, int]:
    bq, bkv = sabi_format.check_block_shape(block_shape)
    if device == "cpu" and not limits.block_shape_supported(bq, bkv):
        raise ValueError(limits.refuse_block_shape(bq, bkv, limits.CPU_TITLE))
    return bq, bkv


def _scale(scale_value: Any, head_dim: int) -> float:
    if scale_value is None:
        return 1.0 / math.sqrt(head_dim)
    if not isinstance(scale_value, numbers.Real) or isinstance(scale_value, (bool, np.bool_)):
        raise TypeError(f"scale_value must be a float, got {scale_value!r}")
    if not math.isfinite(float(scale_value)) or abs(float(scale_value)) > FLOAT32_MAX:
        raise ValueError(f"scale_value must be finite and fit a float32 (|x| <= {FLOAT32_MAX:.4g}), "
                         f"got {scale_value!r}")
    return float(scale_value)


def normalize(query, key, value, sabi=None, *, num_heads=limits.DEFAULT_NUM_HEADS,
              num_key_value_heads=limits.DEFAULT_NUM_KEY_VALUE_HEADS,
              input_layout=limits.DEFAULT_INPUT_LAYOUT, scale_value=limits.DEFAULT_SCALE_VALUE,
              actual_seq_lengths=None, actual_seq_lengths_kv=None, atten_mask=None,
              sparse_mode=limits.DEFAULT_SPARSE_MODE, pre_tokens=limits.DEFAULT_PRE_TOKENS,
              next_tokens=limits.DEFAULT_NEXT_TOKENS, block_shape=limits.DEFAULT_BLOCK_SHAPE,
              return_lse=limits.DEFAULT_RETURN_LSE, device=None, validate=True) -> AttentionCall:
    """Check every argument of blitz_sparse_attention; return the call the devices run."""
    validate = _bool_arg("validate", validate)
    return_lse = _bool_arg("return_lse", return_lse)
    kind, dtype = _tensors(query, key, value)
    device = _device(device, query, dtype)

    input_layout = _layout_arg(input_layout)
    batch, heads, kv_heads, seq_q, seq_kv, head_dim = _shapes(
        query, key, value, input_layout, num_heads, num_key_value_heads)
    packed = limits.is_packed(input_layout)
    if packed:
        if device == "reference":
            raise ValueError("input_layout='TND' is not supported by device='reference'; use device='cpu'")
        for name, lengths in (("actual_seq_lengths", actual_seq_lengths),
                              ("actual_seq_lengths_kv", actual_seq_lengths_kv)):
            _host_readable(name, lengths, query)
        actual_seq_lengths, seq_q = _packed("actual_seq_lengths", actual_seq_lengths, seq_q)
        actual_seq_lengths_kv, seq_kv = _packed("actual_seq_lengths_kv", actual_seq_lengths_kv, seq_kv)
        if len(actual_seq_lengths_kv) != len(actual_seq_lengths):
            raise ValueError(limits.refuse_packed_lengths(len(actual_seq_lengths_kv), len(actual_seq_lengths)))
        batch = len(actual_seq_lengths)
        if atten_mask is not None and sparse_mode in (0, 1):
            raise ValueError(limits.refuse_packed_mask())
    if head_dim < 1:
        raise ValueError(f"head_dim must be >= 1, got {head_dim} (query shape {arrays.shape(query)})")
    if device == "cpu" and head_dim > limits.CPU_HEAD_DIM_MAX:
        raise ValueError(f"{limits.refuse_cpu_head_dim(head_dim)} (query shape {arrays.shape(query)})")
    if heads < 1:
        raise ValueError(f"query has {heads} heads (shape {arrays.shape(query)}); expected >= 1")
    if kv_heads < 1:
        raise ValueError(f"key has {kv_heads} heads (shape {arrays.shape(key)}); expected >= 1")
    if heads % kv_heads:
        raise ValueError(limits.refuse_gqa("num_heads", heads, "num_key_value_heads", kv_heads))

    mode = _sparse_mode(sparse_mode)
    bq, bkv = _block_shape(block_shape, device)
    checked_sabi = None
    if sabi is not None:
        _host_readable("sabi", sabi, query)
        sabi = _nested_list("sabi", sabi)
        checked_sabi = sabi_format.validate(sabi, batch, heads, seq_q, seq_kv, (bq, bkv),
                                            check_entries=validate)

    for name, lengths in (("actual_seq_lengths", actual_seq_lengths),
                          ("actual_seq_lengths_kv", actual_seq_lengths_kv)):
        _host_readable(name, lengths, query)

    return AttentionCall(
        query=query, key=key, value=value, kind=kind, dtype=dtype,
        input_layout=input_layout, batch=batch, num_heads=heads, num_key_value_heads=kv_heads,
        seq_q=seq_q, seq_kv=seq_kv, head_dim=head_dim,
        sabi=checked_sabi, block_shape=(bq, bkv), scale_value=_scale(scale_value, head_dim),
        actual_seq_lengths=actual_seq_lengths if packed else _lengths(
            "actual_seq_lengths", actual_seq_lengths, batch, seq_q),
        actual_seq_lengths_kv=actual_seq_lengths_kv if packed else _lengths(
            "actual_seq_lengths_kv", actual_seq_lengths_kv, batch, seq_kv),
        atten_mask=_mask(atten_mask, mode, batch, heads, seq_q, seq_kv, query, validate),
        sparse_mode=mode,
        pre_tokens=_int_arg("pre_tokens", pre_tokens),
        next_tokens=_int_arg("next_tokens", next_tokens),
        return_lse=return_lse, validate=validate, device=device,
    )

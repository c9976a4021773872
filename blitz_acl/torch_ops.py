"""blitz_acl's functions as torch.library custom ops, so torch.compile and torch.export see them.

    torch.ops.blitz_acl.blitz_sparse_attention(query, key, value, sabi=None, atten_mask=None, *,
        num_heads=None, ..., block_shape=[128, 512], return_lse=False, device=None, validate=True)
        -> (attention_out, softmax_lse)
    torch.ops.blitz_acl.select_blocks(query, key, *, block_shape=[128, 512], mass=None, ...,
        anchors=[1, 1, 1], ..., device=None) -> sabi

The public `blitz_acl.blitz_sparse_attention` and `blitz_acl.select_blocks` send torch tensors
here (blitz_acl.torch_route), so a model that calls them compiles with
`torch.compile(fullgraph=True)` and exports with one node per call, with no change to the model.
No C++ extension: each implementation is the public function's own eager body (the same checks,
the same cffi call), and a fake implementation gives the outputs' shapes for tracing. One
implementation serves every device type (CPU tensors run the CPU device, torch_npu tensors the
NPU), as the eager function chooses; select_blocks runs on host tensors (device cpu or
npu_sim), as the function does.

Each schema is generated from its public function's signature: the argument names, their order,
positional / keyword-only and the defaults are read from it, and only the schema type and the
conversion of each name are stated here (an argument missing from the table fails the import, so
a new keyword of the public API cannot silently fall off the op). custom_op takes no keyword-only
tensor, so atten_mask is positional in the op. The attention op always returns the pair; with
return_lse=False the lse is an empty float32 tensor and the public function returns only the
output, as it always did. select_blocks' `anchors` (an Anchors, a dict or None) travels as
[first, diagonal, last] ints, None as [0, 0, 0].

Under torch.compile, pass actual_seq_lengths(_kv) as lists of ints: a tensor there is read on the
host (`.tolist()`), which is a graph break. The ops have no autograd formula (the kernel is
forward-only): calling them on tensors that require grad works, a backward through them raises.
"""

from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch

from . import api, arguments, block_select, limits

NAMESPACE = "blitz_acl"
LSE_DTYPE = torch.float32
INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class _Unfit(Exception):
    """A value the op's schema cannot carry: the call runs the eager function instead, which
    raises its own clear error (or, for an input it accepts in some other form, just runs)."""


# ---- conversions from what the public API accepts to what the schema carries ----------------

def _tensor(v: Any) -> torch.Tensor:
    if not isinstance(v, torch.Tensor):
        raise _Unfit
    return v


def _as_tensor(v: Any) -> torch.Tensor:
    # torch.as_tensor, not np.asarray or .dtype: torch.compile traces it on a numpy constant.
    # The dtype is checked by the op's implementation (the public function's own checks).
    try:
        return torch.as_tensor(v)
    except (TypeError, ValueError, RuntimeError, OverflowError):  # ml_dtypes / object / ragged
        raise _Unfit from None


def _optional_tensor(v: Any) -> Optional[torch.Tensor]:
    if v is None or isinstance(v, torch.Tensor):
        return v
    if isinstance(v, np.ndarray):
        return _as_tensor(v)
    raise _Unfit


def _index_tensor(v: Any) -> Optional[torch.Tensor]:
    """sabi: also a nested list of ints, as the public API takes it."""
    if isinstance(v, (list, tuple)):
        return _as_tensor(v)
    return _optional_tensor(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _int(v: Any) -> int:
    if not _is_int(v) or not INT64_MIN <= int(v) <= INT64_MAX:
        raise _Unfit
    return int(v)


def _optional_int(v: Any) -> Optional[int]:
    return None if v is None else _int(v)


def _optional_float(v: Any) -> Optional[float]:
    if v is None:
        return None
    if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)):
        raise _Unfit
    return float(v)


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise _Unfit
    return v


def _optional_str(v: Any) -> Optional[str]:
    return None if v is None else _str(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise _Unfit
    return bool(v)


def _int_list(v: Any) -> list:
    if isinstance(v, (torch.Tensor, np.ndarray)):
        if len(v.shape) != 1:
            raise _Unfit
        v = v.tolist()  # read on the host: a graph break under torch.compile (module docstring)
    if not isinstance(v, (list, tuple)):
        raise _Unfit
    return [_int(x) for x in v]


def _optional_int_list(v: Any) -> Optional[list]:
    return None if v is None else _int_list(v)


# Per public argument name: (schema type, conversion). Read by the schema generator and `route`.
# The arguments blitz_sparse_attention and select_blocks share mean the same in both (select_blocks
# takes the attention call's shapes, lengths, mask and tiles), so they are typed once.
SHARED_TYPES: Dict[str, Tuple[str, Callable[[Any], Any]]] = {
    "query": ("Tensor", _tensor),
    "key": ("Tensor", _tensor),
    "num_heads": ("int?", _optional_int),
    "num_key_value_heads": ("int", _int),
    "input_layout": ("str", _str),
    "scale_value": ("float?", _optional_float),
    "actual_seq_lengths": ("int[]?", _optional_int_list),
    "actual_seq_lengths_kv": ("int[]?", _optional_int_list),
    "sparse_mode": ("int", _int),
    "pre_tokens": ("int", _int),
    "next_tokens": ("int", _int),
    "block_shape": ("int[]", _int_list),
    "device": ("str?", _optional_str),
}
ATTENTION_TYPES: Dict[str, Tuple[str, Callable[[Any], Any]]] = {
    **SHARED_TYPES,
    "value": ("Tensor", _tensor),
    "sabi": ("Tensor?", _index_tensor),
    "atten_mask": ("Tensor?", _optional_tensor),
    "return_lse": ("bool", _bool),
    "validate": ("bool", _bool),
}


# ---- the schema, generated from the public signature -----------------------------------------

def _schema_default(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return str(v)
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_schema_default(x) for x in v) + "]"
    if isinstance(v, (int, float)):
        return repr(v)
    raise TypeError(f"no schema spelling for the default {v!r}")


@dataclass(frozen=True)
class Signature:
    """A public function's parameters, as the public function takes them and as its op does.

    custom_op takes no keyword-only tensor, so the op moves a keyword-only tensor (atten_mask)
    to its positional part, after the positional ones; the other keywords stay keyword-only."""

    positional: Tuple[str, ...]  # the public function's
    keyword_only: Tuple[str, ...]
    defaults: Dict[str, Any]  # names with a default; the others are required
    types: Dict[str, Tuple[str, Callable]]  # name -> (schema type, conversion)
    op_defaults: Dict[str, Any]  # the defaults converted to what the schema carries
    op_positional: Tuple[str, ...]
    op_keyword_only: Tuple[str, ...]

    @staticmethod
    def of(fn: Callable, types: Dict[str, Tuple[str, Callable]]) -> "Signature":
        params = inspect.signature(fn).parameters.values()
        kinds = inspect.Parameter
        positional = tuple(p.name for p in params if p.kind == kinds.POSITIONAL_OR_KEYWORD)
        keyword_only = tuple(p.name for p in params if p.kind == kinds.KEYWORD_ONLY)
        moved = tuple(n for n in keyword_only if types[n][0].startswith("Tensor"))
        defaults = {p.name: p.default for p in params if p.default is not kinds.empty}
        return Signature(
            positional, keyword_only, defaults,
            types={n: types[n] for n in positional + keyword_only},  # KeyError: a name without a type
            op_defaults={n: types[n][1](v) for n, v in defaults.items()},
            op_positional=positional + moved,
            op_keyword_only=tuple(n for n in keyword_only if n not in moved))

    def schema(self, returns: str) -> str:
        def one(name: str) -> str:
            text = f"{self.types[name][0]} {name}"
            return text + ("=" + _schema_default(self.op_defaults[name]) if name in self.op_defaults else "")

        args = [one(n) for n in self.op_positional]
        if self.op_keyword_only:
            args += ["*"] + [one(n) for n in self.op_keyword_only]
        return f"({', '.join(args)}) -> {returns}"

    def op_keywords(self, given: Dict[str, Any]) -> Dict[str, Any]:
        """The op's keyword-only arguments with the defaults filled in (the dispatcher passes an
        implementation only the keywords that differ from the schema's defaults)."""
        return {n: given[n] if n in given else self.op_defaults[n] for n in self.op_keyword_only}

    def bind(self, args: tuple, kwargs: dict) -> Dict[str, Any]:
        """Every parameter's value for a public call, converted to what the schema carries;
        _Unfit for a call the function itself would refuse (it raises its own TypeError then)
        or a value the schema cannot carry."""
        if len(args) > len(self.positional):
            raise _Unfit
        bound = dict(zip(self.positional, args))
        for name, v in kwargs.items():
            if name in bound or name not in self.types:
                raise _Unfit
            bound[name] = v
        for name in self.positional + self.keyword_only:
            if name not in bound:
                if name not in self.defaults:
                    raise _Unfit
                bound[name] = self.defaults[name]
        return {name: self.types[name][1](v) for name, v in bound.items()}

    def call(self, op: Callable, bound: Dict[str, Any]):
        return op(*[bound[n] for n in self.op_positional], **{n: bound[n] for n in self.op_keyword_only})


# ---- blitz_sparse_attention -------------------------------------------------------------------

_attention_eager = api.blitz_sparse_attention.__wrapped__  # the undecorated public function
ATTENTION = Signature.of(_attention_eager, ATTENTION_TYPES)
ATTENTION_SCHEMA = ATTENTION.schema("(Tensor, Tensor)")


def _empty_lse(query: torch.Tensor) -> torch.Tensor:
    return torch.empty((0,), dtype=LSE_DTYPE, device=query.device)


@torch.library.custom_op(f"{NAMESPACE}::blitz_sparse_attention", mutates_args=(),
                         schema=ATTENTION_SCHEMA)
def blitz_sparse_attention(query, key, value, sabi=None, atten_mask=None, **kwargs):
    kwargs = ATTENTION.op_keywords(kwargs)
    result = _attention_eager(query, key, value, sabi, atten_mask=atten_mask, **kwargs)
    if kwargs["return_lse"]:
        return result
    return result, _empty_lse(query)


@blitz_sparse_attention.register_fake
def _attention_fake(query, key, value, sabi=None, atten_mask=None, **kwargs):
    """The outputs' shapes (the device code's rule: devices.op_call), from shapes alone."""
    kwargs = ATTENTION.op_keywords(kwargs)
    layout = kwargs["input_layout"]
    if layout not in arguments.LAYOUTS:
        raise ValueError(limits.refuse_layout(layout))
    shape = tuple(query.shape)
    written = limits.output_layout(layout)
    # the output holds query's axes in the output layout's order
    out = query.new_empty(tuple(shape[limits.axis(layout, a)] for a in limits.LAYOUT_AXES[written]))
    if not kwargs["return_lse"]:
        return out, _empty_lse(query)
    if limits.is_packed(layout):
        lse_shape = (shape[limits.axis(layout, "N")], shape[limits.axis(layout, "T")])  # [N, T]
    elif limits.has_fused_heads(layout):
        if kwargs["num_heads"] is None:
            raise ValueError(limits.refuse_bsh_heads())
        lse_shape = (shape[limits.axis(layout, "B")], kwargs["num_heads"], shape[limits.axis(layout, "S")])
    else:
        lse_shape = tuple(shape[limits.axis(layout, a)] for a in ("B", "N", "S"))
    return out, query.new_empty(lse_shape, dtype=LSE_DTYPE)


def _attention_devices_fit(bound: Dict[str, Any]) -> bool:
    """The dispatcher picks one kernel from all tensor arguments' devices (a meta tensor among
    CPU ones would select the fake implementation), so a call whose devices the public function
    refuses runs that function instead: it raises naming the argument."""
    where = bound["query"].device
    if where.type == "meta" or any(bound[n].device != where for n in ("key", "value")):
        return False
    mask, sabi = bound["atten_mask"], bound["sabi"]
    return ((mask is None or mask.device == where)
            and (sabi is None or sabi.device == where or sabi.device.type == "cpu"))


def _attention_result(pair, bound: Dict[str, Any]):
    return pair if bound["return_lse"] else pair[0]


# ---- select_blocks -----------------------------------------------------------------------------

def _anchors(v: Any) -> list:
    """Anchors(first, diagonal, last) or a dict of them as [first, diagonal, last] ints; None (no
    anchors) is [0, 0, 0], which select_blocks reads the same way (its NO_ANCHORS)."""
    Anchors = block_select.Anchors
    if v is None:
        return [0, 0, 0]
    if isinstance(v, dict):
        try:
            v = Anchors(**v)
        except TypeError:
            raise _Unfit from None
    if not isinstance(v, Anchors) or not isinstance(v.diagonal, bool) or not isinstance(v.last, bool):
        raise _Unfit
    return [_int(v.first), int(v.diagonal), int(v.last)]


def _float(v: Any) -> float:
    if v is None:
        raise _Unfit
    return _optional_float(v)


SELECT_TYPES: Dict[str, Tuple[str, Callable[[Any], Any]]] = {
    **SHARED_TYPES,
    "mass": ("float?", _optional_float),
    "top_k": ("int?", _optional_int),
    "anchors": ("int[]", _anchors),
    "method": ("str", _str),
    "share_kv_groups": ("bool", _bool),
    "stride": ("int", _int),
    "sub_block": ("int", _int),
    "refine_below": ("float", _float),
}

_select_eager = block_select.select_blocks.__wrapped__
SELECT = Signature.of(_select_eager, SELECT_TYPES)
SELECT_SCHEMA = SELECT.schema("Tensor")


def _anchors_back(anchors: list):
    if len(anchors) != 3:
        raise ValueError(f"anchors must be [first, diagonal, last], got {anchors!r}")
    return block_select.Anchors(first=anchors[0], diagonal=bool(anchors[1]), last=bool(anchors[2]))


@torch.library.custom_op(f"{NAMESPACE}::select_blocks", mutates_args=(), schema=SELECT_SCHEMA)
def select_blocks(query, key, **kwargs):
    kwargs = SELECT.op_keywords(kwargs)
    return _select_eager(query, key, **dict(kwargs, anchors=_anchors_back(kwargs["anchors"])))


def _longest(name: str, cumulative) -> int:
    if not cumulative:
        raise ValueError(limits.refuse_packed_required(name))
    return max(end - start for start, end in zip([0] + list(cumulative[:-1]), cumulative))


@select_blocks.register_fake
def _select_fake(query, key, **kwargs):
    """sabi's shape (B, N, ceil(Sq / bq), ceil(Skv / bkv)) from the shapes and the layout."""
    kwargs = SELECT.op_keywords(kwargs)
    layout, (bq, bkv) = kwargs["input_layout"], kwargs["block_shape"]
    q, k = tuple(query.shape), tuple(key.shape)
    if layout not in arguments.LAYOUTS:
        raise ValueError(limits.refuse_layout(layout))
    if limits.is_packed(layout):
        b, n = len(kwargs["actual_seq_lengths"] or ()), q[limits.axis(layout, "N")]
        seq_q = _longest("actual_seq_lengths", kwargs["actual_seq_lengths"])
        seq_kv = _longest("actual_seq_lengths_kv", kwargs["actual_seq_lengths_kv"])
    else:
        if limits.has_fused_heads(layout):
            if kwargs["num_heads"] is None:
                raise ValueError(limits.refuse_bsh_heads())
            n = kwargs["num_heads"]
        else:
            n = q[limits.axis(layout, "N")]
        b_ax, s_ax = limits.axis(layout, "B"), limits.axis(layout, "S")
        b, seq_q, seq_kv = q[b_ax], q[s_ax], k[s_ax]
    return query.new_empty((b, n, -(-seq_q // bq), -(-seq_kv // bkv)), dtype=torch.uint16)


def _select_devices_fit(bound: Dict[str, Any]) -> bool:
    return bound["query"].device.type != "meta" and bound["key"].device == bound["query"].device


# ---- the route from the public functions -------------------------------------------------------

@dataclass(frozen=True)
class _Route:
    signature: Signature
    op: Callable
    fits: Callable  # bound arguments -> whether the op can take them (else the eager function runs)
    result: Callable  # (op's output, bound arguments) -> what the public function returns


_ROUTES = {
    "blitz_sparse_attention": _Route(ATTENTION, blitz_sparse_attention, _attention_devices_fit,
                                     _attention_result),
    "select_blocks": _Route(SELECT, select_blocks, _select_devices_fit, lambda sabi, bound: sabi),
}


def route(op_name: str, eager: Callable, args: tuple, kwargs: dict):
    """Runs a public call through the op; a call whose values the schema cannot carry (a numpy
    key beside a torch query, a string where an int goes, ...) runs `eager`, which raises its
    own clear error about it."""
    r = _ROUTES[op_name]
    try:
        bound = r.signature.bind(args, kwargs)
    except _Unfit:
        return eager(*args, **kwargs)
    if not r.fits(bound):
        return eager(*args, **kwargs)
    return r.result(r.signature.call(r.op, bound), bound)

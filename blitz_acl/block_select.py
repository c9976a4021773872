"""select_blocks: choose the tiles from query and key (the sabi blitz_sparse_attention takes).

Arguments are checked here (the attention's own readers for layouts, heads and lengths, so both
take exactly the same inputs); the scoring and selection run in the CPU device library's
BlitzSelectBlocks op (kernel_src/cpu/select), or with device="npu_sim" in the NPU op (Ascend C,
kernel_src/npu/op_kernel/select_kernel.h) through the execution model. Its defaults and limits
come from aclnn_gen's spec (blitz_acl.select_limits).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from . import arguments, arrays, limits
from . import select_limits as _limits
from .torch_route import routed

_D = _limits.DEFAULTS
DEFAULT_BLOCK_SHAPE = limits.DEFAULT_BLOCK_SHAPE  # blitz_sparse_attention's default


@dataclass(frozen=True)
class Anchors:
    """Key blocks every row keeps whatever their score: blocks 0 .. first-1, the diagonal (the
    key blocks holding the query block's own token positions) and the batch's last valid block.
    Query block i = 2 of 4, bq = bkv, first=1 (k = kept because of an anchor):

        key block:  0 1 2 3
        row 2:      k . k k      (first, diagonal, last)
    """

    first: int = _D["anchor_first"]
    diagonal: bool = _D["anchor_diagonal"]
    last: bool = _D["anchor_last"]


NO_ANCHORS = Anchors(first=0, diagonal=False, last=False)


@dataclass(frozen=True)
class SelectCall:
    query: Any
    key: Any
    input_layout: str
    num_heads: int
    num_key_value_heads: int
    scale_value: float
    block_shape: Tuple[int, int]
    actual_seq_lengths: Optional[Tuple[int, ...]]
    actual_seq_lengths_kv: Optional[Tuple[int, ...]]
    method: str
    mass: float
    top_k: int
    anchors: Anchors
    share_kv_groups: bool
    stride: int
    sub_block: int
    refine_below: float
    sparse_mode: int
    pre_tokens: int
    next_tokens: int
    sabi_shape: Tuple[int, int, int, int]


def _anchors(anchors: Any) -> Anchors:
    if anchors is None:
        return NO_ANCHORS
    if isinstance(anchors, dict):
        unknown = set(anchors) - {"first", "diagonal", "last"}
        if unknown:
            raise ValueError(f"anchors has unknown keys {sorted(unknown)}; expected first, diagonal, last")
        anchors = Anchors(**anchors)
    if not isinstance(anchors, Anchors):
        raise TypeError(f"anchors must be a blitz_acl.Anchors, a dict (first, diagonal, last) or None, "
                        f"got {anchors!r}")
    arguments._int_arg("anchors.first", anchors.first, 0)
    arguments._bool_arg("anchors.diagonal", anchors.diagonal)
    arguments._bool_arg("anchors.last", anchors.last)
    return anchors


def _share(name: str, v: Any) -> float:
    if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a float, got {v!r}")
    return float(v)


def _rule(mass: Any, top_k: Any) -> Tuple[float, int]:
    if mass is None and top_k is None:
        raise ValueError("select_blocks needs mass (a share in (0, 1], e.g. 0.9), top_k (>= 1), or both")
    m = 0.0
    if mass is not None:
        m = _share("mass", mass)
        if not (math.isfinite(m) and 0.0 < m <= 1.0):
            raise ValueError(f"mass must lie in (0, 1] (the share of the estimated softmax mass to keep), got {mass!r}")
    k = 0 if top_k is None else arguments._int_arg("top_k", top_k, 1)
    return m, k


DEVICES = (None, "cpu", "npu_sim")


def _device(device: Any, query) -> None:
    where = arrays.device_type(query)
    if device not in DEVICES:
        raise ValueError(f"select_blocks runs on device 'cpu' or 'npu_sim' (the NPU op through the execution "
                         f"model; not yet on an NPU), got device={device!r}")
    if where != "cpu":
        raise ValueError(
            f"select_blocks runs on host memory only for now (its NPU op has not run on an NPU), but query is "
            f"on {query.device}; pass query.cpu() and key.cpu(), then move the sabi with .to(query.device)")


def _npu_subset(call: "SelectCall", dtype: str) -> None:
    """What the NPU op (device npu_sim) does not take yet, refused in the spec's words (its plan,
    op_host/select_plan.cpp, refuses the same)."""
    if call.method not in _limits.NPU_METHODS:
        raise ValueError(_limits.refuse_select_npu_method(call.method))
    if call.sparse_mode != 0:
        raise ValueError(_limits.refuse_select_npu_mask(call.sparse_mode))
    if dtype not in limits.NPU_DTYPES:
        raise TypeError(_limits.refuse_select_npu_dtype())


def normalize(query, key, *, block_shape, mass, top_k, anchors, method, share_kv_groups, num_heads,
              num_key_value_heads, input_layout, scale_value, actual_seq_lengths, actual_seq_lengths_kv,
              stride, sub_block, refine_below, device, sparse_mode=_D["sparse_mode"],
              pre_tokens=_D["pre_tokens"], next_tokens=_D["next_tokens"]) -> SelectCall:
    """Checks every argument of select_blocks (TypeError / ValueError naming it)."""
    arguments._tensors(query, key, key)
    _device(device, query)
    input_layout = arguments._layout_arg(input_layout)
    batch, heads, kv_heads, seq_q, seq_kv, head_dim = arguments._shapes(
        query, key, key, input_layout, num_heads, num_key_value_heads)
    if not 1 <= head_dim <= limits.CPU_HEAD_DIM_MAX:
        raise ValueError(f"{limits.refuse_cpu_head_dim(head_dim)} (query shape {arrays.shape(query)})")
    if heads < 1 or kv_heads < 1:
        raise ValueError(f"num_heads={heads} and num_key_value_heads={kv_heads} must be positive")
    if heads % kv_heads:
        raise ValueError(limits.refuse_gqa("num_heads", heads, "num_key_value_heads", kv_heads))
    for name, lengths in (("actual_seq_lengths", actual_seq_lengths),
                          ("actual_seq_lengths_kv", actual_seq_lengths_kv)):
        arguments._host_readable(name, lengths, query)
    if limits.is_packed(input_layout):
        lq, seq_q = arguments._packed("actual_seq_lengths", actual_seq_lengths, seq_q)
        lkv, seq_kv = arguments._packed("actual_seq_lengths_kv", actual_seq_lengths_kv, seq_kv)
        if len(lq) != len(lkv):
            raise ValueError(limits.refuse_packed_lengths(len(lkv), len(lq)))
        batch = len(lq)
    else:
        lq = arguments._lengths("actual_seq_lengths", actual_seq_lengths, batch, seq_q)
        lkv = arguments._lengths("actual_seq_lengths_kv", actual_seq_lengths_kv, batch, seq_kv)
    bq, bkv = arguments._block_shape(block_shape, "cpu")
    if not isinstance(method, str) or method not in _limits.METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _limits.METHODS))}, got {method!r}")
    m, k = _rule(mass, top_k)
    refine = _share("refine_below", refine_below)
    if not 0.0 <= refine <= 1.0:
        raise ValueError(f"refine_below must lie in [0, 1] (a coherence; 0 = never refine), got {refine_below!r}")
    rows, cols = -(-seq_q // bq), -(-seq_kv // bkv)
    if cols > limits.SABI_PAD:
        raise ValueError(_limits.refuse_select_kv_blocks(seq_kv, bkv, cols))
    call = SelectCall(
        query=query, key=key, input_layout=input_layout, num_heads=heads, num_key_value_heads=kv_heads,
        scale_value=arguments._scale(scale_value, head_dim), block_shape=(bq, bkv),
        actual_seq_lengths=lq, actual_seq_lengths_kv=lkv, method=method, mass=m, top_k=k,
        anchors=_anchors(anchors), share_kv_groups=arguments._bool_arg("share_kv_groups", share_kv_groups),
        stride=arguments._int_arg("stride", stride, 1, _limits.STRIDE_MAX),
        sub_block=arguments._int_arg("sub_block", sub_block, 1, _limits.SUB_BLOCK_MAX),
        refine_below=refine, sabi_shape=(batch, heads, rows, cols), **_mask(sparse_mode, pre_tokens, next_tokens))
    if device == "npu_sim":
        _npu_subset(call, arrays.dtype_name(query))
    return call


def _mask(sparse_mode, pre_tokens, next_tokens) -> dict:
    mode = arguments._int_arg("sparse_mode", sparse_mode)
    if mode not in _limits.SPARSE_MODES:
        raise ValueError(f"sparse_mode must be one of {_limits.SPARSE_MODES} for select_blocks, got {mode} (mode 1 "
                         f"needs an explicit atten_mask, which the selection does not take)")
    return dict(sparse_mode=mode, pre_tokens=arguments._int_arg("pre_tokens", pre_tokens),
                next_tokens=arguments._int_arg("next_tokens", next_tokens))


@routed("select_blocks")  # torch tensors: through torch.ops.blitz_acl (blitz_acl.torch_ops)
def select_blocks(query, key, *, block_shape=DEFAULT_BLOCK_SHAPE, mass=None, top_k=None, anchors=Anchors(),
                  method=_D["method"], share_kv_groups=_D["share_kv_groups"], num_heads=None,
                  num_key_value_heads=0, input_layout="BNSD", scale_value=None, actual_seq_lengths=None,
                  actual_seq_lengths_kv=None, stride=_D["stride"], sub_block=_D["sub_block"],
                  refine_below=_D["refine_below"], sparse_mode=_D["sparse_mode"], pre_tokens=_D["pre_tokens"],
                  next_tokens=_D["next_tokens"], device=None):
    """Choose, per query block and head, the key blocks worth computing: a sabi for
    blitz_sparse_attention, estimated cheaply from query and key.

    For query block i (bq rows) the op estimates which share of its softmax mass falls in each key
    block (bkv keys) and keeps the anchors plus the best-scored blocks until the rule is met:

        mass=0.9:          the fewest blocks (anchors counted first) whose estimated mass >= 0.9
        top_k=4:           at least 4 blocks (anchors included), best first
        mass and top_k:    top_k as a floor, mass as the stop (whichever keeps more)

    Arguments:
        query, key: as blitz_sparse_attention takes them (every layout: BNSD (B, N, Sq, D), BSND,
            BSH with num_heads, BNSD_BSND read as BNSD, TND (T, N, D) with cumulative lengths);
            numpy (float32, float16, ml_dtypes.bfloat16) or CPU torch tensors, one kind and dtype.
        block_shape: (bq, bkv) of the attention call the sabi is for, default (128, 512); the
            attention's limits (blitz_acl.limits).
        mass: float in (0, 1], or None (default). top_k: int >= 1, or None (default). At least one.
        anchors: blitz_acl.Anchors(first=1, diagonal=True, last=True) (default), a dict with those
            keys, or None (no anchors). Anchors count toward mass and top_k.
        method: "mean_pool" (default): block means; a block whose tokens are not alike (coherence
            ||sum x||^2 / (n sum ||x||^2) < refine_below) is split into sub_block-token sub-blocks.
            "antidiagonal": XAttention's idea, stride x stride cells scored by their antidiagonal
            (about 1/stride of Q K^T's work).
        share_kv_groups: GQA: the query heads of one key head get one pattern, chosen on their
            mean mass. Default False (each query head its own).
        num_heads, num_key_value_heads, input_layout, scale_value, actual_seq_lengths,
            actual_seq_lengths_kv: as blitz_sparse_attention's (scale default 1/sqrt(D)).
        stride: antidiagonal cell side, 1..64, default 8. sub_block: 1..1024, default 32.
        refine_below: in [0, 1], default 0.5; 0 never refines.
        sparse_mode, pre_tokens, next_tokens: the index mask of the attention call the sabi is
            for, as blitz_sparse_attention takes them (0 none, default; 2 causal top-left; 3
            causal bottom-right; 4 band with pre_tokens / next_tokens, default unbounded): a
            block no query row of the block sees any key of is never chosen (anchors included),
            and each query unit / row group's softmax runs over the key units / cells it sees
            some pair of. Mode 1 is refused, and mode 0's explicit atten_mask is not seen.
        device: None or "cpu" (the CPU device), or "npu_sim": the NPU op (Ascend C) run on the host
            through the execution model, fp16 / bf16, both methods (mean_pool with its
            refinement, antidiagonal); sparse_mode != 0 is CPU-only (refused, as anything else
            it lacks). No NPU run yet.

    Returns:
        sabi: uint16 (B, N, R, C), R = ceil(Sq / bq), C = ceil(Skv / bkv) (TND: the longest
        batch's lengths); row (b, h, i) lists its kept key blocks ascending, then 0xFFFF. A row
        past the query length, or of a batch with no keys, is all 0xFFFF. numpy for numpy inputs,
        a CPU torch.uint16 tensor for torch inputs. Blocks past a batch's kv length are never
        chosen, nor (with sparse_mode) blocks the mask hides entirely.

    Raises:
        TypeError / ValueError naming the argument; blitz_acl.devices.status.AclError from the
        library.
    """
    call = normalize(query, key, block_shape=block_shape, mass=mass, top_k=top_k, anchors=anchors,
                     method=method, share_kv_groups=share_kv_groups, num_heads=num_heads,
                     num_key_value_heads=num_key_value_heads, input_layout=input_layout,
                     scale_value=scale_value, actual_seq_lengths=actual_seq_lengths,
                     actual_seq_lengths_kv=actual_seq_lengths_kv, stride=stride, sub_block=sub_block,
                     refine_below=refine_below, device=device, sparse_mode=sparse_mode, pre_tokens=pre_tokens,
                     next_tokens=next_tokens)
    from .devices import select_call  # loads the device library on first use

    return select_call.run(call, device)

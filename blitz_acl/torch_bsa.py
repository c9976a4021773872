"""The original's Python call, for code written against it: `from blitz_acl import torch_bsa`.

    out, lse = torch_bsa.blitz_sparse_attention(q, k, v, atten_mask, sabi, ...)

The same parameter list, order, defaults and return as upstream's `torch_bsa` extension
(hicann/ops-transformer, experimental/attention/blitz_sparse_attention/torch_interface/
torch_interface.cpp, the revision with softmax_lse_flag and block_shape), so that import is the
only line to change. A thin adapter: every check and the computation are
blitz_acl.blitz_sparse_attention's (README "Coming from torch_bsa.blitz_sparse_attention").
"""

from __future__ import annotations

import numbers

from . import api, arrays, limits

# Upstream's defaults, applied both when an argument is left out and when it is None (its
# arguments are c10::optional, so None means "the default" there too): the op attributes'
# (the spec's, limits.ATTR_DEFAULTS), but pre_tokens, where upstream's torch interface writes
# 2147473647 (the op attribute's 2147483647 with one digit off), kept as upstream has it.
_NAMES = ("num_heads", "scale_value", "next_tokens", "input_layout", "num_key_value_heads", "sparse_mode",
          "softmax_lse_flag")
DEFAULTS = dict({n: limits.ATTR_DEFAULTS[n] for n in _NAMES}, pre_tokens=2147473647,
                block_shape=limits.C_ABI_DEFAULT_BLOCK_SHAPE)
_D = DEFAULTS

# Upstream's way to ask for inner_precise = 0 (high precision): sparse_mode + 10. blitz_acl
# always accumulates and runs the softmax in float32, which is that mode, so 10-14 run as 0-4.
_HIGH_PRECISION_OFFSET = limits.TORCH_BSA_PRECISE_OFFSET
_HIGH_PRECISION_MODES = tuple(m + _HIGH_PRECISION_OFFSET for m in limits.SPARSE_MODES)


def _default(name, value):
    return DEFAULTS[name] if value is None else value


def blitz_sparse_attention(query, key, value, atten_mask=None, sabi=None, actual_seq_lengths=None,
                           actual_seq_lengths_kv=None, num_heads=_D["num_heads"],
                           scale_value=_D["scale_value"], pre_tokens=_D["pre_tokens"],
                           next_tokens=_D["next_tokens"], input_layout=_D["input_layout"],
                           num_key_value_heads=_D["num_key_value_heads"],
                           sparse_mode=_D["sparse_mode"], softmax_lse_flag=_D["softmax_lse_flag"],
                           block_shape=_D["block_shape"]):
    """Block-sparse prefill attention with upstream torch_bsa's call; returns (out, lse).

    out has query's shape and dtype (for "BNSD_BSND" upstream allocates it like query and the
    kernel writes BSND data into it; so does this). lse is float32 [B, N, Sq] when
    softmax_lse_flag, else an empty (0,) float32 tensor on query's device. block_shape default
    (128, 128), as upstream's and the C ABI's NULL. Every argument means what it means in
    blitz_acl.blitz_sparse_attention, which runs the call on query's device.
    """
    mode = _default("sparse_mode", sparse_mode)
    if isinstance(mode, numbers.Integral) and not isinstance(mode, bool) and mode in _HIGH_PRECISION_MODES:
        mode -= _HIGH_PRECISION_OFFSET
    want_lse = _default("softmax_lse_flag", softmax_lse_flag)
    layout = _default("input_layout", input_layout)
    result = api.blitz_sparse_attention(
        query, key, value, sabi, atten_mask=atten_mask,
        actual_seq_lengths=actual_seq_lengths, actual_seq_lengths_kv=actual_seq_lengths_kv,
        num_heads=_default("num_heads", num_heads),
        scale_value=_default("scale_value", scale_value),
        pre_tokens=_default("pre_tokens", pre_tokens),
        next_tokens=_default("next_tokens", next_tokens),
        input_layout=layout,
        num_key_value_heads=_default("num_key_value_heads", num_key_value_heads),
        sparse_mode=mode, block_shape=_default("block_shape", block_shape),
        return_lse=want_lse)
    out, lse = result if want_lse else (result, None)  # the call checked it is a bool
    if lse is None:
        lse = arrays.empty((0,), "float32", like=query)
    if limits.output_layout(layout) != layout:  # upstream's output buffer is shaped like query, holding BSND data
        out = out.reshape(arrays.shape(query))
    return out, lse

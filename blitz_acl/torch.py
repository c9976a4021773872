"""blitz_acl in PyTorch programs: `sparse_sdpa`, block-sparse attention with the arguments and
the (B, N, S, D) conventions of torch.nn.functional.scaled_dot_product_attention.

    from blitz_acl.torch import sparse_sdpa
    out = sparse_sdpa(q, k, v, is_causal=True)         # every tile kept: SDPA's result
    out = sparse_sdpa(q, k, v, sabi=blocks)            # only the 128 x 512 tiles sabi lists

It calls the public blitz_acl.blitz_sparse_attention, which runs torch tensors through the
torch.library op torch.ops.blitz_acl.blitz_sparse_attention (blitz_acl.torch_ops), so it works
under torch.compile(fullgraph=True) and torch.export. CPU tensors run the CPU device, torch_npu
tensors the NPU.
"""

from __future__ import annotations

import math
import numbers

import torch

from . import api, torch_ops

# The public function's default tiles (read from its signature, stated once there).
DEFAULT_BLOCK_SHAPE = tuple(torch_ops.ATTENTION.defaults["block_shape"])
CAUSAL_TOP_LEFT = 2  # sparse_mode 2: key j attends query i iff j <= i, SDPA's is_causal


def _bnsd(name: str, x) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor, got {type(x).__name__} (for numpy arrays "
                        f"call blitz_acl.blitz_sparse_attention)")
    if x.dim() != 4:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; sparse_sdpa takes 4-d (B, N, S, D) "
                         f"tensors, as SDPA's (batch, heads, sequence, head_dim)")


def _heads(query, key, value, enable_gqa: bool) -> None:
    (b, n, _, d), (bk, nkv, skv, dk) = query.shape, key.shape
    if tuple(value.shape[:3]) != (bk, nkv, skv):
        raise ValueError(f"key has shape {tuple(key.shape)} but value has shape {tuple(value.shape)}; "
                         f"their (B, N, S) must be equal")
    if value.shape[3] != d or dk != d:
        raise ValueError(f"query, key and value have head dims {d}, {dk}, {value.shape[3]}; the kernel "
                         f"takes one head dim for all three")
    if bk != b:
        raise ValueError(f"query has batch {b} but key has batch {bk}; they must be equal")
    if nkv != n:
        if not enable_gqa:
            raise ValueError(f"query has {n} heads but key and value have {nkv}; pass enable_gqa=True "
                             f"for grouped-query attention (as SDPA requires)")
        if n % nkv:
            raise ValueError(f"enable_gqa=True needs the query's heads ({n}) to be a multiple of the "
                             f"key's ({nkv})")


def _masked_out(attn_mask, query, key):
    """SDPA's attn_mask as blitz_acl's atten_mask: True = masked out, [1|B, 1|N, L, S].

    SDPA broadcasts the mask to (B, N, L, S) from the right (a 3-d mask is (N, L, S)); a bool
    mask is True where attention is allowed, a float mask is added to the scores. A float mask
    of 0 / -inf only is the same as a bool one; any other value is a bias, which the kernel
    cannot add (it has no bias input), so it is refused."""
    if not isinstance(attn_mask, torch.Tensor):
        raise TypeError(f"attn_mask must be a torch tensor or None, got {type(attn_mask).__name__}")
    b, n, seq_q, _ = query.shape
    seq_kv = key.shape[2]
    shape = tuple(attn_mask.shape)
    full = (1,) * (4 - len(shape)) + shape if len(shape) <= 4 else None
    if full is None or any(got not in (1, want) for got, want in zip(full, (b, n, seq_q, seq_kv))):
        raise ValueError(f"attn_mask has shape {shape}, which does not broadcast to (B, N, L, S) = "
                         f"{(b, n, seq_q, seq_kv)}")
    m = attn_mask.reshape(full)
    if m.dtype == torch.bool:
        masked = ~m
    elif m.is_floating_point():
        kept = m == 0
        if not bool((kept | (m == -math.inf)).all()):  # reads the values: a graph break when compiled
            raise ValueError("attn_mask is a float mask with values other than 0 and -inf (an additive "
                             "bias, e.g. ALiBi); blitz_acl's kernel has no bias input. Pass a bool mask "
                             "(True = attend) or 0 / -inf")
        masked = ~kept
    else:
        raise TypeError(f"attn_mask has dtype {m.dtype}; expected torch.bool (True = attend) or a float "
                        f"dtype (added to the scores), as SDPA takes")
    return masked.expand(full[0], full[1], seq_q, seq_kv).contiguous()


# select_blocks arguments sparse_sdpa sets itself (from the tensors' shapes and `scale`).
SELECT_OWN = ("input_layout", "num_heads", "num_key_value_heads", "scale_value", "actual_seq_lengths",
              "actual_seq_lengths_kv", "device", "sparse_mode", "pre_tokens", "next_tokens")


def _selected(query, key, scale, sabi, select, block_shape, sparse_mode=0):
    """(sabi, block_shape) for the call: sabi as given, or chosen by select_blocks(**select)."""
    if select is None:
        return sabi, DEFAULT_BLOCK_SHAPE if block_shape is None else tuple(block_shape)
    if sabi is not None:
        raise ValueError("pass sabi or select, not both (select chooses the sabi)")
    if not isinstance(select, dict):
        raise TypeError(f"select must be a dict of blitz_acl.select_blocks arguments, got {type(select).__name__}")
    own = sorted(set(select) & set(SELECT_OWN))
    if own:
        raise ValueError(f"select sets {', '.join(own)}, which sparse_sdpa passes itself (BNSD, the tensors' "
                         f"heads, scale=)")
    import blitz_acl

    choose = getattr(blitz_acl, "select_blocks", None)
    if choose is None:
        raise NotImplementedError("select= needs blitz_acl.select_blocks, which this version of blitz_acl "
                                  "does not have; pass sabi= instead")
    chosen = tuple(select.get("block_shape", DEFAULT_BLOCK_SHAPE))
    if block_shape is not None and tuple(block_shape) != chosen:
        raise ValueError(f"block_shape={tuple(block_shape)} but select's block_shape is {chosen}; the "
                         f"attention uses the tiles the selection chose (give it once, in select)")

    def on_host(x):  # select_blocks runs on the CPU device only (for now); a host sabi is accepted
        return x if x.device.type == "cpu" else x.cpu()

    # The selection sees the attention's causal mask (tiles it hides are never chosen).
    extra = {"sparse_mode": sparse_mode} if sparse_mode else {}
    return choose(on_host(query), on_host(key), scale_value=scale, **extra, **select), chosen


def sparse_sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                enable_gqa=False, *, sabi=None, select=None, block_shape=None):
    """scaled_dot_product_attention over the tiles sabi selects (every tile by default).

    Arguments, as torch.nn.functional.scaled_dot_product_attention takes them:
        query: (B, N, L, D); key, value: (B, Nkv, S, D). float32, float16 or bfloat16 torch
            tensors (CPU; torch_npu tensors on an NPU: float16 / bfloat16). One head dim D for
            all three (SDPA allows value's to differ; the kernel does not).
        attn_mask: None (default), a bool tensor (True = attend) or a float tensor of 0 / -inf
            (added to the scores) that broadcasts to (B, N, L, S). A float mask with other values
            (a bias) is refused.
        dropout_p: must be 0.0 (the kernel is an inference kernel; anything else is refused).
        is_causal: key j attends query i iff j <= i (top-left aligned, as SDPA). Not with attn_mask.
        scale: float, default 1 / sqrt(D).
        enable_gqa: allow Nkv < N, N % Nkv == 0; query head h reads key/value head h // (N / Nkv).

    blitz_acl's own (keyword-only):
        sabi: which tiles to compute, blitz_acl's format (README "The sabi format"): uint16
            (1|B, 1|N, ceil(L / bq), W) lists of key blocks per query block. None (default): every
            tile, which gives SDPA's result.
        select: a dict of blitz_acl.select_blocks arguments (mass, top_k, method, anchors, ...):
            the tiles are chosen from query and key by select_blocks(query, key, scale_value=scale,
            **select), on the host (select_blocks takes host tensors: device cpu or npu_sim). Not with sabi.
        block_shape: (bq, bkv) tiles of sabi, default (128, 512); with select, select's.

    Returns (B, N, L, D), the dtype and device of query. Where SDPA gives NaN for a query row
    with no allowed key (a mask row of all False), this gives zeros.

    Raises TypeError / ValueError naming the argument (before any work starts), and whatever
    blitz_acl.blitz_sparse_attention raises for sabi.
    """
    for name, x in (("query", query), ("key", key), ("value", value)):
        _bnsd(name, x)
    if not isinstance(dropout_p, numbers.Real) or isinstance(dropout_p, bool):
        raise TypeError(f"dropout_p must be a float, got {dropout_p!r}")
    if dropout_p != 0.0:
        raise ValueError(f"dropout_p={dropout_p}: sparse_sdpa has no dropout (blitz_acl's kernel is "
                         f"for inference); pass dropout_p=0.0")
    for name, flag in (("is_causal", is_causal), ("enable_gqa", enable_gqa)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, got {flag!r}")
    _heads(query, key, value, enable_gqa)
    if is_causal and attn_mask is not None:
        raise ValueError("pass attn_mask or is_causal=True, not both (as SDPA requires)")
    masked = None if attn_mask is None else _masked_out(attn_mask, query, key)
    sabi, block_shape = _selected(query, key, scale, sabi, select, block_shape,
                                  CAUSAL_TOP_LEFT if is_causal else 0)
    return api.blitz_sparse_attention(
        query, key, value, sabi, scale_value=scale, atten_mask=masked,
        sparse_mode=CAUSAL_TOP_LEFT if is_causal else 0, block_shape=block_shape)

"""sabi to and from torch FlexAttention's BlockMask (needs torch, imported only when called)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .format import DEFAULT_BLOCK_SHAPE, PAD, block_counts, check_block_shape, compact, normalize, validate
from .masks import _lists_to_mask, from_block_mask, to_block_mask


def to_flex_block_mask(sabi: Any, seq_q: int, seq_kv: int, block_shape=DEFAULT_BLOCK_SHAPE, *,
                       mask_mod=None, sabi_mask_mod: bool = True, device: str = "cpu"):
    """torch FlexAttention BlockMask computing the same tiles (BLOCK_SIZE = block_shape).

    Each selected tile is a partial block of the BlockMask. FlexAttention's block lists only
    let the compiled kernel skip tiles; its eager path applies mask_mod alone. So by default
    the mask_mod also encodes sabi (allowed iff the pair's tile is selected) and eager and
    compiled FlexAttention both compute exactly sabi's attention; `mask_mod` (a token rule such
    as causal) is ANDed with it. `sabi_mask_mod=False` drops that lookup (mask_mod alone, or
    none): right only for the compiled kernel, and a little faster there. (Marking tiles as
    full blocks would skip mask_mod altogether, but torch 2.13's CPU inductor template fails to
    compile a BlockMask without partial blocks.) Needs torch.
    """
    import torch
    from torch.nn.attention.flex_attention import BlockMask, and_masks

    bq, bkv = check_block_shape(block_shape)
    s = compact(validate(sabi, *normalize(sabi).shape[:2], seq_q, seq_kv, block_shape))
    cols = block_counts(seq_q, seq_kv, block_shape)[1]
    counts = torch.from_numpy((s != PAD).sum(axis=-1).astype(np.int32)).to(device)
    # FlexAttention wants kv_indices [B, H, R, C]; entries past the block count are ignored.
    indices = np.zeros(s.shape[:3] + (cols,), dtype=np.int32)
    width = min(s.shape[-1], cols)
    indices[..., :width] = np.where(s[..., :width] == PAD, 0, s[..., :width])
    mods = [] if mask_mod is None else [mask_mod]
    if sabi_mask_mod:
        selected = torch.from_numpy(to_block_mask(s, seq_q, seq_kv, block_shape)).to(device)
        b_step, h_step = int(s.shape[0] > 1), int(s.shape[1] > 1)  # size-1 dims broadcast

        def sabi_mod(b, h, q_idx, kv_idx):
            return selected[b * b_step, h * h_step, q_idx // bq, kv_idx // bkv]

        mods.insert(0, sabi_mod)
    return BlockMask.from_kv_blocks(
        counts, torch.from_numpy(indices).to(device), BLOCK_SIZE=(bq, bkv),
        mask_mod=and_masks(*mods) if len(mods) > 1 else (mods[0] if mods else None),
        seq_lengths=(seq_q, seq_kv))


def from_flex_block_mask(block_mask, *, block_shape=None, width: Optional[int] = None) -> np.ndarray:
    """sabi uint16 [B, H, R, W] listing every block a FlexAttention BlockMask visits.

    Partial and full blocks both count. When `block_shape` is given it must equal the mask's
    BLOCK_SIZE (a sabi is meaningless without its tile size).
    """
    size = tuple(int(v) for v in block_mask.BLOCK_SIZE)
    if block_shape is not None and check_block_shape(block_shape) != size:
        raise ValueError(f"block_mask has BLOCK_SIZE={size}, expected block_shape={tuple(block_shape)}")
    seq_q, seq_kv = (int(v) for v in block_mask.seq_lengths)
    rows, cols = block_counts(seq_q, seq_kv, size)
    kv_num = block_mask.kv_num_blocks.detach().cpu().numpy()
    mask = np.zeros(kv_num.shape + (cols,), dtype=bool)
    pairs = [(block_mask.kv_num_blocks, block_mask.kv_indices)]
    if block_mask.full_kv_num_blocks is not None:
        pairs.append((block_mask.full_kv_num_blocks, block_mask.full_kv_indices))
    for num_t, idx_t in pairs:
        num = num_t.detach().cpu().numpy()[..., :rows]
        idx = idx_t.detach().cpu().numpy()[..., :rows, :].astype(np.int64)
        valid = np.arange(idx.shape[-1]) < num[..., None]
        mask[..., :rows, :] |= _lists_to_mask(idx, valid, cols)
    return from_block_mask(mask[..., :rows, :], width=width)

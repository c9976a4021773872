"""AttentionCall: one validated call of the operation, as the devices receive it.

`arguments.normalize` builds it from the public API's arguments after every check has passed;
the reference, the CPU device and the NPU device read it and nothing else, so each fact about a
call (its layout, resolved head counts, lengths, masks) is derived once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from . import limits


@dataclass(frozen=True)
class AttentionCall:
    # The tensors as the caller gave them (numpy arrays or torch tensors, not copied).
    query: Any
    key: Any
    value: Any
    kind: str  # "numpy" or "torch"
    dtype: str  # "float32", "float16" or "bfloat16"

    input_layout: str  # "BNSD", "BSND", "BSH", "BNSD_BSND" or "TND" (packed: seq_q / seq_kv the longest batch)
    batch: int
    num_heads: int  # N
    num_key_value_heads: int  # Nkv, resolved (never 0)
    seq_q: int
    seq_kv: int
    head_dim: int

    # sabi normalised to a C-contiguous numpy uint16 array [Bs, Ns, R, W] (3-d input gets
    # Bs = 1), 0xFFFF = no block; None = dense.
    sabi: Optional[Any]
    block_shape: Tuple[int, int]  # (bq, bkv)
    scale_value: float

    # Per-batch valid lengths expanded to `batch` entries, or None for full lengths; for TND the
    # cumulative ends as given (one per batch, the last = T).
    actual_seq_lengths: Optional[Tuple[int, ...]]
    actual_seq_lengths_kv: Optional[Tuple[int, ...]]

    # Explicit mask as given (bool/int8/uint8, 1 = masked out), of shape [Sq, Skv],
    # [1 or B, Sq, Skv] or [1 or B, 1, Sq, Skv]; None when absent.
    atten_mask: Optional[Any]
    sparse_mode: int
    pre_tokens: int
    next_tokens: int

    return_lse: bool
    validate: bool
    device: str  # "reference", "cpu" or "npu"

    @property
    def output_layout(self) -> str:
        """Layout of attention_out: BSND for BNSD_BSND, otherwise the input layout."""
        # a name the spec lacks reaches the C checks as it is (they refuse it), as a C caller's would
        return limits.LAYOUT_OUTPUT.get(self.input_layout, self.input_layout)

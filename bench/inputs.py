"""The bench's inputs: unit-variance q, k, v in BNSD (the sabi comes from bench/patterns.py)."""

from __future__ import annotations

DTYPES = ("bfloat16", "float16", "float32")
INPUT_SEED = 0


def torch_dtype(name: str):
    import torch

    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def make_qkv(batch: int, heads: int, seq_q: int, seq_kv: int, head_dim: int, dtype: str, device: str):
    """q [B, N, Sq, D], k and v [B, N, Skv, D]: standard normal, rounded once to `dtype`."""
    import torch

    gen = torch.Generator().manual_seed(INPUT_SEED)
    shapes = ((batch, heads, seq_q, head_dim), (batch, heads, seq_kv, head_dim), (batch, heads, seq_kv, head_dim))
    tensors = [torch.randn(shape, generator=gen, dtype=torch.float32).to(torch_dtype(dtype)) for shape in shapes]
    if device == "npu":
        tensors = [t.to("npu") for t in tensors]
    return tensors


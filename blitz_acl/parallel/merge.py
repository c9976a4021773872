"""Exact merging of partial attention results through their log-sum-exp, in float32.

A partial result over key set K_i is (o_i, l_i) with o_i = sum_{j in K_i} e^{s_j - l_i} v_j and
l_i = log sum_{j in K_i} e^{s_j}. Over disjoint K_1, K_2: l = logaddexp(l_1, l_2) and
o = e^{l_1 - l} o_1 + e^{l_2 - l} o_2, the same softmax as one pass over K_1 + K_2.
"""

from __future__ import annotations


class Accumulator:
    """out [B, N, S, D] and lse [B, N, S] in float32; rows nothing reached stay 0 and -inf."""

    def __init__(self, batch: int, heads: int, seq: int, head_dim: int, device=None):
        import torch

        self.out = torch.zeros(batch, heads, seq, head_dim, dtype=torch.float32, device=device)
        self.lse = torch.full((batch, heads, seq), float("-inf"), dtype=torch.float32, device=device)

    def add(self, out, lse, b0: int, b1: int, s0: int, s1: int) -> None:
        """Merge a partial result for batches b0..b1-1 and rows s0..s1-1 (out in any dtype)."""
        import torch

        acc_o = self.out[b0:b1, :, s0:s1]
        acc_l = self.lse[b0:b1, :, s0:s1]
        part_l = lse.to(torch.float32)
        new_l = torch.logaddexp(acc_l, part_l)
        # A row still at -inf on both sides has no weight to give: 0, not exp(-inf + inf) = NaN.
        finite = torch.isfinite(new_l)
        base = torch.where(finite, new_l, torch.zeros_like(new_l))
        w_acc = torch.where(finite, torch.exp(acc_l - base), torch.zeros_like(base))
        w_part = torch.where(finite, torch.exp(part_l - base), torch.zeros_like(base))
        acc_o.mul_(w_acc[..., None]).add_(out.to(torch.float32) * w_part[..., None])
        acc_l.copy_(new_l)

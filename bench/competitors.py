"""The competitors a bench row times: the reference (Ref), blitz_acl (Ours) and FlexAttention.

Each competitor is prepared once per sparsity (`prepare(case)`, a bench.patterns.Case: the sabi
and its token mask) and then called with no
arguments, so the timer measures the call and nothing else. Optional competitors are guarded:
a missing module, a BlockMask that cannot be built or a failed torch.compile marks the
competitor unavailable with the reason, which the table and the JSON report; it never stops the
bench.

- Ref on the CPU: torch.nn.functional.scaled_dot_product_attention, dense (it computes every
  tile whatever the sparsity): the baseline the speedup and the ideal 1/(1-s) refer to.
- Ref on the NPU: torch_npu.npu_fusion_attention, dense (no mask), the kernel the original's
  bench compared with. The original also ran it with the sabi's token mask, which for a
  per-head pattern at S=118806 would need B*N*Sq*Skv bytes of mask (42 GB); correctness is
  checked separately (bench/check.py), so the Ref here is the dense baseline, as on the CPU.
- Flex: torch.compile(flex_attention) with the BlockMask equivalent to the sabi
  (blitz_acl.sabi.to_flex_block_mask): the same tiles skipped, so the same FLOPs as ours.
"""

from __future__ import annotations

from typing import Optional

# npu_fusion_attention's "no band limit" for pre/next tokens (its own default).
NPU_UNLIMITED_TOKENS = 2147483647


class Competitor:
    name = ""
    label = ""

    def __init__(self) -> None:
        self.available = True
        self.reason: Optional[str] = None

    def disable(self, reason: str) -> None:
        self.available = False
        self.reason = reason

    def prepare(self, case) -> None:
        """Set up the call for one sparsity (Ref ignores the case: it is dense)."""

    def __call__(self):
        raise NotImplementedError


class SdpaDense(Competitor):
    name = "ref"
    label = "torch SDPA (dense)"

    def __init__(self, query, key, value, scale: float) -> None:
        super().__init__()
        self.query, self.key, self.value, self.scale = query, key, value, scale
        self.gqa = query.shape[1] != key.shape[1]

    def __call__(self):
        import torch.nn.functional as F

        kwargs = {"enable_gqa": True} if self.gqa else {}
        return F.scaled_dot_product_attention(self.query, self.key, self.value, scale=self.scale, **kwargs)


class NpuFusionAttention(Competitor):
    name = "ref"
    label = "torch_npu.npu_fusion_attention (dense)"

    def __init__(self, query, key, value, scale: float) -> None:
        super().__init__()
        self.query, self.key, self.value, self.scale = query, key, value, scale

    def __call__(self):
        import torch_npu

        return torch_npu.npu_fusion_attention(
            self.query, self.key, self.value, head_num=self.query.shape[1], input_layout="BNSD",
            scale=self.scale, pre_tockens=NPU_UNLIMITED_TOKENS, next_tockens=NPU_UNLIMITED_TOKENS,
            sparse_mode=0,
        )[0]


class Flex(Competitor):
    name = "flex"
    label = "FlexAttention (torch.compile, same BlockMask)"

    def __init__(self, query, key, value, scale: float, block_shape) -> None:
        super().__init__()
        self.query, self.key, self.value, self.scale = query, key, value, scale
        self.block_shape = tuple(block_shape)
        self.block_mask = None
        self.compiled = None
        self.gqa = query.shape[1] != key.shape[1]
        try:
            import torch
            from torch.nn.attention.flex_attention import flex_attention

            self.compiled = torch.compile(flex_attention, dynamic=False)
        except Exception as error:  # no FlexAttention in this torch, or no compiler
            self.disable(f"FlexAttention unavailable: {type(error).__name__}: {error}")

    def prepare(self, case) -> None:
        if not self.available:
            return
        try:
            from blitz_acl.sabi import to_flex_block_mask

            from bench.patterns import causal_mask_mod

            mask_mod = None if case.causal_offset is None else causal_mask_mod(case.causal_offset)
            self.block_mask = to_flex_block_mask(
                case.sabi, self.query.shape[2], self.key.shape[2], self.block_shape, mask_mod=mask_mod
            )
        except Exception as error:
            self.disable(f"BlockMask from sabi failed: {type(error).__name__}: {error}")

    def __call__(self):
        kwargs = {"enable_gqa": True} if self.gqa else {}
        return self.compiled(
            self.query, self.key, self.value, block_mask=self.block_mask, scale=self.scale, **kwargs
        )


class Ours(Competitor):
    name = "ours"
    label = "blitz_acl"

    def __init__(self, query, key, value, scale: float, block_shape, device: str) -> None:
        super().__init__()
        self.query, self.key, self.value, self.scale = query, key, value, scale
        self.block_shape = tuple(block_shape)
        self.device = device
        self.case = None

    def prepare(self, case) -> None:
        self.case = case

    def __call__(self):
        from blitz_acl import blitz_sparse_attention

        return blitz_sparse_attention(
            self.query, self.key, self.value, self.case.sabi, num_heads=self.query.shape[1],
            input_layout="BNSD", scale_value=self.scale, sparse_mode=self.case.sparse_mode,
            block_shape=self.block_shape, device=self.device,
        )


def make_reference(device: str, query, key, value, scale: float, block_shape) -> Competitor:
    if device == "npu":
        return NpuFusionAttention(query, key, value, scale)
    return SdpaDense(query, key, value, scale)


def synchronizer(device: str):
    """The call that waits for the device's queued work (a no-op on the CPU)."""
    if device == "npu":
        import torch

        return torch.npu.synchronize
    return lambda: None

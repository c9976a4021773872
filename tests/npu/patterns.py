"""The sabi of tests/npu/test_npu_device.py, built here so tests/test_sparse_cases.py can check
their density on any machine (the NPU tests themselves skip without an NPU)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blitz_acl import sabi as S


@dataclass(frozen=True)
class Spec:
    name: str
    kind: str  # "frame" or "random"
    batch: int
    heads: int
    seq: int  # Sq = Skv
    sparsity: float

    def sabi(self) -> np.ndarray:
        if self.kind == "frame":
            return S.frame_pattern(self.batch, self.heads, self.seq, self.seq, self.sparsity)
        return S.random_pattern(self.batch, self.heads, self.seq, self.seq, self.sparsity, seed=1)


# The original bench's frame pattern at S = 30k (R = 235, C = 59): 0.8 rather than 0.9, where
# the rule's 9 forced key blocks exceed round(59 x 0.1) = 6 and the density stays 0.26.
FRAME_30K = [Spec(f"frame_30k_{s}", "frame", 1, 2, 30000, s) for s in (0.5, 0.8)]
# Outputs_equal at S = 4096: C = 8 = the frame rule's forced blocks, so the frame pattern would
# be dense at every sparsity; random rows keep round(8 (1 - s)) blocks.
OUTPUTS_EQUAL = [Spec(f"outputs_equal_{s}", "random", 1, 3, 4096, s) for s in (0.5, 0.9)]
SPARSE_SPECS = FRAME_30K + OUTPUTS_EQUAL

"""The torch.library op and sparse_sdpa on torch_npu tensors: opcheck, torch.compile(fullgraph=True)
through the public API, and sparse_sdpa with every tile kept against SDPA in float32 on the NPU.

Marked `npu`; every test skips with the reason when torch_npu, an NPU or the custom-op package
is missing (nothing is probed at import; the checks are tests/npu/test_npu_device.py's).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_npu_device import _npu_state  # noqa: E402

pytestmark = pytest.mark.npu


@pytest.fixture(autouse=True)
def _need_npu():
    reason = _npu_state()
    if reason:
        pytest.skip(reason)


def _qkv(n, nkv, sq, skv, d, dtype):
    import torch

    g = torch.Generator().manual_seed(0)
    return tuple(torch.randn(shape, generator=g).to(dtype).npu()
                 for shape in ((1, n, sq, d), (1, nkv, skv, d), (1, nkv, skv, d)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_opcheck_on_npu(dtype):
    import torch
    from blitz_acl import sabi as S
    from blitz_acl import torch_ops

    q, k, v = _qkv(4, 2, 300, 700, 64, getattr(torch, dtype))
    sabi = torch.from_numpy(S.random_pattern(1, 4, 300, 700, 0.3, seed=1))  # sabi stays on the host
    torch.library.opcheck(torch_ops.blitz_sparse_attention, (q, k, v, sabi), dict(return_lse=True))


def test_public_api_compiles_on_npu():
    import torch
    import blitz_acl

    def attend(q, k, v):
        return blitz_acl.blitz_sparse_attention(q * 0.5, k, v, sparse_mode=2)

    q, k, v = _qkv(2, 2, 256, 600, 128, torch.bfloat16)
    torch.testing.assert_close(torch.compile(attend, fullgraph=True)(q, k, v), attend(q, k, v), atol=0, rtol=0)


@pytest.mark.parametrize("is_causal", [False, True])
def test_sparse_sdpa_equals_sdpa_on_npu(is_causal):
    import torch
    from blitz_acl.torch import sparse_sdpa

    q, k, v = _qkv(4, 2, 300, 700, 64, torch.float16)
    ours = sparse_sdpa(q, k, v, is_causal=is_causal, enable_gqa=True).float()
    want = torch.nn.functional.scaled_dot_product_attention(
        q.float(), k.float(), v.float(), is_causal=is_causal, enable_gqa=True)
    # fp16 products with P rounded to fp16 (as the CPU device's bounds), unit-variance inputs
    assert (ours - want).abs().max().item() < 5e-3

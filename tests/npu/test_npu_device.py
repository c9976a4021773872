"""device="npu" on an Ascend NPU: the oracle matrix (token-mask cases included), the frame
pattern at S = 30k, the original bench's Outputs_equal check and the computed masks (sparse modes
2-4) against torch_npu.npu_fusion_attention.

Marked `npu`; every test skips with the reason when torch_npu, an NPU or the custom-op
package is missing (nothing is probed at import). References are independent of the code under
test: the independent float64 oracle (tests/oracle.py), a torch block-by-block implementation on the NPU (for sizes
where float64 numpy is too slow), and CANN's own fused attention.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np
import pytest

import blitz_acl
from blitz_acl import arrays
from blitz_acl import sabi as S

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/cases.py
from cases import CASE_IDS, CASES, assert_rows_close  # noqa: E402
import bounds  # noqa: E402  (tests/bounds.py: the oracle's truth and the per-row bounds)
import oracle  # noqa: E402  (tests/oracle.py: the independent float64 truth)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import patterns  # noqa: E402  (this suite's sabi, density-checked by tests/test_sparse_cases.py)

pytestmark = pytest.mark.npu

# Max abs error on unit-variance inputs: the CPU device's bounds (P is rounded to the input
# dtype before P*V on both), with headroom for the cube's accumulation order.
ATOL = {"float16": 5e-3, "bfloat16": 3e-2}
CASES_BY_NAME = {c.name: c for c in CASES}


@functools.lru_cache(maxsize=None)
def _npu_state() -> str:
    """'' when tests can run, else the skip reason (checked at the first test, not at import)."""
    try:
        import torch
        import torch_npu  # noqa: F401
    except ImportError as e:
        return f"torch_npu is not installed ({e})"
    if not torch.npu.is_available() or torch.npu.device_count() == 0:
        return "torch_npu finds no NPU on this machine"
    from blitz_acl.devices import npu_library

    try:
        npu_library.load()
    except npu_library.NpuLibraryNotFoundError as e:
        return f"the BlitzSparseAttention package is not installed: {e}"
    return ""


@pytest.fixture(autouse=True)
def _need_npu():
    reason = _npu_state()
    if reason:
        pytest.skip(reason)


def to_npu(inputs, dtype: str):
    """numpy case inputs -> torch_npu tensors for q, k, v and the mask (which must share the
    query's device); sabi and the lengths stay on the host, as the API accepts them."""
    import torch

    def conv(x):
        if x is None:
            return None
        if x.dtype == arrays.numpy_dtype("bfloat16"):
            return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16).npu()
        return torch.from_numpy(x.copy()).npu()

    kwargs = dict(inputs.kwargs)
    kwargs["atten_mask"] = conv(kwargs.get("atten_mask"))
    return conv(inputs.query), conv(inputs.key), conv(inputs.value), kwargs


@functools.lru_cache(maxsize=None)
def _expected(name: str, dtype: str):
    inputs = CASES_BY_NAME[name].build(dtype)
    result = oracle.attention(inputs.query, inputs.key, inputs.value, **inputs.kwargs)
    out, lse = result if inputs.kwargs["return_lse"] else (result, None)
    return inputs, out, lse


@pytest.mark.parametrize("dtype", list(ATOL))
@pytest.mark.parametrize("name", CASE_IDS)
def test_case_matches_the_oracle(name, dtype):
    """The matrix against tests/oracle.py with the bounds every device meets (tests/bounds.py:
    k x the same-dtype SDPA baseline's error + atol + rtol, per row), as device="npu_sim" does."""
    case = CASES_BY_NAME[name]
    inputs, truth = bounds.case_truth(name, dtype)
    q, k, v, kwargs = to_npu(inputs, dtype)
    result = blitz_acl.blitz_sparse_attention(q, k, v, device="npu", **kwargs)
    out, lse = result if case.lse else (result, None)
    assert out.device.type == "npu" and arrays.dtype_name(out) == dtype
    layout = "BSND" if case.layout == "BNSD_BSND" else case.layout
    bounds.assert_within(arrays.to_numpy(out.cpu()), truth, layout,
                         None if lse is None else arrays.to_numpy(lse.cpu()), what=f"npu {name}")


def test_matrix_covers_every_case():
    assert len(CASE_IDS) == len(CASES) >= 40


def _block_reference(q, k, v, sabi, block_shape, scale):
    """Block-sparse attention with torch ops on the NPU, one query block at a time, float32:
    gathers the selected key blocks and runs a plain softmax over them (BNSD, Nkv == N)."""
    import torch

    bq, bkv = block_shape
    b_, n_, sq, _ = q.shape
    skv = k.shape[2]
    out = torch.zeros(q.shape, dtype=torch.float32, device=q.device)
    for b in range(b_):
        for h in range(n_):
            rows = sabi[b if sabi.shape[0] > 1 else 0, h if sabi.shape[1] > 1 else 0]
            for i, row in enumerate(rows):
                cols = [int(c) for c in row if c != S.PAD]
                if not cols:
                    continue
                keys = torch.cat([torch.arange(c * bkv, min((c + 1) * bkv, skv)) for c in cols]).to(q.device)
                qi = q[b, h, i * bq:(i + 1) * bq].float()
                scores = (qi @ k[b, h, keys].float().T) * scale
                out[b, h, i * bq:(i + 1) * bq] = torch.softmax(scores, dim=-1) @ v[b, h, keys].float()
    return out


@pytest.mark.slow
@pytest.mark.parametrize("spec", patterns.FRAME_30K, ids=[p.name for p in patterns.FRAME_30K])
def test_frame_pattern_30k(spec):
    """The original bench's pattern at S = 30k (B=1, N=2, D=128, bf16) against a torch
    block-by-block reference on the NPU (the sabi's density: tests/test_sparse_cases.py)."""
    import torch

    b, n, s, d = spec.batch, spec.heads, spec.seq, 128
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(b, n, s, d, generator=gen).to(torch.bfloat16).npu() for _ in range(3))
    sabi = spec.sabi()
    out = blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="npu")
    expected = _block_reference(q, k, v, sabi, (128, 512), 1.0 / d ** 0.5)
    err = (out.float() - expected).abs().max().item()
    assert err <= ATOL["bfloat16"], f"max |diff| {err} at sparsity {spec.sparsity}"


@pytest.mark.parametrize("spec", [None] + patterns.OUTPUTS_EQUAL,
                         ids=["dense"] + [p.name for p in patterns.OUTPUTS_EQUAL])
def test_outputs_equal_npu_fusion_attention(spec):
    """The original bench's check: ours vs npu_fusion_attention with the token mask that sabi
    implies (sparse_mode 1; dense sparse_mode 0), torch.allclose with rtol = atol = 0.02."""
    import torch
    import torch_npu

    b, n, s, d = 1, 3, 4096, 128
    gen = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(b, n, s, d, generator=gen).to(torch.bfloat16).npu() for _ in range(3))
    sabi = None if spec is None else spec.sabi()
    ours = blitz_acl.blitz_sparse_attention(q, k, v, sabi, device="npu")
    if spec is None:
        mask, mode = None, 0
    else:
        allowed = S.to_token_mask(sabi, s, s, batch=b, heads=n, max_elements=b * n * s * s)
        mask, mode = torch.from_numpy(~allowed).npu(), 1  # 1 = masked out
    ref = torch_npu.npu_fusion_attention(q, k, v, head_num=n, input_layout="BNSD", scale=1.0 / d ** 0.5,
                                         pre_tockens=2147483647, next_tockens=2147483647,
                                         atten_mask=mask, sparse_mode=mode)[0]
    assert torch.allclose(ours.float(), ref.float(), rtol=0.02, atol=0.02), \
        f"max |diff| {(ours.float() - ref.float()).abs().max().item()}"


# npu_fusion_attention's sparse modes 2-4 take this compressed mask (1 = masked out) instead of a
# full one; ours build theirs from indices.
COMPRESSED_MASK_SIDE = 2048


# Modes 2 and 3 with Sq < Skv, so top-left and bottom-right anchoring differ (and no row is
# empty); the band with Sq == Skv, where both operators' band is |i - j| within pre/next
# whatever the anchoring (torch_npu's docs do not spell out its band anchor for Sq != Skv).
@pytest.mark.parametrize("mode,pre,nxt,sq,skv", [
    (2, 0, 0, 1000, 1800), (3, 0, 0, 1000, 1800), (4, 300, 100, 1500, 1500)])
def test_computed_masks_match_npu_fusion_attention(mode, pre, nxt, sq, skv):
    """Modes 2-4 (dense) against CANN's fused attention with the same sparse_mode,
    torch.allclose with rtol = atol = 0.02."""
    import torch
    import torch_npu

    b, n, d = 1, 2, 128
    gen = torch.Generator().manual_seed(2)
    q = torch.randn(b, n, sq, d, generator=gen).to(torch.bfloat16).npu()
    k, v = (torch.randn(b, n, skv, d, generator=gen).to(torch.bfloat16).npu() for _ in range(2))
    ours = blitz_acl.blitz_sparse_attention(q, k, v, input_layout="BNSD", num_heads=n, sparse_mode=mode,
                                            pre_tokens=pre, next_tokens=nxt, device="npu")
    side = COMPRESSED_MASK_SIDE
    mask = torch.triu(torch.ones(side, side, dtype=torch.bool), diagonal=1).npu()
    ref = torch_npu.npu_fusion_attention(q, k, v, head_num=n, input_layout="BNSD", scale=1.0 / d ** 0.5,
                                         pre_tockens=pre, next_tockens=nxt, atten_mask=mask,
                                         sparse_mode=mode)[0]
    assert torch.allclose(ours.float(), ref.float(), rtol=0.02, atol=0.02), \
        f"max |diff| {(ours.float() - ref.float()).abs().max().item()}"


def test_call_is_asynchronous_and_uses_the_current_stream():
    """The op is enqueued on the current stream: a second stream's work does not wait for it,
    and the result is complete after that stream synchronises."""
    import torch

    inputs, expected_out, _ = _expected("sabi_random", "float16")
    q, k, v, kwargs = to_npu(inputs, "float16")
    stream = torch.npu.Stream()
    with torch.npu.stream(stream):
        out = blitz_acl.blitz_sparse_attention(q, k, v, device="npu", **kwargs)[0]
    stream.synchronize()
    assert_rows_close(arrays.to_numpy(out.cpu()), expected_out, ATOL["float16"], "out")


def test_mismatched_devices_are_refused():
    import torch

    if torch.npu.device_count() < 2:
        pytest.skip("needs two NPUs")
    inputs, _, _ = _expected("dense", "float16")
    q, k, v, kwargs = to_npu(inputs, "float16")
    with pytest.raises(ValueError, match="one device|query's device"):
        blitz_acl.blitz_sparse_attention(q, k.to("npu:1"), v, device="npu", **kwargs)


def test_nz_format_is_refused():
    import torch_npu

    inputs, _, _ = _expected("dense", "float16")
    q, k, v, kwargs = to_npu(inputs, "float16")
    q_nz = torch_npu.npu_format_cast(q, 29)  # FRACTAL_NZ
    with pytest.raises(ValueError, match="storage format"):
        blitz_acl.blitz_sparse_attention(q_nz, k, v, device="npu", **kwargs)

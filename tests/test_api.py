"""The public API: every malformed argument raises a clear exception; outputs keep kind/dtype."""

import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from blitz_acl import arguments, blitz_sparse_attention
from blitz_acl import sabi as S
import bounds
import oracle
from blitz_acl.devices import status

B, N, NKV, SQ, SKV, D = 2, 4, 2, 200, 300, 32


def _qkv(dtype=np.float32, layout="BNSD"):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, N, SQ, D)).astype(dtype)
    k = rng.standard_normal((B, NKV, SKV, D)).astype(dtype)
    v = rng.standard_normal((B, NKV, SKV, D)).astype(dtype)
    if layout == "BSH":
        q, k, v = (x.transpose(0, 2, 1, 3).reshape(x.shape[0], x.shape[2], -1) for x in (q, k, v))
    return q, k, v


def _call(**changes):
    """blitz_sparse_attention on a valid base call with some arguments replaced."""
    q, k, v = _qkv()
    args = dict(query=q, key=k, value=v, device="reference")
    args.update(changes)
    return blitz_sparse_attention(args.pop("query"), args.pop("key"), args.pop("value"), **args)


def _bsh():
    return dict(zip(("query", "key", "value"), _qkv(layout="BSH")), input_layout="BSH")


def _mask(shape, dtype=np.bool_):
    return np.zeros(shape, dtype=dtype)


BAD_ARGUMENTS = [
    # (id, changes, exception, message pattern)
    ("query_list", dict(query=[[1.0]]), TypeError, "query must be a numpy array or a torch tensor, got a list"),
    ("query_float64", dict(query=_qkv(np.float64)[0]), TypeError, "query has dtype float64; expected one of float32"),
    ("key_dtype", dict(key=_qkv(np.float16)[1]), TypeError, "key has dtype float16; expected query's dtype float32"),
    ("value_dtype", dict(value=_qkv(ml_dtypes.bfloat16)[2]), TypeError, "value has dtype bfloat16"),
    ("layout_unknown", dict(input_layout="BNDS"), ValueError, "input_layout must be one of BNSD, BSND, BSH, BNSD_BSND, TND, got 'BNDS'"),
    ("layout_type", dict(input_layout=4), TypeError, "input_layout must be a string"),
    ("query_ndim", dict(query=np.zeros((B, SQ, N * D), np.float32)), ValueError, r"query has shape \(2, 200, 128\); input_layout='BNSD' expects 4-d"),
    ("key_value_shapes", dict(value=np.zeros((B, NKV, SKV + 1, D), np.float32)), ValueError, "key has shape .* but value has shape"),
    ("batch_mismatch", dict(key=np.zeros((1, NKV, SKV, D), np.float32), value=np.zeros((1, NKV, SKV, D), np.float32)), ValueError, "query has batch 2 but key has batch 1"),
    ("head_dim_mismatch", dict(key=np.zeros((B, NKV, SKV, 16), np.float32), value=np.zeros((B, NKV, SKV, 16), np.float32)), ValueError, "query has head_dim 32 but key has head_dim 16"),
    ("head_dim_zero", dict(query=np.zeros((B, N, SQ, 0), np.float32), key=np.zeros((B, NKV, SKV, 0), np.float32), value=np.zeros((B, NKV, SKV, 0), np.float32)), ValueError, "head_dim must be >= 1"),
    ("num_heads_mismatch", dict(num_heads=3), ValueError, "num_heads=3 but query of shape"),
    ("num_heads_zero", dict(num_heads=0), ValueError, r"num_heads must lie in \[1,"),
    ("num_heads_str", dict(num_heads="4"), TypeError, "num_heads must be an int, got '4'"),
    ("kv_heads_mismatch", dict(num_key_value_heads=1), ValueError, "num_key_value_heads=1 but key of shape"),
    ("kv_heads_negative", dict(num_key_value_heads=-1), ValueError, "num_key_value_heads must lie in"),
    ("heads_not_divisible", dict(key=np.zeros((B, 3, SKV, D), np.float32), value=np.zeros((B, 3, SKV, D), np.float32)), ValueError, "num_heads=4 is not a multiple of num_key_value_heads=3"),
    ("bsh_needs_num_heads", _bsh(), ValueError, "num_heads is required for input_layout='BSH'"),
    ("bsh_hidden", dict(_bsh(), num_heads=3), ValueError, "query hidden size 128 is not a multiple of its 3 heads"),
    ("bsh_kv_hidden", dict(_bsh(), num_heads=4), ValueError, "key has hidden size 64, expected num_key_value_heads \\(4\\) x head_dim \\(32\\) = 128; set num_key_value_heads=2"),
    ("scale_type", dict(scale_value="0.1"), TypeError, "scale_value must be a float"),
    ("scale_nan", dict(scale_value=float("nan")), ValueError, "scale_value must be finite"),
    ("lengths_count", dict(actual_seq_lengths=[]), ValueError, "actual_seq_lengths has 0 entries; expected 1 or at least B=2"),
    ("lengths_too_long", dict(actual_seq_lengths=[200, 201]), ValueError, r"actual_seq_lengths\[1\] = 201 is outside \[0, 200\]"),
    ("lengths_negative", dict(actual_seq_lengths=[-1]), ValueError, r"actual_seq_lengths\[0\] = -1"),
    ("lengths_float", dict(actual_seq_lengths=[100.0, 3]), TypeError, r"actual_seq_lengths\[0\] must be an int"),
    ("lengths_scalar", dict(actual_seq_lengths=100), TypeError, "actual_seq_lengths must be a list of ints"),
    ("lengths_2d", dict(actual_seq_lengths=np.zeros((2, 1), np.int64)), ValueError, "actual_seq_lengths must be 1-d"),
    ("kv_lengths_too_long", dict(actual_seq_lengths_kv=[301]), ValueError, r"actual_seq_lengths_kv\[0\] = 301 is outside \[0, 300\]"),
    ("mask_dtype", dict(atten_mask=_mask((SQ, SKV), np.float32)), TypeError, "atten_mask has dtype float32; expected one of bool, int8, uint8"),
    ("mask_kind", dict(atten_mask=[[0]]), TypeError, "atten_mask must be a numpy array or a torch tensor"),
    ("mask_shape", dict(atten_mask=_mask((SQ, SKV - 1))), ValueError, r"atten_mask has shape \(200, 299\); expected \[Sq', Skv'\]"),
    ("mask_batch", dict(atten_mask=_mask((3, SQ, SKV))), ValueError, "atten_mask has shape"),
    ("mask_head_dim", dict(atten_mask=_mask((1, N - 1, SQ, SKV))), ValueError, "atten_mask has shape .*1 or N"),
    ("mask_values", dict(atten_mask=np.full((SQ, SKV), 2, np.int8)), ValueError, r"atten_mask \(int8\) holds values outside \{0, 1\}"),
    ("mode1_needs_mask", dict(sparse_mode=1), ValueError, "sparse_mode=1 requires atten_mask"),
    ("mode2_full_mask", dict(sparse_mode=2, atten_mask=_mask((SQ, SKV))), ValueError, "sparse_mode=2 builds its mask from indices"),
    ("mode_range", dict(sparse_mode=5), ValueError, r"sparse_mode must be one of \(0, 1, 2, 3, 4\), got 5"),
    ("mode_torch_bsa", dict(sparse_mode=12), ValueError, "torch_bsa's way to select inner_precise=0; .* pass sparse_mode=2"),
    ("mode_bool", dict(sparse_mode=True), TypeError, "sparse_mode must be an int"),
    ("pre_tokens_float", dict(pre_tokens=1.5), TypeError, "pre_tokens must be an int"),
    ("next_tokens_huge", dict(next_tokens=2 ** 63), ValueError, "next_tokens must lie in"),
    ("block_shape_scalar", dict(block_shape=128), TypeError, "block_shape must be a pair"),
    ("block_shape_zero", dict(block_shape=(0, 512)), ValueError, "block_shape must hold two positive ints"),
    ("cpu_block_q", dict(block_shape=(100, 512), device="cpu"), ValueError, r"block_shape \(100, 512\) is not supported by the CPU device: expected bq 64, 128, 256, 512 or 1024, and bkv a multiple of 64 up to 1024"),
    ("cpu_block_kv_step", dict(block_shape=(128, 500), device="cpu"), ValueError, "not supported by the CPU device"),
    ("cpu_block_kv_max", dict(block_shape=(128, 2048), device="cpu"), ValueError, "up to 1024"),
    ("sabi_range", dict(sabi=np.full((1, 1, 2, 1), 1, np.uint16)), ValueError, r"sabi\[b=0, h=0, row=0, col=0\] = 1: key block index out of range"),
    ("sabi_repeat", dict(sabi=np.array([[[[0, 0], [0, -1], [1, 2], [2, 1]]]], np.int32), block_shape=(64, 128)), ValueError, r"sabi\[b=0, h=0, row=0, col=1\] = 0: key block 0 appears twice"),
    ("sabi_rows", dict(sabi=np.zeros((1, 1, 3, 1), np.uint16)), ValueError, "3 query-block rows; expected"),
    ("sabi_heads", dict(sabi=np.zeros((1, 2, 2, 1), np.uint16)), ValueError, "head dim 2 does not broadcast"),
    ("sabi_float", dict(sabi=np.zeros((1, 1, 2, 1), np.float32)), TypeError, "sabi has dtype float32"),
    ("sabi_negative", dict(sabi=np.full((1, 1, 2, 1), -3, np.int64)), ValueError, "= -3: expected -1"),
    ("device_unknown", dict(device="gpu"), ValueError, "device must be None or one of 'reference', 'cpu', 'npu', 'npu_sim', got 'gpu'"),
    ("device_npu_without_npu", dict(device="npu"), ValueError, "device='npu' needs torch_npu tensors on an NPU"),
    ("return_lse_type", dict(return_lse="yes"), TypeError, "return_lse must be True or False"),
    ("validate_type", dict(validate=1), TypeError, "validate must be True or False"),
]


@pytest.mark.parametrize("changes, error, message", [c[1:] for c in BAD_ARGUMENTS], ids=[c[0] for c in BAD_ARGUMENTS])
def test_bad_argument_raises(changes, error, message):
    with pytest.raises(error, match=message):
        _call(**changes)


def test_mixed_kinds_and_devices():
    torch = pytest.importorskip("torch")
    q, k, v = _qkv()
    with pytest.raises(TypeError, match="query, key and value must be of one kind, got query: numpy, key: torch"):
        blitz_sparse_attention(q, torch.from_numpy(k), v, device="reference")
    tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
    with pytest.raises(ValueError, match="query, key and value must be on one device, got query on cpu, key on meta"):
        blitz_sparse_attention(tq, tk.to("meta"), tv, device="reference")
    meta = [x.to("meta") for x in (tq, tk, tv)]
    with pytest.raises(ValueError, match="device='cpu' needs host inputs"):
        blitz_sparse_attention(*meta, device="cpu")
    with pytest.raises(ValueError, match="device='npu' needs torch_npu tensors"):
        blitz_sparse_attention(tq, tk, tv, device="npu")
    with pytest.raises(ValueError, match="atten_mask is on meta but query is on cpu"):
        blitz_sparse_attention(tq, tk, tv, atten_mask=torch.zeros(SQ, SKV, dtype=torch.bool, device="meta"),
                               device="reference")


def test_npu_message_says_torch_npu_is_missing():
    try:
        import torch_npu  # noqa: F401
        pytest.skip("torch_npu is installed here")
    except ImportError:
        pass
    with pytest.raises(ValueError, match=r"torch_npu is not installed on this machine.*use device='cpu'"):
        _call(device="npu")


def test_default_device_is_cpu_off_npu():
    q, k, v = _qkv()
    assert arguments.normalize(q, k, v).device == "cpu"
    call = arguments.normalize(q, k, v, device="reference", actual_seq_lengths=[7], scale_value=2)
    assert call.actual_seq_lengths == (7, 7) and call.scale_value == 2.0
    assert (call.num_heads, call.num_key_value_heads, call.head_dim) == (N, NKV, D)


def _rounded_reference(dtype, **kwargs):
    q, k, v = _qkv(dtype)
    out, lse = oracle.attention(q, k, v, return_lse=True, **kwargs)
    return out.astype(dtype), lse.astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, ml_dtypes.bfloat16], ids=["float32", "float16", "bfloat16"])
def test_numpy_in_numpy_out(dtype):
    q, k, v = _qkv(dtype)
    sabi = S.random_pattern(B, N, SQ, SKV, 0.5, block_shape=(64, 128), shuffle=True)
    out, lse = blitz_sparse_attention(q, k, v, sabi, block_shape=(64, 128), return_lse=True, device="reference")
    assert isinstance(out, np.ndarray) and out.dtype == np.dtype(dtype) and out.shape == q.shape
    assert isinstance(lse, np.ndarray) and lse.dtype == np.float32 and lse.shape == (B, N, SQ)
    exp_out, exp_lse = _rounded_reference(dtype, sabi=sabi, block_shape=(64, 128))
    np.testing.assert_array_equal(out, exp_out)
    np.testing.assert_array_equal(lse, exp_lse)
    single = blitz_sparse_attention(q, k, v, sabi, block_shape=(64, 128), device="reference")
    assert isinstance(single, np.ndarray)


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_torch_in_torch_out(dtype):
    torch = pytest.importorskip("torch")
    np_dtype = {"float32": np.float32, "float16": np.float16, "bfloat16": ml_dtypes.bfloat16}[dtype]
    q, k, v = _qkv(np_dtype)
    tq, tk, tv = (torch.from_numpy(x.astype(np.float32)).to(getattr(torch, dtype)) for x in (q, k, v))
    sabi = torch.tensor(S.causal_pattern(1, 1, SQ, SKV, block_shape=(64, 128)).astype(np.int32))
    sabi[sabi == S.PAD] = -1
    out, lse = blitz_sparse_attention(tq, tk, tv, sabi, block_shape=(64, 128), sparse_mode=3,
                                      return_lse=True, device="reference")
    assert isinstance(out, torch.Tensor) and out.dtype == getattr(torch, dtype) and out.shape == tq.shape
    assert lse.dtype == torch.float32 and lse.shape == (B, N, SQ)
    exp_out, exp_lse = _rounded_reference(np_dtype, sabi=sabi.numpy(), block_shape=(64, 128), sparse_mode=3)
    np.testing.assert_array_equal(out.float().numpy(), exp_out.astype(np.float32))
    np.testing.assert_array_equal(lse.numpy(), exp_lse)


def _within_oracle(out, q, k, v, out_layout="BNSD", **kwargs):
    """device="cpu"'s answer within tests/bounds.py's bound of the independent oracle."""
    bounds.assert_within(out, bounds.truth(q, k, v, "float32", **kwargs), out_layout)


def test_validate_false_skips_entry_checks():
    """With validate=False an out-of-range or repeated entry is not a Python error: the CPU
    library still refuses it (naming the entry), and the reference ignores out-of-range blocks
    and counts a repeat once (the kernels' bounds guard), giving the oracle's answer for the
    sabi without them."""
    q, k, v = _qkv()
    good = np.array([[[[0, -1], [1, -1], [2, -1], [-1, -1]]]], dtype=np.int32)  # R = 4, C = 3
    bad = np.array([[[[0, 9], [1, 1], [2, 3], [-1, 70]]]], dtype=np.int32)
    kw = dict(block_shape=(64, 128))
    with pytest.raises(ValueError, match=r"sabi\[b=0, h=0, row=0, col=1\] = 9"):
        blitz_sparse_attention(q, k, v, bad, device="cpu", **kw)
    with pytest.raises(status.AclInvalidArgumentError, match=r"sabi\[b=0, h=0, row=0, col=1\] = 9"):
        blitz_sparse_attention(q, k, v, bad, validate=False, device="cpu", **kw)
    got = blitz_sparse_attention(q, k, v, bad, validate=False, device="reference", **kw)
    _within_oracle(got, q, k, v, sabi=good, **kw)


def test_compressed_mask_accepted_and_ignored_in_causal_modes():
    """torch_bsa callers pass a 2048 x 2048 causal mask with sparse modes 2-4; it is ignored:
    the answer is mode 2's without a mask."""
    q, k, v = _qkv()
    with_mask = _call(sparse_mode=2, atten_mask=np.triu(np.ones((2048, 2048), np.bool_), 1),
                      device="cpu")
    _within_oracle(with_mask, q, k, v, sparse_mode=2)


def test_lists_arrays_and_tensors_as_lengths():
    q, k, v = _qkv()
    expected = _call(actual_seq_lengths=[150, 20], actual_seq_lengths_kv=[300], device="cpu")
    _within_oracle(expected, q, k, v, actual_seq_lengths=[150, 20])
    np.testing.assert_array_equal(_call(actual_seq_lengths=np.array([150, 20]), actual_seq_lengths_kv=(300,),
                                        device="cpu"), expected)
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(_call(actual_seq_lengths=torch.tensor([150, 20]), device="cpu"), expected)
    # More than B entries: the first B are used, the rest ignored (the original's rule).
    np.testing.assert_array_equal(_call(actual_seq_lengths=[150, 20, 9999], actual_seq_lengths_kv=[300, 300, -5],
                                        device="cpu"), expected)


def test_layouts_agree_with_the_oracle():
    q, k, v = _qkv()
    sabi = S.random_pattern(B, N, SQ, SKV, 0.5, block_shape=(64, 128), seed=3)
    kw = dict(block_shape=(64, 128), device="cpu")
    truth = bounds.truth(q, k, v, "float32", sabi=sabi, block_shape=(64, 128))
    bounds.assert_within(blitz_sparse_attention(q, k, v, sabi, **kw), truth, "BNSD", what="BNSD")
    bsnd = [np.ascontiguousarray(x.transpose(0, 2, 1, 3)) for x in (q, k, v)]
    out = blitz_sparse_attention(*bsnd, sabi, input_layout="BSND", **kw)
    bounds.assert_within(out, truth, "BSND", what="BSND")
    bsh = [x.reshape(x.shape[0], x.shape[1], -1) for x in bsnd]
    out = blitz_sparse_attention(*bsh, sabi, input_layout="BSH", num_heads=N, num_key_value_heads=NKV, **kw)
    bounds.assert_within(out, truth, "BSH", what="BSH")
    out = blitz_sparse_attention(q, k, v, sabi, input_layout="BNSD_BSND", **kw)
    bounds.assert_within(out, truth, "BSND", what="BNSD_BSND")


def test_import_without_torch():
    """torch is optional: the package imports and runs the reference with torch unavailable."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, blitz_acl\n"
        "q = np.ones((1, 1, 4, 8), np.float32)\n"
        "out = blitz_acl.blitz_sparse_attention(q, q, q, [[[[0]]]], device='reference')\n"
        "assert out.shape == (1, 1, 4, 8) and np.allclose(out, 1.0)\n"
        "assert blitz_acl.sabi.frame_pattern(1, 1, 8192, 8192, 0.5).shape == (1, 1, 64, 16)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_repo_root())


def _repo_root():
    import pathlib

    import blitz_acl

    return str(pathlib.Path(blitz_acl.__file__).resolve().parent.parent)


def test_the_checker_takes_exactly_the_public_signature():
    """blitz_sparse_attention hands every parameter to arguments.normalize by name: the two
    signatures (names, order, kinds, defaults) must be the same, or a parameter would be lost."""
    import inspect

    from blitz_acl import api

    public = inspect.signature(inspect.unwrap(api.blitz_sparse_attention)).parameters
    checker = inspect.signature(arguments.normalize).parameters
    assert [(p.name, p.kind, p.default) for p in public.values()] == \
        [(p.name, p.kind, p.default) for p in checker.values()]

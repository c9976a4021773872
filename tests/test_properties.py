"""Property-based tests (hypothesis) of the CPU device against the independent float64 oracle.

Random problems: shapes with tails, tiny and odd sizes, D in {64, 80, 96, 128, 192, 256},
every layout, GQA, block shapes, sabi with -1 holes, duplicates and out-of-range entries,
token masks (sparse modes and explicit masks) and per-batch lengths. A valid problem must
match the oracle (tests/oracle.py); an invalid one must raise the expected exception, from Python's checks
and, with validate=False, from the library's own (they must agree on the first bad entry).

Example counts are bounded (BLITZ_ACL_PROPERTY_EXAMPLES, default 150 per property) so the file
runs in well under a minute (--hypothesis-show-statistics shows what was drawn); hypothesis prints the failing example to reproduce it.
"""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import blitz_acl
import bounds
from blitz_acl import arrays
from blitz_acl import sabi as S
from blitz_acl.devices import status

EXAMPLES = int(os.environ.get("BLITZ_ACL_PROPERTY_EXAMPLES", "150"))
HEAD_DIMS = (64, 80, 96, 128, 192, 256)
BLOCK_SHAPES = ((64, 64), (64, 128), (128, 192), (128, 512), (256, 1024))
LAYOUTS = ("BNSD", "BSND", "BSH", "BNSD_BSND")
DTYPES = ("float32", "float16", "bfloat16")
# Sizes: tiny, odd, and around the tile edges of every block shape above.
SEQ_SIZES = st.one_of(st.integers(1, 9), st.integers(10, 700),
                      st.sampled_from([63, 64, 65, 127, 128, 129, 191, 193, 511, 513]))
PROPERTY_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, print_blob=True,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _layout(x: np.ndarray, layout: str) -> np.ndarray:
    """BNSD data stored in `layout`."""
    if layout in ("BNSD", "BNSD_BSND"):
        return x
    bsnd = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    return bsnd.reshape(bsnd.shape[0], bsnd.shape[1], -1) if layout == "BSH" else bsnd


@st.composite
def problems(draw):
    """(query, key, value, kwargs, sabi_defect) for one random call; sabi_defect is None for a
    valid sabi, else "out_of_range" or "repeat"."""
    dtype = draw(st.sampled_from(DTYPES))
    batch = draw(st.integers(1, 2))
    kv_heads = draw(st.integers(1, 2))
    heads = kv_heads * draw(st.integers(1, 2))
    head_dim = draw(st.sampled_from(HEAD_DIMS))
    seq_q, seq_kv = draw(SEQ_SIZES), draw(SEQ_SIZES)
    layout = draw(st.sampled_from(LAYOUTS))
    bq, bkv = draw(st.sampled_from(BLOCK_SHAPES))
    rows, cols = S.block_counts(seq_q, seq_kv, (bq, bkv))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)

    x = [rng.standard_normal((batch, n, s, head_dim), dtype=np.float32)
         for n, s in ((heads, seq_q), (kv_heads, seq_kv), (kv_heads, seq_kv))]
    q, k, v = (_layout(t, layout).astype(arrays.numpy_dtype(dtype)) for t in x)
    kwargs = dict(input_layout=layout, num_key_value_heads=kv_heads, block_shape=(bq, bkv),
                  return_lse=draw(st.booleans()))
    if layout == "BSH":
        kwargs["num_heads"] = heads

    defect = None
    if draw(st.booleans()):  # sabi: rows of valid indices in any order, -1 anywhere
        sb, sn = draw(st.sampled_from([1, batch])), draw(st.sampled_from([1, heads]))
        width = draw(st.integers(1, cols))
        sabi = np.full((sb, sn, rows, width), -1, np.int64)
        for idx in np.ndindex(sb, sn, rows):
            chosen = rng.permutation(cols)[:rng.integers(0, width + 1)]
            slots = rng.permutation(width)[:len(chosen)]
            sabi[idx][slots] = chosen
        sabi_dtype = draw(st.sampled_from(["int16", "int32", "int64"]))
        largest = min(S.MAX_INDEX, int(np.iinfo(sabi_dtype).max))
        defect = draw(st.sampled_from([None, None, None, "out_of_range", "repeat"]))
        at = tuple(int(rng.integers(0, d)) for d in sabi.shape)
        if defect == "out_of_range":
            sabi[at] = draw(st.sampled_from([cols, largest, int(rng.integers(cols, largest + 1))]))
        elif defect == "repeat":
            if width < 2:
                defect = None
            else:
                sabi[at[:3]][0] = sabi[at[:3]][1] = int(rng.integers(0, cols))
        kwargs["sabi"] = sabi.astype(sabi_dtype)

    mode = draw(st.sampled_from([0, 0, 1, 2, 3, 4]))
    kwargs["sparse_mode"] = mode
    if mode == 4:
        kwargs["pre_tokens"] = draw(st.integers(-50, 800))
        kwargs["next_tokens"] = draw(st.integers(-50, 800))
    if mode == 1 or (mode == 0 and draw(st.booleans())):
        lead = draw(st.sampled_from([(), (1,), (batch,), (1, 1), (batch, 1)]))
        mask = rng.random(lead + (seq_q, seq_kv)) < draw(st.floats(0.0, 1.0))
        kwargs["atten_mask"] = mask.astype(draw(st.sampled_from(["bool", "int8", "uint8"])))
    if draw(st.booleans()):
        n = draw(st.sampled_from([1, batch]))
        kwargs["actual_seq_lengths"] = [draw(st.integers(0, seq_q)) for _ in range(n)]
    if draw(st.booleans()):
        n = draw(st.sampled_from([1, batch]))
        kwargs["actual_seq_lengths_kv"] = [draw(st.integers(0, seq_kv)) for _ in range(n)]
    return q, k, v, kwargs, defect


def _check_against_oracle(q, k, v, kwargs, dtype, **call):
    """The CPU device's answer within tests/bounds.py's bound of the oracle."""
    result = blitz_acl.blitz_sparse_attention(q, k, v, device="cpu", **call, **kwargs)
    out, lse = result if kwargs["return_lse"] else (result, None)
    layout = kwargs["input_layout"]
    truth = bounds.truth(q, k, v, dtype, **kwargs)
    bounds.assert_within(arrays.to_numpy(out), truth, "BSND" if layout == "BNSD_BSND" else layout,
                         None if lse is None else arrays.to_numpy(lse))


@PROPERTY_SETTINGS
@given(problems())
def test_random_problems_match_the_oracle_or_raise(problem):
    q, k, v, kwargs, defect = problem
    dtype = arrays.dtype_name(q)
    event(f"sabi: {'none' if 'sabi' not in kwargs else defect or 'valid'}")
    event(f"sparse_mode {kwargs['sparse_mode']}{' + atten_mask' if 'atten_mask' in kwargs else ''}")
    if defect is None:
        _check_against_oracle(q, k, v, kwargs, dtype)
        return
    fragment = "out of range" if defect == "out_of_range" else "twice"
    with pytest.raises(ValueError, match=fragment) as python_error:
        blitz_acl.blitz_sparse_attention(q, k, v, device="cpu", **kwargs)
    with pytest.raises(status.AclInvalidArgumentError, match=fragment) as library_error:
        blitz_acl.blitz_sparse_attention(q, k, v, device="cpu", validate=False, **kwargs)
    # Both name the same first bad entry in the same words (the spec's sabi refusals).
    assert str(python_error.value) in library_error.value.message


@st.composite
def sabi_arrays(draw):
    """A sabi of any integer dtype and shape near the expected one, values anywhere."""
    rows, cols = draw(st.integers(0, 4)), draw(st.integers(1, 5))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), rows + draw(st.sampled_from([0, 0, 0, 1])),
             draw(st.integers(0, cols + 1)))
    dtype = draw(st.sampled_from(["uint16", "int16", "int32", "int64"]))
    info = np.iinfo(dtype)
    values = st.one_of(st.integers(-1, cols + 1), st.integers(int(info.min), int(info.max)))
    flat = draw(st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
    return np.array(flat, dtype=np.int64).astype(dtype).reshape(shape), rows, cols  # -1 wraps in uint16


@PROPERTY_SETTINGS
@given(sabi_arrays(), st.sampled_from([(64, 64), (128, 512)]))
def test_sabi_checks_agree_between_python_and_the_library(case, block_shape):
    """Python's validate=True and the library (reached with validate=False) accept and reject
    the same sabi; anything else a caller passes is a TypeError/ValueError, never a crash."""
    sabi, rows, cols = case
    bq, bkv = block_shape
    seq_q, seq_kv = max(rows * bq - 1, 1), cols * bkv - 3
    rng = np.random.default_rng(rows * 100 + cols)
    # Random values: with constant inputs every selection gives the same output, so an accepted
    # call's answer is checked against the oracle.
    q = rng.standard_normal((2, 2, seq_q, 64), dtype=np.float32)
    k = rng.standard_normal((2, 2, seq_kv, 64), dtype=np.float32)
    v = rng.standard_normal((2, 2, seq_kv, 64), dtype=np.float32)
    call = dict(block_shape=block_shape, device="cpu")
    outs = []
    try:
        outs.append(blitz_acl.blitz_sparse_attention(q, k, v, sabi, **call))
        python_ok = True
    except (TypeError, ValueError) as e:
        python_ok = False
        python_error = e
    try:
        outs.append(blitz_acl.blitz_sparse_attention(q, k, v, sabi, validate=False, **call))
        unchecked_ok = True
    except (TypeError, ValueError) as e:
        unchecked_ok = False
        unchecked_error = e
    assert python_ok == unchecked_ok, (python_error if not python_ok else unchecked_error)
    if outs:
        truth = bounds.truth(q, k, v, "float32", sabi=sabi, block_shape=block_shape)
        for out in outs:
            bounds.assert_within(out, truth, "BNSD")

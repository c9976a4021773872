"""The sabi format: validation, normalisation, conversions, statistics, pattern builders."""

import math

import numpy as np
import pytest

from blitz_acl import sabi as S

PAD = S.PAD


def _loop_token_mask(s, seq_q, seq_kv, block_shape):
    """Token mask [Bs, Ns, Sq, Skv] written as plain loops, independent of sabi.py."""
    bq, bkv = block_shape
    out = np.zeros(s.shape[:2] + (seq_q, seq_kv), dtype=bool)
    for b, h, r, w in np.ndindex(*s.shape):
        c = int(s[b, h, r, w])
        if c != PAD:
            out[b, h, r * bq:(r + 1) * bq, c * bkv:(c + 1) * bkv] = True
    return out


# ------------------------------------------------------------------------------ validation


def test_validate_returns_contiguous_uint16_4d():
    s = np.array([[[0, -1], [1, 0], [2, -1]]], dtype=np.int32)  # 3-d: Bs = 1
    out = S.validate(s, 2, 1, 384, 1536)
    assert out.dtype == np.uint16 and out.shape == (1, 1, 3, 2) and out.flags.c_contiguous
    assert out[0, 0, 0, 1] == PAD and out[0, 0, 1].tolist() == [1, 0]


def test_out_of_range_names_first_bad_entry():
    s = np.full((2, 2, 3, 3), PAD, dtype=np.uint16)
    s[1, 0, 2, 1] = 3  # C = 3
    s[1, 1, 0, 0] = 7  # later in row-major order
    with pytest.raises(ValueError, match=r"sabi\[b=1, h=0, row=2, col=1\] = 3: key block index out of range"):
        S.validate(s, 2, 2, 384, 1536)


def test_repeated_index_names_the_second_occurrence():
    s = np.array([[[[0, 2, -1], [1, -1, 1]]]], dtype=np.int16)
    with pytest.raises(ValueError, match=r"sabi\[b=0, h=0, row=1, col=2\] = 1: key block 1 appears twice"):
        S.validate(s, 1, 1, 256, 1536)


def test_repeated_pad_is_fine():
    s = np.array([[[[-1, 2, -1, -1]]]], dtype=np.int64)
    S.validate(s, 1, 1, 100, 2048)


@pytest.mark.parametrize("shape, message", [
    ((3, 3), "must be 4-d"),
    ((1, 1, 1, 3, 3), "must be 4-d"),
    ((3, 1, 3, 3), "batch dim 3 does not broadcast"),
    ((1, 3, 3, 3), "head dim 3 does not broadcast"),
    ((1, 1, 4, 3), "4 query-block rows"),
    ((1, 1, 3, 4), "width 4 > C=3"),
])
def test_wrong_shape(shape, message):
    with pytest.raises(ValueError, match=message):
        S.validate(np.zeros(shape, dtype=np.uint16), 2, 2, 384, 1536)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.bool_, np.uint8, np.int8, np.uint32])
def test_wrong_dtype(dtype):
    with pytest.raises(TypeError, match="expected uint16"):
        S.validate(np.zeros((1, 1, 3, 3), dtype=dtype), 1, 1, 384, 1536)


def test_float_list_rejected():
    with pytest.raises(TypeError, match="dtype float64"):
        S.normalize([[[0.0, 1.0]]])


@pytest.mark.parametrize("value", [-2, -65536, 65535, 70000])
def test_other_negatives_and_too_large_rejected(value):
    s = np.zeros((1, 1, 2, 2), dtype=np.int32)
    s[0, 0, 1, 1] = value
    with pytest.raises(ValueError, match=rf"sabi\[b=0, h=0, row=1, col=1\] = {value}: expected -1"):
        S.normalize(s)


def test_check_entries_false_checks_shape_only():
    s = np.array([[[[5, 5]]]], dtype=np.uint16)
    assert S.validate(s, 1, 1, 100, 1024, check_entries=False).tolist() == [[[[5, 5]]]]
    with pytest.raises(ValueError, match="query-block rows"):
        S.validate(s, 1, 1, 200, 1024, check_entries=False)


def test_torch_inputs_normalised():
    torch = pytest.importorskip("torch")
    t = torch.tensor([[[0, -1], [-1, 1]]], dtype=torch.int16)
    assert S.normalize(t).tolist() == [[[[0, PAD], [PAD, 1]]]]
    u = torch.tensor([[[[0, 65535]]]], dtype=torch.int32).to(torch.uint16)
    assert S.normalize(u).tolist() == [[[[0, PAD]]]]


def test_block_shape_checks():
    with pytest.raises(TypeError, match="pair"):
        S.block_counts(10, 10, 128)
    with pytest.raises(ValueError, match="positive"):
        S.block_counts(10, 10, (0, 512))
    with pytest.raises(TypeError, match="two ints"):
        S.block_counts(10, 10, (128.0, 512))
    assert S.block_counts(129, 1025, (128, 512)) == (2, 3)
    assert S.sabi_shape(2, 3, 129, 1025) == (2, 3, 2, 3)


# ----------------------------------------------------------------------------- conversions


def _random_sabi(seed=0, shape=(2, 3), seq_q=300, seq_kv=1100, block_shape=(64, 128)):
    return S.random_pattern(*shape, seq_q, seq_kv, 0.6, block_shape=block_shape, seed=seed, shuffle=True)


def test_block_mask_round_trip():
    rng = np.random.default_rng(0)
    mask = rng.random((2, 3, 5, 9)) < 0.4
    mask[0, 0, 1] = False  # an empty row
    s = S.from_block_mask(mask)
    assert s.dtype == np.uint16
    assert (np.diff(s.astype(np.int64), axis=-1)[s[..., 1:] != PAD] > 0).all()  # sorted
    np.testing.assert_array_equal(S.to_block_mask(s, 5 * 64, 9 * 128, (64, 128)), mask)


def test_sabi_to_block_mask_and_back_is_compact():
    s = _random_sabi()
    mask = S.to_block_mask(s, 300, 1100, (64, 128))
    back = S.from_block_mask(mask, width=s.shape[-1])
    np.testing.assert_array_equal(back, S.compact(s))


def test_from_block_mask_width():
    mask = np.zeros((1, 1, 2, 4), dtype=bool)
    mask[0, 0, 0, [1, 3]] = True
    assert S.from_block_mask(mask).tolist() == [[[[1, 3], [PAD, PAD]]]]
    assert S.from_block_mask(mask, width=4).shape[-1] == 4
    with pytest.raises(ValueError, match="width=1"):
        S.from_block_mask(mask, width=1)


def test_token_mask_matches_loops_with_partial_tiles():
    s = _random_sabi(seed=3)
    expected = _loop_token_mask(s, 300, 1100, (64, 128))
    np.testing.assert_array_equal(S.to_token_mask(s, 300, 1100, (64, 128)), expected)


def test_token_mask_broadcast_and_size_guard():
    s = _random_sabi(shape=(1, 1))
    full = S.to_token_mask(s, 300, 1100, (64, 128), batch=2, heads=3)
    assert full.shape == (2, 3, 300, 1100) and (full == full[:1, :1]).all()
    with pytest.raises(ValueError, match="max_elements"):
        S.to_token_mask(s, 300, 1100, (64, 128), max_elements=1000)


def test_expand_and_compact():
    s = np.array([[[[3, -1, 0]], [[-1, -1, 2]]]], dtype=np.int32)  # [1, 2, 1, 3]
    e = S.expand(s, 2, 2)
    assert e.shape == (2, 2, 1, 3) and (e[1] == e[0]).all()
    assert S.compact(s).tolist() == [[[[0, 3, PAD]], [[2, PAD, PAD]]]]
    with pytest.raises(ValueError, match="does not broadcast"):
        S.expand(s, 2, 3)


@pytest.mark.parametrize("block_shape, seq_q, seq_kv", [((128, 512), 300, 1100), ((64, 128), 1000, 700)])
def test_flex_block_mask_round_trip(block_shape, seq_q, seq_kv):
    pytest.importorskip("torch")
    s = _random_sabi(seed=5, seq_q=seq_q, seq_kv=seq_kv, block_shape=block_shape)
    bm = S.to_flex_block_mask(s, seq_q, seq_kv, block_shape)
    assert tuple(bm.BLOCK_SIZE) == block_shape and tuple(bm.seq_lengths) == (seq_q, seq_kv)
    # FlexAttention's own densification agrees with ours
    np.testing.assert_array_equal(bm.to_dense().numpy().astype(bool), S.to_block_mask(s, seq_q, seq_kv, block_shape))
    back = S.from_flex_block_mask(bm, block_shape=block_shape, width=s.shape[-1])
    np.testing.assert_array_equal(back, S.compact(s))


def test_from_flex_block_mask_of_create_block_mask():
    """A BlockMask FlexAttention builds itself (causal, full + partial blocks) reads back as the
    causal block pattern, and a mismatched block_shape is refused."""
    torch = pytest.importorskip("torch")
    from torch.nn.attention.flex_attention import create_block_mask

    def causal(b, h, q, kv):
        return kv <= q

    seq = 1000
    bm = create_block_mask(causal, None, None, seq, seq, device="cpu", BLOCK_SIZE=(128, 512))
    back = S.from_flex_block_mask(bm)
    expected = S.causal_pattern(1, 1, seq, seq, top_left=True)
    np.testing.assert_array_equal(S.to_block_mask(back, seq, seq), S.to_block_mask(expected, seq, seq))
    with pytest.raises(ValueError, match="BLOCK_SIZE"):
        S.from_flex_block_mask(bm, block_shape=(128, 128))
    del torch


def test_flex_attention_with_converted_mask_matches_reference():
    """Semantics, not just bookkeeping: FlexAttention over to_flex_block_mask equals the
    reference over the same sabi (rows with no block: zeros in both)."""
    torch = pytest.importorskip("torch")
    from torch.nn.attention.flex_attention import flex_attention

    import oracle

    seq_q, seq_kv, bs = 300, 1100, (64, 128)
    s = _random_sabi(seed=7, shape=(1, 2), seq_q=seq_q, seq_kv=seq_kv, block_shape=bs)
    s[0, 0, 1] = PAD
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((1, 2, n, 32)) for n in (seq_q, seq_kv, seq_kv))
    expected = oracle.attention(q.astype(np.float32), k.astype(np.float32), v.astype(np.float32),
                                   s, block_shape=bs)
    bm = S.to_flex_block_mask(s, seq_q, seq_kv, bs)
    with pytest.warns(UserWarning):  # eager FlexAttention warns that it is unfused
        out = flex_attention(*(torch.from_numpy(x.astype(np.float32)).double() for x in (q, k, v)),
                             block_mask=bm)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------ statistics


def test_statistics():
    s = np.array([[[[0, -1], [1, 2], [-1, -1]]]], dtype=np.int32)  # Sq = 300, Skv = 1100, C = 3
    assert S.row_counts(s).tolist() == [[[1, 2, 0]]]
    assert S.selected_tiles(s) == 3
    assert S.selected_tiles(s, batch=2, heads=4) == 24
    assert S.density(s, 300, 1100) == pytest.approx(3 / 9)
    # token density by counting the loop mask
    tokens = _loop_token_mask(S.normalize(s), 300, 1100, (128, 512))
    assert S.token_density(s, 300, 1100) == pytest.approx(tokens.mean())
    st = S.stats(s, 300, 1100)
    assert (st.selected_tiles, st.total_tiles, st.min_row, st.max_row, st.empty_rows) == (3, 9, 0, 2, 1)
    assert st.mean_row == pytest.approx(1.0)


# ------------------------------------------------------------------------- pattern builders


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_random_pattern_hits_target_sparsity(sparsity):
    cols = 20
    s = S.random_pattern(2, 3, 40 * 64, cols * 128, sparsity, block_shape=(64, 128), seed=9)
    kept = max(1, min(round(cols * (1 - sparsity)), cols))
    assert (S.row_counts(s) == kept).all()
    assert S.density(s, 40 * 64, cols * 128, (64, 128)) == pytest.approx(kept / cols)
    S.validate(s, 2, 3, 40 * 64, cols * 128, (64, 128))  # distinct, in range


def test_random_pattern_seeding_and_shuffle():
    a = S.random_pattern(1, 2, 1000, 5000, 0.5, seed=1)
    assert (a == S.random_pattern(1, 2, 1000, 5000, 0.5, seed=1)).all()
    assert not (a == S.random_pattern(1, 2, 1000, 5000, 0.5, seed=2)).all()
    sh = S.random_pattern(1, 2, 1000, 5000, 0.5, seed=1, shuffle=True)
    assert (S.compact(sh) == a).all()  # same blocks, PADs moved
    assert (sh[..., 0] == PAD).any()
    assert S.random_pattern(2, 5, 1000, 5000, 0.5, shared_heads=True).shape[1] == 1


def _frame_rows_expected(seq, sparsity, seed, block_shape=(128, 512)):
    """The frame rule of CANN_FACTS.md restated with torch's generator, row by row."""
    import torch

    rows, cols = math.ceil(seq / block_shape[0]), math.ceil(seq / block_shape[1])
    forced = set(range(min(8, cols))) | {cols - 1}
    kept = max(max(1, min(round(cols * (1 - sparsity)), cols)), len(forced))
    cands = [c for c in range(cols) if c not in forced]
    g = torch.Generator().manual_seed(seed)
    expected = []
    for r in range(rows):
        if r < 29 or r == rows - 1:
            expected.append(list(range(cols)))
        elif kept - len(forced) <= 0:
            expected.append(sorted(forced))
        else:
            perm = torch.randperm(len(cands), generator=g).tolist()
            expected.append(sorted(forced | {cands[i] for i in perm[:kept - len(forced)]}))
    return expected


@pytest.mark.parametrize("seq, sparsity", [(20000, 0.5), (60000, 0.9), (20000, 0.9), (8000, 0.0), (5000, 0.7)])
def test_frame_pattern_reproduces_original(seq, sparsity):
    pytest.importorskip("torch")
    s = S.frame_pattern(2, 2, seq, seq, sparsity, rng="torch")
    cols = math.ceil(seq / 512)
    assert s.shape == (2, 2, math.ceil(seq / 128), cols)
    for b in range(2):
        for h in range(2):
            expected = _frame_rows_expected(seq, sparsity, 1234 + b + h)
            got = [[int(c) for c in row if c != PAD] for row in s[b, h]]
            assert got == expected, f"(b={b}, h={h}) differs"
            assert all((row[len(e):] == PAD).all() for row, e in zip(s[b, h], expected))
    # seeds are 1234 + b + h, so (b, h) = (0, 1) and (1, 0) share a pattern, as in the original
    assert (s[0, 1] == s[1, 0]).all()
    kept = max(round(cols * (1 - sparsity)), 9)
    if 9 < kept < cols:  # random extras exist: different seeds give different rows
        assert not (s[0, 0] == s[0, 1]).all()


def test_frame_pattern_rule_with_numpy_rng():
    seq, sparsity = 30000, 0.6
    s = S.frame_pattern(1, 1, seq, seq, sparsity, rng="numpy")[0, 0]
    rows, cols = s.shape
    counts = (s != PAD).sum(axis=-1)
    assert (counts[:29] == cols).all() and counts[-1] == cols
    kept = round(cols * (1 - sparsity))
    assert (counts[29:-1] == kept).all()
    middle = s[29:-1]
    assert (middle[:, :8] == np.arange(8)).all()  # first 8 blocks kept, sorted to the front
    assert ((middle == cols - 1).any(axis=-1)).all()  # last block kept
    S.validate(s[None, None], 1, 1, seq, seq)


def test_frame_pattern_small_and_shared():
    s = S.frame_pattern(1, 3, 5000, 4000, 0.9, shared_heads=True, rng="numpy")
    assert s.shape == (1, 1, 40, 8)
    assert (s == np.arange(8)).all()  # C = 8 <= forced set: everything kept
    with pytest.raises(ValueError, match="sparsity"):
        S.frame_pattern(1, 1, 100, 100, 1.5)
    with pytest.raises(ValueError, match="rng"):
        S.frame_pattern(1, 1, 100, 100, 0.5, rng="jax")


def _blocks_touched(allowed, block_shape):
    """Block mask [R, C]: True where some allowed token pair lies in the tile."""
    bq, bkv = block_shape
    seq_q, seq_kv = allowed.shape
    rows, cols = math.ceil(seq_q / bq), math.ceil(seq_kv / bkv)
    out = np.zeros((rows, cols), dtype=bool)
    for r in range(rows):
        for c in range(cols):
            out[r, c] = allowed[r * bq:(r + 1) * bq, c * bkv:(c + 1) * bkv].any()
    return out


@pytest.mark.parametrize("seq_q, seq_kv", [(1000, 1000), (300, 1100), (1100, 300)])
def test_causal_pattern_is_the_blocks_a_causal_mask_touches(seq_q, seq_kv):
    bs = (64, 128)
    i = np.arange(seq_q)[:, None]
    j = np.arange(seq_kv)[None, :]
    for top_left, allowed in ((False, j <= i + seq_kv - seq_q), (True, j <= i)):
        s = S.causal_pattern(2, 3, seq_q, seq_kv, block_shape=bs, top_left=top_left)
        assert s.shape[:2] == (2, 3)
        np.testing.assert_array_equal(S.to_block_mask(s, seq_q, seq_kv, bs)[1, 2], _blocks_touched(allowed, bs))


def test_band_pattern():
    bs, seq = (64, 128), 1024
    s = S.band_pattern(1, 1, seq, seq, 1, block_shape=bs)
    mask = S.to_block_mask(s, seq, seq, bs)[0, 0]
    # the diagonal band of tokens |i - j| <= 128 (one key block either side) is covered
    i = np.arange(seq)[:, None]
    j = np.arange(seq)[None, :]
    touched = _blocks_touched(np.abs(i - j) <= bs[1], bs)
    assert (mask >= touched).all()
    # and nothing farther than width_blocks from the diagonal block
    for r in range(mask.shape[0]):
        diag = (r * bs[0]) // bs[1]
        assert set(np.flatnonzero(mask[r])) == set(range(max(0, diag - 1), min(mask.shape[1], diag + 2)))
    with pytest.raises(ValueError, match="width_blocks"):
        S.band_pattern(1, 1, seq, seq, -1)


def test_dense_pattern_equals_all_blocks():
    s = S.dense_pattern(2, 1, 300, 1100)
    assert S.to_block_mask(s, 300, 1100).all() and s.shape == (2, 1, 3, 3)

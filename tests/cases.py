"""The oracle matrix: named cases every device runs against the float64 reference.

Each `Case` is a small frozen dataclass; `case.build(dtype)` returns `Inputs` (numpy query, key,
value in that dtype, plus the keyword arguments of blitz_sparse_attention, without `device`).
Sizes stay small (Sq, Skv <= ~2048, D <= 128) so the whole matrix runs in seconds per device.
Block shapes are all ones the CPU device accepts.

`CASES` is the list; `CASE_IDS` their names for pytest ids. `assert_rows_close` compares an
output or lse with the expected one and names the first mismatching (b, h, row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from blitz_acl import arrays
from blitz_acl import sabi as S


@dataclass(frozen=True)
class Inputs:
    query: np.ndarray
    key: np.ndarray
    value: np.ndarray
    kwargs: Dict[str, Any]


@dataclass(frozen=True)
class Case:
    name: str
    batch: int = 1
    heads: int = 2
    kv_heads: int = 0  # 0 = heads
    seq_q: int = 256
    seq_kv: int = 1024
    head_dim: int = 64
    layout: str = "BNSD"
    block_shape: Tuple[int, int] = (128, 512)
    # sabi: None (dense), "random", "shuffled" (-1 anywhere), "empty_rows", "narrow" (W < C),
    # "frame", "band", "causal", "dense_pattern".
    sabi: Optional[str] = None
    sparsity: float = 0.5
    sabi_dtype: str = "uint16"  # or int16 / int32 / int64 with -1
    sabi_batch_1: bool = False  # Bs = 1 broadcast over batch
    shared_heads: bool = False  # Ns = 1 broadcast over heads
    sabi_3d: bool = False  # [Ns, R, W]
    sparse_mode: int = 0
    pre_tokens: int = 2147483647
    next_tokens: int = 2147483647
    # explicit mask: None or one of "2d", "3d_1", "3d_b", "4d_1", "4d_b"
    mask: Optional[str] = None
    mask_dtype: str = "bool"
    actual_q: Optional[Tuple[int, ...]] = None
    actual_kv: Optional[Tuple[int, ...]] = None
    scale: Optional[float] = None
    lse: bool = True
    seed: int = 0

    def build(self, dtype: str = "float32") -> Inputs:
        rng = np.random.default_rng(self.seed)
        nkv = self.kv_heads or self.heads
        q = _layout_tensor(rng, self.batch, self.heads, self.seq_q, self.head_dim, self.layout)
        k = _layout_tensor(rng, self.batch, nkv, self.seq_kv, self.head_dim, self.layout)
        v = _layout_tensor(rng, self.batch, nkv, self.seq_kv, self.head_dim, self.layout)
        target = arrays.numpy_dtype(dtype)
        kwargs: Dict[str, Any] = dict(
            input_layout=self.layout, num_key_value_heads=self.kv_heads,
            sparse_mode=self.sparse_mode, pre_tokens=self.pre_tokens,
            next_tokens=self.next_tokens, block_shape=self.block_shape, return_lse=self.lse,
            sabi=self._sabi(rng), atten_mask=self._mask(rng),
        )
        if self.layout == "BSH":
            kwargs["num_heads"] = self.heads
        if self.actual_q is not None:
            kwargs["actual_seq_lengths"] = list(self.actual_q)
        if self.actual_kv is not None:
            kwargs["actual_seq_lengths_kv"] = list(self.actual_kv)
        if self.scale is not None:
            kwargs["scale_value"] = self.scale
        return Inputs(q.astype(target), k.astype(target), v.astype(target), kwargs)

    def _sabi(self, rng: np.random.Generator) -> Optional[np.ndarray]:
        if self.sabi is None:
            return None
        b = 1 if self.sabi_batch_1 else self.batch
        args = (b, self.heads, self.seq_q, self.seq_kv)
        common = dict(block_shape=self.block_shape, shared_heads=self.shared_heads)
        kind = self.sabi
        if kind in ("random", "shuffled", "empty_rows", "narrow"):
            s = S.random_pattern(*args, self.sparsity, seed=self.seed, shuffle=kind != "random", **common)
            if kind == "empty_rows":
                s[:, :, 0] = S.PAD  # first query block of every head attends nothing
                s[0, -1] = S.PAD  # and one whole head
            if kind == "narrow":
                s = np.ascontiguousarray(np.sort(s, axis=-1)[..., : max(1, s.shape[-1] // 2)])
        elif kind == "frame":
            s = S.frame_pattern(*args, self.sparsity, seed=1234, **common)
        elif kind == "band":
            s = S.band_pattern(*args, 1, **common)
        elif kind == "causal":
            s = S.causal_pattern(*args, top_left=self.sparse_mode == 2, **common)
        elif kind == "dense_pattern":
            s = S.dense_pattern(*args, **common)
        else:
            raise ValueError(f"unknown sabi kind {kind!r}")
        if self.sabi_dtype != "uint16":
            s = s.astype(np.int64)
            s[s == S.PAD] = -1
            s = s.astype(self.sabi_dtype)
        if self.sabi_3d:
            s = s[0]
        return s

    def _mask(self, rng: np.random.Generator) -> Optional[np.ndarray]:
        if self.mask is None:
            return None
        lead = {"2d": (), "3d_1": (1,), "3d_b": (self.batch,), "4d_1": (1, 1),
                "4d_b": (self.batch, 1)}[self.mask]
        m = rng.random(lead + (self.seq_q, self.seq_kv)) < 0.3
        m[..., self.seq_q // 2, :] = True  # one fully masked row: zeros and lse -inf
        return m.astype(arrays.numpy_dtype(self.mask_dtype))


def _layout_tensor(rng, b: int, n: int, s: int, d: int, layout: str) -> np.ndarray:
    """Unit-variance float32 data, generated BNSD and stored in `layout`."""
    x = rng.standard_normal((b, n, s, d), dtype=np.float32)
    if layout in ("BNSD", "BNSD_BSND"):
        return x
    bsnd = np.ascontiguousarray(x.transpose(0, 2, 1, 3))
    return bsnd.reshape(b, s, n * d) if layout == "BSH" else bsnd


CASES = [
    # dense and unaligned sizes (1, tile - 1, tile + 1, 113 x 203)
    Case("dense"),
    Case("dense_1x1", seq_q=1, seq_kv=1),
    Case("dense_127x511", seq_q=127, seq_kv=511),
    Case("dense_129x513", seq_q=129, seq_kv=513),
    Case("dense_113x203", seq_q=113, seq_kv=203, head_dim=128),
    Case("dense_d16_scale", head_dim=16, scale=0.3, seq_q=200, seq_kv=300),
    Case("dense_no_lse", lse=False),
    Case("empty_kv", seq_q=5, seq_kv=0),
    Case("empty_q", seq_q=0, seq_kv=64),
    # sabi
    Case("sabi_random", batch=2, seq_q=300, seq_kv=1100, sabi="random"),
    Case("sabi_shuffled_int16", batch=2, seq_q=300, seq_kv=1100, sabi="shuffled",
         sabi_dtype="int16", block_shape=(64, 128), seed=1),
    Case("sabi_shuffled_int64", seq_q=257, seq_kv=777, sabi="shuffled", sabi_dtype="int64",
         block_shape=(64, 64), sparsity=0.7, seed=2),
    Case("sabi_empty_rows", batch=2, seq_q=300, seq_kv=1100, sabi="empty_rows",
         block_shape=(64, 128), seed=3),
    Case("sabi_narrow", seq_q=300, seq_kv=1100, sabi="narrow", block_shape=(64, 128), seed=4),
    Case("sabi_dense_pattern", seq_q=300, seq_kv=1100, sabi="dense_pattern"),
    Case("sabi_3d", heads=3, seq_q=200, seq_kv=900, sabi="random", sabi_3d=True,
         block_shape=(64, 128), seed=5),
    Case("sabi_shared_heads", batch=2, heads=3, seq_q=200, seq_kv=900, sabi="random",
         shared_heads=True, block_shape=(64, 128), seed=6),
    Case("sabi_batch_broadcast", batch=2, seq_q=200, seq_kv=900, sabi="shuffled",
         sabi_batch_1=True, block_shape=(64, 128), seed=7),
    # The frame rule makes query blocks 0-28 and the last dense and forces key blocks 0-7 and
    # the last: R = 128 and C = 32 leave room for the sparsity (density 0.62, 0.97 at R = 32).
    Case("sabi_frame", heads=1, seq_q=8192, seq_kv=2048, head_dim=16, sabi="frame",
         block_shape=(64, 64)),
    Case("sabi_band", seq_q=1024, seq_kv=1024, sabi="band", block_shape=(64, 128), head_dim=32),
    Case("sabi_tile_256x1024", seq_q=600, seq_kv=1100, sabi="shuffled", block_shape=(256, 1024),
         sparsity=0.5, seed=8),
    # token masks by sparse_mode
    Case("mode2_square", seq_q=300, seq_kv=300, sparse_mode=2),
    Case("mode2_rect", seq_q=200, seq_kv=700, sparse_mode=2),
    Case("mode3_q_lt_kv", seq_q=200, seq_kv=700, sparse_mode=3),
    Case("mode3_q_gt_kv", seq_q=700, seq_kv=200, sparse_mode=3),
    Case("mode3_causal_sabi", seq_q=640, seq_kv=1024, sparse_mode=3, sabi="causal",
         block_shape=(64, 128)),
    Case("mode2_causal_sabi", seq_q=512, seq_kv=512, sparse_mode=2, sabi="causal",
         block_shape=(64, 64)),
    Case("mode4_band", seq_q=400, seq_kv=400, sparse_mode=4, pre_tokens=100, next_tokens=20),
    Case("mode4_q_lt_kv", seq_q=150, seq_kv=600, sparse_mode=4, pre_tokens=64, next_tokens=0),
    Case("mode4_band_sabi", seq_q=1024, seq_kv=1024, sparse_mode=4, pre_tokens=150,
         next_tokens=10, sabi="band", block_shape=(64, 128), head_dim=32),
    Case("mode4_negative_next", seq_q=300, seq_kv=300, sparse_mode=4, pre_tokens=50,
         next_tokens=-10),
    # explicit masks of every shape and dtype
    Case("mask_2d_bool", seq_q=200, seq_kv=600, mask="2d"),
    Case("mask_3d_1_int8", seq_q=200, seq_kv=600, mask="3d_1", mask_dtype="int8"),
    Case("mask_3d_b_uint8", batch=2, seq_q=200, seq_kv=600, mask="3d_b", mask_dtype="uint8"),
    Case("mask_4d_1", seq_q=200, seq_kv=600, mask="4d_1", sparse_mode=1),
    Case("mask_4d_b_sabi", batch=2, seq_q=200, seq_kv=600, mask="4d_b", sparse_mode=1,
         sabi="shuffled", block_shape=(64, 128), seed=9),
    # GQA / MQA
    Case("gqa", heads=4, kv_heads=2, seq_q=200, seq_kv=700, sabi="random", block_shape=(64, 128)),
    Case("mqa", heads=4, kv_heads=1, seq_q=200, seq_kv=700, sabi="shuffled",
         block_shape=(64, 128), seed=10),
    # actual sequence lengths (the mode rules use each batch's actual lengths)
    Case("lengths_q", batch=3, seq_q=300, seq_kv=700, actual_q=(300, 17, 0)),
    Case("lengths_kv", batch=3, seq_q=300, seq_kv=700, actual_kv=(700, 5, 0)),
    Case("lengths_both_one", batch=2, seq_q=300, seq_kv=700, actual_q=(250,), actual_kv=(513,),
         sabi="shuffled", block_shape=(64, 128), seed=11),
    Case("lengths_mode3", batch=2, seq_q=300, seq_kv=700, actual_q=(300, 100),
         actual_kv=(400, 650), sparse_mode=3),
    Case("lengths_mask", batch=2, seq_q=300, seq_kv=700, actual_q=(299, 128),
         actual_kv=(600, 129), mask="3d_b"),
    Case("lengths_mode4", batch=2, seq_q=300, seq_kv=700, actual_q=(200, 128),
         actual_kv=(600, 129), sparse_mode=4, pre_tokens=80, next_tokens=30),
    # layouts
    Case("layout_bsnd", layout="BSND", seq_q=200, seq_kv=700, sabi="shuffled",
         block_shape=(64, 128), seed=12),
    Case("layout_bsh", layout="BSH", heads=4, kv_heads=2, seq_q=200, seq_kv=700,
         sabi="random", block_shape=(64, 128), seed=13),
    Case("layout_bnsd_bsnd", layout="BNSD_BSND", batch=2, seq_q=200, seq_kv=700,
         sabi="random", seed=14),
]

CASE_IDS = [c.name for c in CASES]
assert len(set(CASE_IDS)) == len(CASE_IDS), "case names must be unique"


def to_torch(inputs: Inputs) -> Inputs:
    """The same inputs as torch CPU tensors (sabi and mask too)."""
    import torch

    def conv(x):
        if not isinstance(x, np.ndarray):
            return x
        if x.dtype == arrays.numpy_dtype("bfloat16"):
            return torch.from_numpy(x.view(np.int16).copy()).view(torch.bfloat16)
        return torch.from_numpy(x.copy())

    kwargs = {k: conv(v) for k, v in inputs.kwargs.items()}
    return Inputs(conv(inputs.query), conv(inputs.key), conv(inputs.value), kwargs)


def assert_rows_close(actual: np.ndarray, expected: np.ndarray, atol: float, what: str = "output",
                      layout: str = "BNSD", heads: Optional[int] = None) -> None:
    """|actual - expected| <= atol everywhere (-inf must match -inf); names the first bad row.

    `layout` is the layout of both arrays ("lse" for [B, N, Sq]; BSH needs `heads`); rows are
    reported as (b, h, row) in every layout.
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    if layout == "lse":
        a, e = a[..., None], e[..., None]
    elif layout == "BSH":
        a = a.reshape(a.shape[0], a.shape[1], heads, -1).transpose(0, 2, 1, 3)
        e = e.reshape(e.shape[0], e.shape[1], heads, -1).transpose(0, 2, 1, 3)
    elif layout in ("BSND", "BNSD_BSND"):
        a, e = a.transpose(0, 2, 1, 3), e.transpose(0, 2, 1, 3)
    both_inf = np.isneginf(a) & np.isneginf(e)
    with np.errstate(invalid="ignore"):  # -inf - -inf is masked by both_inf
        diff = np.where(both_inf, 0.0, np.abs(a - e))
    bad = ~(diff <= atol)  # NaN counts as bad
    if bad.any():
        b, h, row = (int(i) for i in np.argwhere(bad.any(axis=-1))[0])
        raise AssertionError(
            f"{what}: first mismatch at (b={b}, h={h}, row={row}): max |diff| "
            f"{np.nanmax(np.where(np.isnan(diff), np.inf, diff)):.3g} > atol {atol}; "
            f"actual {a[b, h, row][:4]}..., expected {e[b, h, row][:4]}...")

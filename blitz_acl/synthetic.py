"""Seeded synthetic inputs for block selection: a video token grid with local attention, and
random inputs with none to find.

`video_grid` builds query/key/value for tokens on a frames x height x width grid (flattened frame
by frame, then row by row, as video DiTs order them) whose attention is mostly local in 3-D: a
query attends to keys within about `window` grid steps per axis (frames, rows, columns), plus a
few global "sink" tokens every query attends to, plus noise. Locality comes from a random
Fourier feature embedding of the grid position: e(p) . e(p') approximates
exp(-|(p - p') / window|^2 / 2), so scale * q . k is about `sharpness` for a query and a key at
the same place and falls off with their distance. `random_inputs` draws every entry i.i.d.
N(0, 1): attention is then spread almost evenly, and no block selection can skip much without
losing mass.

Both return BNSD numpy arrays (float32 unless dtype says otherwise) and are deterministic given
the seed.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from . import arrays

# A sink key's logit relative to a same-place key's (sharpness): about a near neighbour's weight,
# for every query wherever the sink lies.
SINK_MARGIN = -1.0


def _cast(x: np.ndarray, dtype: str) -> np.ndarray:
    return np.ascontiguousarray(x.astype(arrays.numpy_dtype(dtype)))


def grid_positions(frames: int, height: int, width: int) -> np.ndarray:
    """(F H W, 3) float64 (frame, row, column) of each token, in the token order."""
    f, y, x = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    return np.stack([f.ravel(), y.ravel(), x.ravel()], axis=1).astype(np.float64)


def video_grid(frames: int = 8, height: int = 32, width: int = 32, *, batch: int = 1, heads: int = 2,
               head_dim: int = 128, window: Tuple[float, float, float] = (1.0, 4.0, 4.0), sinks: int = 4,
               sharpness: float = 12.0, noise: float = 0.3, seed: int = 0,
               dtype: str = "float32") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, key, value), each (batch, heads, frames * height * width, head_dim).

    window: the attention's reach per axis (frames, rows, columns) in grid steps (the length
        scale of the position kernel). sinks: how many tokens (drawn per head, seeded) every query
        attends to strongly. sharpness: scale * q . k for a query and a key at the same grid point
        (scale = 1 / sqrt(head_dim), the attention's default); larger is more local. noise: the
        standard deviation of the i.i.d. noise added to q and k, relative to their norm's share
        per dimension. One dim carries the sinks; the rest the position features (their
        approximation error shrinks with head_dim: the default 128 keeps far keys' logits within
        about +-1.5 of 0).
    """
    if head_dim < 4:
        raise ValueError(f"head_dim must be >= 4 for the position features and the sink dim, got {head_dim}")
    if min(frames, height, width) < 1:
        raise ValueError(f"frames, height and width must be >= 1, got {frames} x {height} x {width}")
    seq = frames * height * width
    if not 0 <= sinks <= seq:
        raise ValueError(f"sinks must lie in [0, {seq}] (the token count), got {sinks}")
    rng = np.random.default_rng(seed)
    pos = grid_positions(frames, height, width) / np.asarray(window, dtype=np.float64)
    features = (head_dim - 1) // 2  # cos/sin pairs; the last dim is the sinks'
    # |q| = |k| = a with a^2 / sqrt(D) = sharpness: the same-place logit (e(p) . e(p) = 1).
    amplitude = np.sqrt(sharpness * np.sqrt(head_dim))
    q = np.zeros((batch, heads, seq, head_dim))
    k = np.zeros((batch, heads, seq, head_dim))
    for b in range(batch):
        for h in range(heads):
            omega = rng.standard_normal((3, features))
            phase = pos @ omega
            embed = np.concatenate([np.cos(phase), np.sin(phase)], axis=1) / np.sqrt(features)
            q[b, h, :, :2 * features] = amplitude * embed
            k[b, h, :, :2 * features] = amplitude * embed
            # Every query carries the sink direction; sink keys answer it.
            sink_logit = sharpness + SINK_MARGIN
            sink_amp = np.sqrt(sink_logit * np.sqrt(head_dim))
            q[b, h, :, head_dim - 1] = sink_amp
            k[b, h, rng.choice(seq, size=sinks, replace=False), head_dim - 1] = sink_amp
            sd = noise * amplitude / np.sqrt(head_dim)
            q[b, h] += sd * rng.standard_normal((seq, head_dim))
            k[b, h] += sd * rng.standard_normal((seq, head_dim))
    v = rng.standard_normal((batch, heads, seq, head_dim))
    return _cast(q, dtype), _cast(k, dtype), _cast(v, dtype)


def random_inputs(batch: int = 1, heads: int = 2, seq: int = 8192, head_dim: int = 64, *, seq_kv: int = None,
                  seed: int = 0, dtype: str = "float32") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query, key, value) with i.i.d. N(0, 1) entries: query (batch, heads, seq, head_dim), key and
    value (batch, heads, seq_kv or seq, head_dim)."""
    rng = np.random.default_rng(seed)
    skv = seq if seq_kv is None else seq_kv
    q = rng.standard_normal((batch, heads, seq, head_dim))
    k = rng.standard_normal((batch, heads, skv, head_dim))
    v = rng.standard_normal((batch, heads, skv, head_dim))
    return _cast(q, dtype), _cast(k, dtype), _cast(v, dtype)

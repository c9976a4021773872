"""A float64 numpy statement of select_blocks' scoring and selection, written from the documented
rules (blitz_acl.select_blocks' docstring, kernel_src/cpu/select/block_scores.h and
block_choice.h), independently of the C++: the antidiagonal score is read off the full score
matrix by index (a + c = stride - 1 inside each cell) instead of the op's packed cells, the
pooled units by plain slicing, the ranking by Python's sort.

`masses(q, k, ...)` gives one (batch, head)'s [R, C] estimated block masses; `choose(...)` one
row's kept blocks; `rows_at_a_tie(...)` which rows a float32 op may legitimately choose
differently (a ranking or a threshold crossing within `tol`).
"""

from __future__ import annotations

import numpy as np

TIE_TOL = 1e-5  # the op's float32 antidiagonal sums and float64 pooling differ from here by < 1e-6


def _units(x: np.ndarray, block: int, sub_block: int, refine_below: float):
    """Per block of x [L, D]: a list of (mean, count) units."""
    out = []
    for start in range(0, len(x), block):
        blk = x[start:start + block]
        n = len(blk)
        total, sq = blk.sum(0), float((blk * blk).sum())
        coherence = float(total @ total) / (n * sq) if sq > 0 else 1.0
        size = sub_block if coherence < refine_below else n
        out.append([(blk[u:u + size].mean(0), len(blk[u:u + size])) for u in range(0, n, size)])
    return out


def token_mask(lq, lkv, sparse_mode=0, pre_tokens=2**31 - 1, next_tokens=2**31 - 1):
    """bool [lq, lkv], True where query i may attend key j: the attention's index masks as
    DESIGN.md states them (2: j <= i; 3: j <= i + lkv - lq; 4: i + o - pre <= j <= i + o + next,
    o = lkv - lq); None for mode 0 (every pair)."""
    if sparse_mode == 0:
        return None
    d = np.arange(lkv)[None, :] - np.arange(lq)[:, None]  # j - i
    if sparse_mode == 2:
        return d <= 0
    o = lkv - lq
    if sparse_mode == 3:
        return d <= o
    return (d >= o - pre_tokens) & (d <= o + next_tokens)


def _sees(visible, r0, r1, k0, k1) -> bool:
    return visible is None or bool(visible[r0:r1, k0:k1].any())


def _mean_pool(q, k, bq, bkv, scale, sub_block, refine_below, visible=None):
    q_units = _units(q, bq, sub_block, refine_below)
    k_units = _units(k, bkv, sub_block, refine_below)
    k_means = np.array([m for blk in k_units for m, _ in blk])
    k_logn = np.log([c for blk in k_units for _, c in blk])
    k_block = np.array([j for j, blk in enumerate(k_units) for _ in blk])
    k_first = np.concatenate([[j * bkv] + list(j * bkv + np.cumsum([c for _, c in blk])[:-1])
                              for j, blk in enumerate(k_units)]).astype(int)
    k_count = np.array([c for blk in k_units for _, c in blk])
    out = np.zeros((len(q_units), len(k_units)))
    for i, blk in enumerate(q_units):
        rows = sum(c for _, c in blk)
        r0 = i * bq
        for mean, count in blk:
            seen = np.array([_sees(visible, r0, r0 + count, f, f + c) for f, c in zip(k_first, k_count)])
            r0 += count
            if not seen.any():
                continue  # this query unit sees no key: it adds nothing
            logits = np.where(seen, scale * (k_means @ mean) + k_logn, -np.inf)
            w = np.exp(logits - logits.max())
            out[i] += count / rows * np.bincount(k_block, weights=w / w.sum(), minlength=len(k_units))
    return out


def _antidiagonal(q, k, bq, bkv, scale, stride, visible=None):
    lq, lkv, s = len(q), len(k), stride
    scores = scale * (q @ k.T)
    blocks_kv = -(-lkv // bkv)
    out = np.zeros((-(-lq // bq), blocks_kv))
    for i, q0 in enumerate(range(0, lq, bq)):
        rows = min(bq, lq - q0)
        for u0 in range(0, rows, s):
            n_u = min(s, rows - u0)
            logits, block_of = [], []
            for j in range(blocks_kv):
                k_end = min((j + 1) * bkv, lkv)
                for t0 in range(j * bkv, k_end, s):
                    n_t = min(s, k_end - t0)
                    cell = scores[q0 + u0:q0 + u0 + n_u, t0:t0 + n_t]
                    a, c = np.nonzero(np.add.outer(np.arange(n_u), np.arange(n_t)) == s - 1)
                    score = cell[a, c].mean() if len(a) else cell.mean()
                    seen = _sees(visible, q0 + u0, q0 + u0 + n_u, t0, t0 + n_t)
                    logits.append(score + np.log(n_t) if seen else -np.inf)
                    block_of.append(j)
            logits = np.array(logits)
            if not np.isfinite(logits).any():
                continue  # this row group sees no key: it adds nothing
            w = np.exp(logits - logits.max())
            out[i] += n_u / rows * np.bincount(block_of, weights=w / w.sum(), minlength=blocks_kv)
    return out


def masses(q, k, *, block_shape, scale, method, stride=8, sub_block=32, refine_below=0.5,
           visible=None) -> np.ndarray:
    """[ceil(Lq / bq), ceil(Lkv / bkv)] estimated mass of each key block per query block, for one
    (batch, head): q [Lq, D], k [Lkv, D] (the valid tokens only); visible: token_mask's [Lq, Lkv]
    or None (a unit / cell with no visible pair leaves the softmax)."""
    q, k = np.asarray(q, np.float64), np.asarray(k, np.float64)
    bq, bkv = block_shape
    if method == "mean_pool":
        return _mean_pool(q, k, bq, bkv, scale, sub_block, refine_below, visible)
    return _antidiagonal(q, k, bq, bkv, scale, stride, visible)


def seen_blocks(visible, first_token, rows, bkv, cols):
    """The key blocks some row of the query block sees some key of (None: every block)."""
    if visible is None:
        return None
    lkv = visible.shape[1]
    return {j for j in range(cols) if _sees(visible, first_token, first_token + rows, j * bkv, min((j + 1) * bkv, lkv))}


def _anchor_set(cols, first_token, rows, bkv, anchors, seen=None):
    first, diagonal, last = anchors
    kept = set(range(min(first, cols)))
    if last:
        kept.add(cols - 1)
    if diagonal:
        kept |= set(range(first_token // bkv, min((first_token + rows - 1) // bkv, cols - 1) + 1))
    return kept if seen is None else kept & seen


def _ranked(mass, anchored, seen=None):
    return sorted((j for j in range(len(mass)) if j not in anchored and (seen is None or j in seen)),
                  key=lambda j: (-mass[j], j))


def choose(mass, *, first_token, rows, bkv, mass_target, top_k, anchors, seen=None) -> list:
    """The kept key blocks (ascending) of one row with block masses `mass` (the valid blocks);
    seen: the blocks the mask leaves it (seen_blocks; None: all)."""
    cols = len(mass)
    if cols == 0 or rows <= 0:
        return []
    anchored = _anchor_set(cols, first_token, rows, bkv, anchors, seen)
    ranked = _ranked(mass, anchored, seen)
    n_top = max(0, top_k - len(anchored)) if top_k else 0
    n_mass, reached = 0, sum(mass[j] for j in anchored)
    if mass_target:
        while n_mass < len(ranked) and reached < mass_target:
            reached += mass[ranked[n_mass]]
            n_mass += 1
    return sorted(anchored | set(ranked[:min(max(n_top, n_mass), len(ranked))]))


def at_a_tie(mass, *, first_token, rows, bkv, mass_target, top_k, anchors, seen=None, tol=TIE_TOL) -> bool:
    """Whether moving the masses by tol could change this row's choice: the last kept and the
    first dropped ranked block within tol of each other, or the running mass within tol of the
    target at some count."""
    cols = len(mass)
    if cols == 0 or rows <= 0:
        return False
    anchored = _anchor_set(cols, first_token, rows, bkv, anchors, seen)
    ranked = _ranked(mass, anchored, seen)
    values = [mass[j] for j in ranked]
    taken = len(choose(mass, first_token=first_token, rows=rows, bkv=bkv, mass_target=mass_target,
                       top_k=top_k, anchors=anchors, seen=seen)) - len(anchored)
    if 0 < taken < len(values) and values[taken - 1] - values[taken] < tol:
        return True
    if mass_target:
        running = sum(mass[j] for j in anchored) + np.cumsum([0.0] + values)
        return bool(np.any(np.abs(running - mass_target) < tol))
    return False

// Token-level masks inside the tiles sabi selects (DESIGN.md, "The operation"), for one batch
// entry with its actual lengths q_len / kv_len:
//   sparse_mode 0/1: every key < kv_len, minus an explicit mask (nonzero byte = masked out);
//   2: causal top-left        key j allowed iff j <= i;
//   3: causal bottom-right    j <= i + o,                      o = kv_len - q_len;
//   4: band bottom-right      i + o - pre <= j <= i + o + next.
// For modes 2-4 the allowed keys of row i form one interval [lo(i), hi(i)) whose ends never
// decrease as i grows; the classification below relies on that.
#pragma once

#include "platform.h"

namespace blitz {

enum SparseMode : int {
  kSparseNone = 0,
  kSparseExplicit = 1,
  kSparseCausal = 2,
  kSparseCausalBottomRight = 3,
  kSparseBand = 4,
};

// What a rectangle of (row, key) positions holds, so the fast path can skip per-element work.
enum TileClass : int { kTileAllAllowed = 0, kTileAllMasked = 1, kTileMixed = 2 };

// lo_shift of the causal modes: below any row index, far from int64 overflow.
constexpr int64_t kNoLowerBound = -((int64_t)1 << 62);
// pre/next tokens beyond any sequence length act alike; clamping them keeps the shifts (and
// i + shift) far from int64 overflow whatever the caller passed.
constexpr int64_t kTokenLimit = (int64_t)1 << 40;

struct TokenMask {
  int mode;
  int64_t q_len, kv_len;
  int64_t lo_shift, hi_shift;  // row i allows [i + lo_shift, i + hi_shift] (modes 2-4)
  bool banded;                 // modes 2-4: the interval rule applies
  const uint8_t *mask;         // explicit mask rows of this batch entry, or nullptr
  int64_t mask_stride_q;

  // pre/next are ignored outside mode 4; `mask` is ignored in modes 2-4 (those masks come from
  // indices, never from memory).
  BLITZ_INLINE static TokenMask make(int mode, int64_t q_len, int64_t kv_len, int64_t pre_tokens,
                                     int64_t next_tokens, const uint8_t *batch_mask,
                                     int64_t mask_stride_q) {
    TokenMask m;
    m.mode = mode;
    m.q_len = q_len;
    m.kv_len = kv_len;
    m.banded = mode == kSparseCausal || mode == kSparseCausalBottomRight || mode == kSparseBand;
    const int64_t offset = (mode == kSparseCausalBottomRight || mode == kSparseBand) ? kv_len - q_len : 0;
    pre_tokens = clamp_i64(pre_tokens, -kTokenLimit, kTokenLimit);
    next_tokens = clamp_i64(next_tokens, -kTokenLimit, kTokenLimit);
    m.lo_shift = mode == kSparseBand ? offset - pre_tokens : kNoLowerBound;
    m.hi_shift = mode == kSparseBand ? offset + next_tokens : offset;
    m.mask = m.banded ? 0 : batch_mask;
    m.mask_stride_q = mask_stride_q;
    return m;
  }

  // Allowed keys of row i as [*lo, *hi) within [0, kv_len) (possibly empty: *lo >= *hi).
  // The explicit mask is not part of it.
  BLITZ_INLINE void row_interval(int64_t i, int64_t *lo, int64_t *hi) const {
    if (!banded) {
      *lo = 0;
      *hi = kv_len;
      return;
    }
    *lo = max_i64(0, i + lo_shift);
    *hi = min_i64(kv_len, i + hi_shift + 1);
  }

  BLITZ_INLINE bool allowed(int64_t i, int64_t j) const {
    if (i < 0 || i >= q_len || j < 0 || j >= kv_len) return false;
    int64_t lo, hi;
    row_interval(i, &lo, &hi);
    if (j < lo || j >= hi) return false;
    return mask == 0 || mask[i * mask_stride_q + j] == 0;
  }

  // Rows [r0, r1) x keys [c0, c1), rows < q_len. kTileMixed is always a safe answer.
  BLITZ_INLINE TileClass classify(int64_t r0, int64_t r1, int64_t c0, int64_t c1) const {
    r1 = min_i64(r1, q_len);
    c1 = min_i64(c1, kv_len);
    if (r0 >= r1 || c0 >= c1) return kTileAllMasked;
    int64_t first_lo, first_hi, last_lo, last_hi;
    row_interval(r0, &first_lo, &first_hi);
    row_interval(r1 - 1, &last_lo, &last_hi);
    // Ends never decrease with the row: the last row has the largest hi, the first the smallest lo.
    if (last_hi <= c0 || first_lo >= c1) return kTileAllMasked;
    if (mask != 0) return kTileMixed;
    // Every row covers [c0, c1) iff the last row's lo and the first row's hi do.
    if (last_lo <= c0 && first_hi >= c1) return kTileAllAllowed;
    return kTileMixed;
  }
};

}  // namespace blitz

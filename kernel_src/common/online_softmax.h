// The online-softmax update rule for one query row, as phases the tile loop calls in order:
//
//   for each tile:  c = row.update_max(tile_max, exp)   // new running max, returns the factor
//                   rescale(acc, n, c)                  // old partial sums were relative to the old max
//                   p_j = exp(s_j - row.subtrahend())   // the kernel's (vector) work
//                   row.accumulate(sum_j p_j)
//   at the end:     row.finalize(log, &inv_sum, &lse)  // out = acc * inv_sum
//
// Scores may be in any base as long as exp/log use the same one (the fast path works in base 2
// and converts lse). exp and log are parameters so this header needs no libm.
#pragma once

#include "platform.h"

namespace blitz {

struct OnlineSoftmaxRow {
  float max;  // running max of the scores seen, -inf before any allowed score
  float sum;  // sum of exp(score - subtrahend()) over the scores seen

  BLITZ_INLINE static OnlineSoftmaxRow start() {
    OnlineSoftmaxRow r;
    r.max = neg_infinity();
    r.sum = 0.0f;
    return r;
  }

  // The value subtracted from scores. A max of -inf (nothing allowed yet) is treated as 0, so
  // masked scores give exp(-inf - 0) = 0 instead of exp(-inf + inf) = NaN.
  BLITZ_INLINE float subtrahend() const { return max == neg_infinity() ? 0.0f : max; }

  // Phase 1: fold in the max of a tile's (masked) scores. Returns the factor the accumulated
  // sums must be multiplied by; the running sum is already rescaled.
  template <class Exp>
  BLITZ_INLINE float update_max(float tile_max, Exp exp_fn) {
    const float old_sub = subtrahend();
    const bool had_any = max != neg_infinity();
    if (tile_max > max) max = tile_max;
    // Nothing seen before: sum and accumulators are zero, any factor works; 1 avoids exp(-inf).
    const float factor = had_any ? exp_fn(old_sub - subtrahend()) : 1.0f;
    sum *= factor;
    return factor;
  }

  // Phase 2: add the tile's sum of exp(score - subtrahend()).
  BLITZ_INLINE void accumulate(float tile_sum) { sum += tile_sum; }

  // Phase 3: the factor turning accumulators into outputs, and the log of the softmax
  // denominator including the max. An empty row (no allowed key, or all weights underflowed
  // to zero) gives factor 0 (an output of zeros, never NaN) and lse -inf.
  template <class Log>
  BLITZ_INLINE void finalize(Log log_fn, float *inv_sum, float *lse) const {
    if (!(sum > 0.0f)) {
      *inv_sum = 0.0f;
      *lse = neg_infinity();
      return;
    }
    *inv_sum = 1.0f / sum;
    *lse = subtrahend() + log_fn(sum);
  }
};

// Phase "rescale": multiply a row's accumulators by the factor update_max returned.
BLITZ_INLINE void rescale_row(float *acc, int64_t n, float factor) {
  if (factor == 1.0f) return;
  for (int64_t i = 0; i < n; ++i) acc[i] *= factor;
}

}  // namespace blitz

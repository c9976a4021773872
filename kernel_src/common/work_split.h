// Splitting the work over cores by the number of tiles to compute, not by rows.
//
// A task is one (batch b, query head h, query block i), flattened as t = (b * heads + h) *
// q_blocks + i, so consecutive tasks share a key/value head (packed K/V stay warm). Its cost is
// the number of tiles it really computes: sabi entries that are valid, hold at least one key
// below the actual kv length and are not fully masked by the token mask, plus a small fixed
// cost for writing the block's output (rows past the q length are zero-filled, which is cheap
// but not free). Workers get contiguous task ranges of about equal total cost.
#pragma once

#include "platform.h"
#include "sabi_walk.h"
#include "tile_geometry.h"
#include "token_mask.h"

namespace blitz {

// Relative costs: one computed tile vs. the per-task overhead (load Q, write the output block).
constexpr int64_t kCostPerTile = 16;
constexpr int64_t kCostPerTask = 1;

struct TaskIndex {
  int64_t b, h, q_block;

  BLITZ_INLINE static TaskIndex decode(int64_t t, int64_t heads, int64_t q_blocks) {
    TaskIndex x;
    x.q_block = t % q_blocks;
    const int64_t bh = t / q_blocks;
    x.h = bh % heads;
    x.b = bh / heads;
    return x;
  }
};

// Tiles task (b, h, q_block) computes; `mask` is the batch entry's TokenMask, `seq` its lengths.
BLITZ_INLINE int64_t task_tiles(const SabiShape &sabi, const SequenceGeometry &seq,
                                const TokenMask &mask, const BlockAxis &q_axis,
                                const BlockAxis &kv_axis, int64_t b, int64_t h, int64_t q_block) {
  const int64_t r0 = q_axis.begin(q_block);
  const int64_t r1 = min_i64(q_axis.end(q_block), seq.q_len);
  if (r0 >= r1) return 0;
  SabiRowCursor cursor = SabiRowCursor::for_row(sabi, b, h, q_block, seq.kv_blocks);
  int64_t tiles = 0, kb;
  while (cursor.next(&kb)) {
    if (mask.classify(r0, r1, kv_axis.begin(kb), kv_axis.end(kb)) != kTileAllMasked) ++tiles;
  }
  return tiles;
}

BLITZ_INLINE int64_t task_cost(int64_t tiles) { return tiles * kCostPerTile + kCostPerTask; }

// prefix[0..n]: prefix[0] = 0, prefix[t + 1] = prefix[t] + cost(t), costs > 0.
// Worker w of `workers` gets tasks [split_point(w), split_point(w + 1)). Each boundary is the
// prefix entry nearest to w/workers of the total, so a range exceeds its share by at most
// half a task's cost at each end.
BLITZ_INLINE int64_t split_point(const int64_t *prefix, int64_t n, int64_t workers, int64_t w) {
  if (w <= 0) return 0;
  if (w >= workers) return n;
  const int64_t total = prefix[n];
  // smallest t with prefix[t] * workers >= total * w (binary search; prefix is increasing)
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (prefix[mid] * workers >= total * w) hi = mid; else lo = mid + 1;
  }
  if (lo > 0) {
    const int64_t over = prefix[lo] * workers - total * w;
    const int64_t under = total * w - prefix[lo - 1] * workers;
    if (under < over) --lo;
  }
  return lo;
}

}  // namespace blitz

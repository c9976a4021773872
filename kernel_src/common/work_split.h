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

// The key blocks [lo, hi) task (b, h, q_block) may compute: those holding a key below the
// actual kv length that the token mask (modes 2-4) does not mask entirely for the block's rows
// below q_len. Equal to "TokenMask::classify(rows, block) != kTileAllMasked" block by block
// (tests/cpp checks that): classify's all-masked test is last_hi <= c0 or first_lo >= c1 with
// c1 = min(end, kv_len), and both ends are monotone in the block index, so the blocks that
// pass form one run. An explicit mask (mode 1) never makes a tile all-masked here. Empty
// (lo == hi) when the block has no row below q_len.
struct KeyBlockRange {
  int64_t lo, hi;
  BLITZ_INLINE bool holds(int64_t kb) const { return kb >= lo && kb < hi; }
};

BLITZ_INLINE KeyBlockRange task_key_blocks(const SequenceGeometry &seq, const TokenMask &mask,
                                           const BlockAxis &q_axis, const BlockAxis &kv_axis,
                                           int64_t q_block) {
  KeyBlockRange r;
  r.lo = r.hi = 0;
  const int64_t r0 = q_axis.begin(q_block);
  const int64_t r1 = min_i64(min_i64(q_axis.end(q_block), seq.q_len), mask.q_len);
  if (r0 >= r1) return r;
  int64_t first_lo, first_hi, last_lo, last_hi;
  mask.row_interval(r0, &first_lo, &first_hi);
  mask.row_interval(r1 - 1, &last_lo, &last_hi);
  const int64_t kv_len = min_i64(kv_axis.length, mask.kv_len);  // classify's clip of c1
  if (first_lo >= kv_len || last_hi <= 0) return r;
  // Blocks with a key < kv_len (and below sabi's bound, seq.kv_blocks); "last_hi <= c0" drops
  // kb >= ceil(last_hi / bkv); "first_lo >= c1" drops kb < floor(first_lo / bkv).
  const int64_t valid = min_i64(ceil_div(kv_len, kv_axis.block), seq.kv_blocks);
  r.hi = min_i64(valid, ceil_div(last_hi, kv_axis.block));
  r.lo = min_i64(max_i64(first_lo, 0) / kv_axis.block, r.hi);
  return r;
}

// Entries of row[begin, begin + n) inside `range` (0xFFFF and out-of-range indices never are:
// range.hi <= key blocks < 0xFFFF). `Row` is anything with GetValue(i) -> uint16_t: a plain
// row on the CPU and the host (PlainRow), a unified-buffer LocalTensor on the NPU.
template <typename Row>
BLITZ_INLINE int64_t count_in_range(const Row &row, int64_t begin, int64_t n, KeyBlockRange range) {
  int64_t tiles = 0;
  for (int64_t i = begin; i < begin + n; ++i) {
    if (range.holds((int64_t)row.GetValue(i))) ++tiles;
  }
  return tiles;
}

struct PlainRow {
  const uint16_t *data;
  BLITZ_INLINE uint16_t GetValue(int64_t i) const { return data[i]; }
};

// Tiles task (b, h, q_block) computes; `mask` is the batch entry's TokenMask, `seq` its lengths.
// The one cost rule: the CPU device, the NPU host tiling and the NPU kernel's split scan
// (kernel_src/common/split_scan.h) all count through task_key_blocks + count_in_range.
BLITZ_INLINE int64_t task_tiles(const SabiShape &sabi, const SequenceGeometry &seq,
                                const TokenMask &mask, const BlockAxis &q_axis,
                                const BlockAxis &kv_axis, int64_t b, int64_t h, int64_t q_block) {
  const KeyBlockRange range = task_key_blocks(seq, mask, q_axis, kv_axis, q_block);
  if (range.lo >= range.hi) return 0;
  if (sabi.dense()) return range.hi - range.lo;
  const uint16_t *row = sabi.row(b, h, q_block);
  if (row == 0) return 0;
  const PlainRow plain = {row};
  return count_in_range(plain, 0, sabi.width, range);
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

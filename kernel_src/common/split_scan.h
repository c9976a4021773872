// The weighted task split computed by streaming sabi, for a device that cannot hold a cost per
// task: the NPU kernel, whose host tiling never sees sabi's values (kernel_src/npu/README.md,
// "Work split"). Every worker runs the same scan over the same data, so all find the same
// ranges without talking to each other, and each keeps only its own [begin, end).
//
// Why two passes and no per-task array: tasks = B * N * ceil(Sq / bq) has no useful bound
// (B up to 65536), and the NPU's unified buffer holds ~192 KiB. Pass 1 sums every task's cost
// (task_key_blocks + count_in_range + task_cost: work_split.h, the rule the CPU device and the
// host tiling use); pass 2 re-walks the prefix sums until both of this worker's boundaries
// are found (SplitBoundary, the streaming form of split_point). Memory: two chunks of sabi.
//
// sabi uint16 [sabi_batch, sabi_heads, q_blocks, width] (sabi_rows == q_blocks, checked by the
// tiling); task t = (b, h, q_block) reads row (b or 0, h or 0, q_block). The rows of one (b, h)
// are contiguous, so the scan reads each (b, h)'s q_blocks * width entries as one region, in
// chunks of at most `chunk` entries; a broadcast row region is read once per (b, h) using it.
//
// The Source supplies memory and lengths (host tests: a plain array; NPU: DataCopyPad into
// two unified-buffer slots, kernel_src/npu/op_kernel/split_scan_gm.h):
//   void Prefetch(int slot, int64_t offset, int64_t count);  // start loading sabi[offset, +count)
//   Row  Acquire(int slot);       // wait for the slot's load; Row has GetValue(i), i < count
//   void Release(int slot);       // the scan is done reading the slot
//   SequenceGeometry Sequence(int64_t b);  // batch b's lengths (SequenceGeometry::make)
// Slots alternate 0, 1, 0, ...; slot k+1 is prefetched before slot k is acquired.
#pragma once

#include "platform.h"
#include "tile_geometry.h"
#include "token_mask.h"
#include "work_split.h"

namespace blitz {

// split_point(prefix, n, workers, w) from prefix[1], prefix[2], ... fed in order (prefix[0] = 0
// implied). Same answer: the smallest t with prefix[t] * workers >= total * w, moved back by one
// when prefix[t - 1] is nearer (costs > 0, so prefix increases and the linear search finds what
// the binary search does).
struct SplitBoundary {
  int64_t target;  // total * w, in units of prefix * workers
  int64_t workers;
  int64_t index;   // t of the last prefix fed
  int64_t prev;    // prefix[index]
  int64_t result;
  bool done;

  BLITZ_INLINE static SplitBoundary make(int64_t total, int64_t n, int64_t workers, int64_t w) {
    SplitBoundary s;
    s.target = total * w;
    s.workers = workers;
    s.index = 0;
    s.prev = 0;
    s.result = 0;
    s.done = true;
    if (w <= 0) return s;
    if (w >= workers) {
      s.result = n;
      return s;
    }
    s.done = s.target <= 0;  // prefix[0] = 0 already reaches it (only when total == 0)
    return s;
  }

  // prefix[index + 1]
  BLITZ_INLINE void feed(int64_t prefix) {
    ++index;
    if (!done && prefix * workers >= target) {
      result = index;
      const int64_t over = prefix * workers - target;
      const int64_t under = target - prev * workers;
      if (under < over) --result;
      done = true;
    }
    prev = prefix;
  }
};

struct SplitScanShape {
  int64_t batch, heads, q_blocks;
  int64_t sabi_batch, sabi_heads, width;  // sabi dims (rows = q_blocks)
  int64_t seq_q, seq_kv, block_q, block_kv;
  int mask_mode;                           // 0-4; 1 (explicit) never drops a tile
  int64_t pre_tokens, next_tokens;
  int64_t chunk;                           // entries per load, >= 1
};

template <typename Source>
class SplitScan {
public:
  BLITZ_INLINE SplitScan(const SplitScanShape &shape, Source *source) : s_(shape), src_(source) {
    tasks_ = s_.batch * s_.heads * s_.q_blocks;
    region_ = s_.q_blocks * s_.width;
    chunks_per_region_ = ceil_div(region_, s_.chunk);
    q_axis_ = BlockAxis::make(s_.seq_q, s_.block_q);
    kv_axis_ = BlockAxis::make(s_.seq_kv, s_.block_kv);
  }

  BLITZ_INLINE int64_t tasks() const { return tasks_; }

  // Worker w of `workers` gets tasks [*begin, *end): split_point's ranges over the tasks' costs.
  BLITZ_INLINE void range(int64_t workers, int64_t w, int64_t *begin, int64_t *end) {
    Total total;
    total.sum = 0;
    walk(&total);
    Bounds bounds;
    bounds.sum = 0;
    bounds.lo = SplitBoundary::make(total.sum, tasks_, workers, w);
    bounds.hi = SplitBoundary::make(total.sum, tasks_, workers, w + 1);
    if (!bounds.lo.done || !bounds.hi.done) walk(&bounds);
    // Both are found within the walk (prefix[tasks] reaches every target); n otherwise.
    *begin = bounds.lo.done ? bounds.lo.result : tasks_;
    *end = bounds.hi.done ? bounds.hi.result : tasks_;
  }

private:
  struct Total {
    int64_t sum;
    BLITZ_INLINE bool visit(int64_t cost) {
      sum += cost;
      return true;
    }
  };
  struct Bounds {
    int64_t sum;
    SplitBoundary lo, hi;
    BLITZ_INLINE bool visit(int64_t cost) {
      sum += cost;
      lo.feed(sum);
      hi.feed(sum);
      return !(lo.done && hi.done);  // stop early: the rest of sabi is not needed
    }
  };

  // Chunk k of the stream: region (b, h) = k / chunks_per_region_, then its part.
  BLITZ_INLINE void chunk_at(int64_t k, int64_t *offset, int64_t *count) const {
    const int64_t bh = k / chunks_per_region_;
    const int64_t part = k - bh * chunks_per_region_;
    const int64_t b = bh / s_.heads, h = bh - (bh / s_.heads) * s_.heads;
    const int64_t bb = s_.sabi_batch == 1 ? 0 : b;
    const int64_t hh = s_.sabi_heads == 1 ? 0 : h;
    const int64_t begin = part * s_.chunk;
    *offset = (bb * s_.sabi_heads + hh) * region_ + begin;
    *count = min_i64(s_.chunk, region_ - begin);
  }

  BLITZ_INLINE KeyBlockRange range_of(int64_t t) {
    const TaskIndex x = TaskIndex::decode(t, s_.heads, s_.q_blocks);
    if (x.b != cached_b_) {  // one batch entry's lengths and mask serve its heads x q_blocks tasks
      cached_b_ = x.b;
      seq_ = src_->Sequence(x.b);
      mask_ = TokenMask::make(s_.mask_mode, seq_.q_len, seq_.kv_len, s_.pre_tokens, s_.next_tokens, 0, 0);
    }
    return task_key_blocks(seq_, mask_, q_axis_, kv_axis_, x.q_block);
  }

  // Feeds every task's cost, in task order, to visitor->visit until it returns false.
  template <typename Visitor>
  BLITZ_INLINE void walk(Visitor *visitor) {
    const int64_t chunks = s_.batch * s_.heads * chunks_per_region_;
    if (tasks_ <= 0 || chunks <= 0) return;
    cached_b_ = -1;
    int64_t t = 0, pos = 0, tiles = 0;  // task, entries of its row seen, tiles counted so far
    KeyBlockRange range = range_of(0);
    int64_t offset, count;
    chunk_at(0, &offset, &count);
    src_->Prefetch(0, offset, count);
    for (int64_t k = 0; k < chunks; ++k) {
      const int slot = (int)(k & 1);
      int64_t n = count;
      if (k + 1 < chunks) {  // the next load overlaps this chunk's counting
        chunk_at(k + 1, &offset, &count);
        src_->Prefetch(1 - slot, offset, count);
      }
      bool stop = false;
      {
        const auto row = src_->Acquire(slot);
        for (int64_t i = 0; i < n && !stop;) {
          const int64_t seg = min_i64(n - i, s_.width - pos);
          tiles += count_in_range(row, i, seg, range);
          i += seg;
          pos += seg;
          if (pos < s_.width) continue;
          stop = !visitor->visit(task_cost(tiles));
          ++t;
          pos = 0;
          tiles = 0;
          if (t < tasks_) range = range_of(t);
        }
      }
      src_->Release(slot);
      if (stop) {
        if (k + 1 < chunks) {  // the prefetched load is in flight: wait for it before leaving
          src_->Acquire(1 - slot);
          src_->Release(1 - slot);
        }
        return;
      }
    }
  }

  SplitScanShape s_;
  Source *src_;
  int64_t tasks_ = 0, region_ = 0, chunks_per_region_ = 0;
  BlockAxis q_axis_, kv_axis_;
  int64_t cached_b_ = -1;
  SequenceGeometry seq_;
  TokenMask mask_;
};

}  // namespace blitz

// Tile geometry: how a sequence of `length` positions splits into blocks of `block` positions
// (block_shape; its limits are in op_limits.h), with the last block partial, and the per-batch
// lengths every rule of the kernel reads. Nothing here touches memory.
#pragma once

#include "platform.h"

namespace blitz {

// One axis cut into blocks: [0, length) -> count blocks of `block`, the last `tail` long
// (tail == block when length is a multiple of block; count == 0 when length == 0).
struct BlockAxis {
  int64_t length;
  int64_t block;
  int64_t count;
  int64_t tail;

  BLITZ_INLINE static BlockAxis make(int64_t length, int64_t block) {
    BlockAxis a;
    a.length = length > 0 ? length : 0;
    a.block = block;
    a.count = ceil_div(a.length, block);
    a.tail = a.count > 0 ? a.length - (a.count - 1) * block : 0;
    return a;
  }
  BLITZ_INLINE int64_t begin(int64_t i) const { return i * block; }
  // End of block i, clipped to the axis (and to `limit`, e.g. an actual length < length).
  BLITZ_INLINE int64_t end(int64_t i) const { return min_i64(begin(i) + block, length); }
  BLITZ_INLINE int64_t size(int64_t i) const { return end(i) - begin(i); }
};

// Valid lengths of one batch entry, resolved once: the actual lengths clipped to the tensor
// lengths (an absent list means the full length; a list of one entry applies to every batch).
struct SequenceGeometry {
  int64_t q_len;       // rows at positions >= q_len produce zeros
  int64_t kv_len;      // keys at positions >= kv_len are never attended
  int64_t kv_blocks;   // key blocks of the whole tensor: the bound every sabi index is checked against
  int64_t kv_blocks_valid;  // key blocks that hold at least one key < kv_len

  BLITZ_INLINE static SequenceGeometry make(int64_t batch_index, int64_t seq_q, int64_t seq_kv,
                                            int64_t block_kv, const int64_t *actual_q,
                                            int64_t actual_q_count, const int64_t *actual_kv,
                                            int64_t actual_kv_count) {
    SequenceGeometry g;
    g.q_len = seq_q;
    if (actual_q != 0 && actual_q_count > 0) {
      g.q_len = clamp_i64(actual_q[actual_q_count == 1 ? 0 : min_i64(batch_index, actual_q_count - 1)], 0, seq_q);
    }
    g.kv_len = seq_kv;
    if (actual_kv != 0 && actual_kv_count > 0) {
      g.kv_len = clamp_i64(actual_kv[actual_kv_count == 1 ? 0 : min_i64(batch_index, actual_kv_count - 1)], 0, seq_kv);
    }
    g.kv_blocks = ceil_div(seq_kv, block_kv);
    g.kv_blocks_valid = ceil_div(g.kv_len, block_kv);
    return g;
  }
};

}  // namespace blitz

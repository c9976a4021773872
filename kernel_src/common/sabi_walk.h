// Walking sabi (sparse attention block indices) rows.
//
// sabi is uint16 [sabi_batch, sabi_heads, sabi_rows, sabi_width], contiguous; row (b, h, i)
// lists the key blocks query block i of (batch b, head h) attends. sabi_batch / sabi_heads of 1
// broadcast. 0xFFFF anywhere means "no block". Indices are never trusted: an index >= the number
// of key blocks acts as "no block" (validation may be off), so a bad row gives wrong zeros, never
// an out-of-bounds access.
#pragma once

#include "platform.h"

namespace blitz {

struct SabiShape {
  const uint16_t *data;  // nullptr = dense: every key block
  int64_t batch, heads, rows, width;

  BLITZ_INLINE bool dense() const { return data == 0; }

  // Row (b, h, q_block), honouring size-1 broadcast; nullptr if the row does not exist
  // (a q_block past sabi_rows, or b / h past a non-broadcast dim).
  BLITZ_INLINE const uint16_t *row(int64_t b, int64_t h, int64_t q_block) const {
    const int64_t bb = batch == 1 ? 0 : b;
    const int64_t hh = heads == 1 ? 0 : h;
    if (data == 0 || bb >= batch || hh >= heads || q_block >= rows || q_block < 0) return 0;
    return data + ((bb * heads + hh) * rows + q_block) * width;
  }
};

// Yields the valid key-block indices of one row in row order:
//   SabiRowCursor c = SabiRowCursor::over(row, width, kv_blocks);
//   int64_t kb; while (c.next(&kb)) { ... }
// A dense cursor yields 0 .. kv_blocks-1; an empty one yields nothing.
struct SabiRowCursor {
  const uint16_t *row;
  int64_t width;
  int64_t kv_blocks;  // every yielded index is < kv_blocks
  int64_t pos;
  bool is_dense;

  BLITZ_INLINE static SabiRowCursor over(const uint16_t *row, int64_t width, int64_t kv_blocks) {
    SabiRowCursor c;
    c.row = row;
    c.width = row != 0 ? width : 0;
    c.kv_blocks = kv_blocks;
    c.pos = 0;
    c.is_dense = false;
    return c;
  }
  BLITZ_INLINE static SabiRowCursor dense(int64_t kv_blocks) {
    SabiRowCursor c = over(0, 0, kv_blocks);
    c.is_dense = true;
    return c;
  }
  // The cursor for (b, h, q_block) of a sabi (dense when sabi is absent).
  BLITZ_INLINE static SabiRowCursor for_row(const SabiShape &sabi, int64_t b, int64_t h,
                                            int64_t q_block, int64_t kv_blocks) {
    if (sabi.dense()) return dense(kv_blocks);
    return over(sabi.row(b, h, q_block), sabi.width, kv_blocks);
  }

  BLITZ_INLINE bool next(int64_t *kv_block) {
    if (is_dense) {
      if (pos >= kv_blocks) return false;
      *kv_block = pos++;
      return true;
    }
    while (pos < width) {
      const uint16_t v = row[pos++];
      if (v == kSabiNoBlock || (int64_t)v >= kv_blocks) continue;  // "no block", or out of range
      *kv_block = (int64_t)v;
      return true;
    }
    return false;
  }
};

// No normaliser here: the one normal form of rows (sorted, unique, PAD-padded) is Python's
// blitz_acl.sabi.compact, which the binding applies for the NPU devices only (their kernel
// cannot refuse a repeated index). The CPU device refuses bad rows itself (cann_api/op_checks.cpp,
// for C callers too) and the cursor above reads rows in any order.

}  // namespace blitz

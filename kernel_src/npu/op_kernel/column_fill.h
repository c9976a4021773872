// How a column range [begin, end) of a float row in the unified buffer is set with Duplicate,
// whose operands must start on a 32-byte (8-float) boundary: an unaligned head inside one
// 8-column block (bit-mask form), the aligned middle (count form), an unaligned tail inside one
// block (bit-mask form). Plain integer arithmetic shared by the kernel (mask_ops.h) and the g++
// unit tests (tests/npu_host), which check that the three parts cover exactly [begin, end).
#pragma once

#include "platform.h"

namespace blitz_npu {

constexpr uint32_t kFillBlock = 8;  // floats per 32-byte datablock

struct ColumnFill {
  uint32_t headBlock;  // first column of the head's block; headBits == 0: no head
  uint64_t headBits;   // bit c set: column headBlock + c
  uint32_t midBegin;   // a multiple of 8; midCount == 0: no middle
  uint32_t midCount;
  uint32_t tailBlock;  // first column of the tail's block; tailBits == 0: no tail
  uint64_t tailBits;

  BLITZ_INLINE static uint64_t bits(uint32_t from, uint32_t to) {  // bits [from, to) of one block
    uint64_t b = 0;
    for (uint32_t c = from; c < to; ++c) b |= uint64_t(1) << c;
    return b;
  }

  BLITZ_INLINE static ColumnFill plan(uint32_t begin, uint32_t end) {
    ColumnFill f{0, 0, 0, 0, 0, 0};
    if (begin >= end) return f;
    const uint32_t head = begin / kFillBlock * kFillBlock;
    if (head != begin) {
      const uint32_t stop = end < head + kFillBlock ? end : head + kFillBlock;
      f.headBlock = head;
      f.headBits = bits(begin - head, stop - head);
      begin = stop;
      if (begin >= end) return f;
    }
    const uint32_t tail = end / kFillBlock * kFillBlock;
    if (tail > begin) {
      f.midBegin = begin;
      f.midCount = tail - begin;
      begin = tail;
    }
    if (begin < end) {
      f.tailBlock = begin;
      f.tailBits = bits(0, end - begin);
    }
    return f;
  }
};

}  // namespace blitz_npu

// Token masks applied to a score slice in the unified buffer, for the tiles the classification
// (kernel_src/common/token_mask.h) calls mixed. Scores are a [rows, rowLen] float tile (rowLen
// a multiple of 32); a masked score becomes kMaskScore, which the softmax weighs as 0 next to any
// real score (a row with nothing but masked scores is caught by its running max, see
// IsMaskedRowMax).
//
// APIs (asc-devkit docs/zh/api/SIMD-API/基础API/Memory矢量计算/): Duplicate (数据填充/Duplicate.md:
// count form and bit-mask form, 32-byte aligned start), Cast uint8_t -> half CAST_NONE
// (类型转换/Cast.md, Atlas A2 table), Compares (比较与选择/Compares.md: count elements must span
// whole 256-byte repeats), Select VSEL_TENSOR_SCALAR_MODE (比较与选择/Select.md).
#pragma once

#include "kernel_operator.h"
#include "column_fill.h"

namespace blitz_npu {

// Score of a masked (or padding) column: exp(kMaskScore - max) == 0 for any real max, and
// unlike -inf it cannot make inf - inf = NaN inside the softmax.
constexpr float kMaskScore = -3.0e38f;
// A row whose running max is below this saw no real score: every key it met was masked.
constexpr float kMaskedRowMax = -1.0e38f;

__aicore__ inline bool IsMaskedRowMax(float rowMax) { return rowMax < kMaskedRowMax; }

constexpr uint32_t kHalfPerRepeat = 128;       // one 256-byte vector repeat of half

// Sets columns [begin, end) of the float row starting at tile[rowOffset] (rowOffset a multiple
// of 8) to `value`, in the parts ColumnFill::plan gives (column_fill.h).
__aicore__ inline void FillColumns(const AscendC::LocalTensor<float> &tile, uint32_t rowOffset,
                                   uint32_t begin, uint32_t end, float value)
{
  const ColumnFill f = ColumnFill::plan(begin, end);
  // Duplicate(dst, scalar, mask[], repeatTime, dstBlockStride, dstRepeatStride): one repeat;
  // for float only mask[0] counts (64 elements), and only its low 8 bits are ever set here.
  if (f.headBits != 0) {
    uint64_t bits[2] = {f.headBits, 0};
    AscendC::Duplicate(tile[rowOffset + f.headBlock], value, bits, 1, 1, 8);
  }
  if (f.midCount != 0) {
    AscendC::Duplicate(tile[rowOffset + f.midBegin], value, static_cast<int32_t>(f.midCount));
  }
  if (f.tailBits != 0) {
    uint64_t bits[2] = {f.tailBits, 0};
    AscendC::Duplicate(tile[rowOffset + f.tailBlock], value, bits, 1, 1, 8);
  }
}

// scores[e] = mask[e] == 0 ? scores[e] : kMaskScore over `count` elements of a slice, where
// maskBytes holds the explicit mask's bytes in the scores' [rows, rowLen] layout (any nonzero
// byte = masked out, so bool, int8 and uint8 masks read alike). maskHalf / allowedBits are
// scratch of the slice's full size; `countAligned` >= count is count rounded up to whole half
// repeats (Compares only takes those), still inside the scratch.
__aicore__ inline void ApplyExplicitMask(const AscendC::LocalTensor<float> &scores,
                                         const AscendC::LocalTensor<uint8_t> &maskBytes,
                                         const AscendC::LocalTensor<half> &maskHalf,
                                         const AscendC::LocalTensor<uint8_t> &allowedBits, uint32_t count)
{
  const uint32_t countAligned = (count + kHalfPerRepeat - 1) / kHalfPerRepeat * kHalfPerRepeat;
  AscendC::Cast(maskHalf, maskBytes, AscendC::RoundMode::CAST_NONE, countAligned);
  // Bit e = 1 where the key is allowed (mask byte 0): Select keeps the score there.
  AscendC::Compares(allowedBits, maskHalf, static_cast<half>(0.0f), AscendC::CMPMODE::EQ, countAligned);
  AscendC::Select(scores, allowedBits, scores, kMaskScore, AscendC::SELMODE::VSEL_TENSOR_SCALAR_MODE, count);
}

}  // namespace blitz_npu

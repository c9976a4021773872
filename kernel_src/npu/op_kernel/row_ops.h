// Row-wise vector helpers on [rows, cols] float tiles in the unified buffer, where a per-row
// statistic is stored as [rows, 8]: one 32-byte datablock per row holding the value 8 times
// (the layout SoftmaxFlashV2 writes its max / sum / expmax in).
#pragma once

#include "kernel_operator.h"

#include "blitz_tiling_params.h"  // kFloatsPerRepeat, kFloatsPerBlock

namespace blitz_npu {

// dst[r, c] = src[r, c] (*|/) stat[r] for r < rows, c < cols (cols a multiple of 8, rows <= 255).
// Each repeat covers one row's 64-column chunk; src1's block stride 0 re-reads the row's one
// statistic block for all 8 blocks of the repeat, and its repeat stride 1 steps to the next row.
template <bool kDivide>
__aicore__ inline void RowBroadcast(const AscendC::LocalTensor<float> &dst,
                                    const AscendC::LocalTensor<float> &src,
                                    const AscendC::LocalTensor<float> &stat, uint32_t rows,
                                    uint32_t cols)
{
  const uint8_t rowBlocks = static_cast<uint8_t>(cols / kFloatsPerBlock);
  // BinaryRepeatParams field order: dstBlkStride, src0BlkStride, src1BlkStride,
  //                                 dstRepStride, src0RepStride, src1RepStride.
  const AscendC::BinaryRepeatParams params(1, 1, 0, rowBlocks, rowBlocks, 1);
  for (uint32_t c = 0; c < cols; c += kFloatsPerRepeat) {
    const uint64_t mask = cols - c < kFloatsPerRepeat ? cols - c : kFloatsPerRepeat;
    if constexpr (kDivide) {
      AscendC::Div(dst[c], src[c], stat, mask, static_cast<uint8_t>(rows), params);
    } else {
      AscendC::Mul(dst[c], src[c], stat, mask, static_cast<uint8_t>(rows), params);
    }
  }
}

// Sets columns [validCols, rowLen) of every row of a [rows, rowLen] float tile to `value`
// (rowLen a multiple of 32, validCols > rowLen - 32): the tail of a partial key block, so the
// softmax sees those columns as -inf-like and gives them weight 0.
__aicore__ inline void FillRowTails(const AscendC::LocalTensor<float> &tile, uint32_t rows,
                                    uint32_t rowLen, uint32_t validCols, float value)
{
  constexpr uint32_t kTailSpan = 32;  // the last 32 columns (four datablocks) of each row
  if (validCols >= rowLen) return;
  const uint32_t first = validCols - (rowLen - kTailSpan);  // first padded column in the span
  uint64_t mask[2] = {0, 0};
  for (uint32_t i = first; i < kTailSpan; ++i) mask[0] |= (uint64_t(1) << i);
  // One repeat per row, starting at the row's last 16 columns; repeat stride = row length in
  // datablocks. Duplicate(dst, scalar, mask[], repeatTime, dstBlockStride, dstRepeatStride).
  AscendC::Duplicate(tile[rowLen - kTailSpan], value, mask, static_cast<uint8_t>(rows), 1,
                     static_cast<uint8_t>(rowLen / kFloatsPerBlock));
}

}  // namespace blitz_npu

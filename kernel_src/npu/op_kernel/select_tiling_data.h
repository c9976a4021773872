// BlitzSelectBlocks' tiling data as the kernel reads it (GET_TILING_DATA_WITH_STRUCT) and the host
// fills it: the plain parameters plus the tilings of CANN's Matmul (block logits) and
// SoftmaxFlashV2 (one score row) APIs.
#pragma once

#include "kernel_tiling/kernel_tiling.h"
#include "select_tiling_params.h"

struct BlitzSelectBlocksTilingData {
  blitz_npu::SelectTilingParams params;
  AscendC::tiling::TCubeTiling scores;     // logits [group, cols] = pooled Q [group, D] x pooled K^T
  AscendC::tiling::SoftMaxTiling softmax;  // one score row [1, cols_aligned]
};

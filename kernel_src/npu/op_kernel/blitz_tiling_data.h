// BlitzSparseAttention's tiling data as the kernel reads it (GET_TILING_DATA_WITH_STRUCT) and
// the host tiling fills it (TilingContext::GetTilingData): our plain parameters plus the
// tilings of CANN's Matmul (Q*K^T, P*V) and SoftmaxFlashV2 APIs, from kernel_tiling.h.
#pragma once

#include "kernel_tiling/kernel_tiling.h"
#include "blitz_tiling_params.h"

struct BlitzSparseAttentionTilingData {
  blitz_npu::BlitzTilingParams params;
  AscendC::tiling::TCubeTiling qk;        // scores  [group_rows, bkv]  = Q [group_rows, D] x K^T
  AscendC::tiling::TCubeTiling pv;        // P*V     [group_rows, D]    = P [group_rows, bkv] x V
  AscendC::tiling::SoftMaxTiling softmax; // one score slice [slice_rows, kv_block_aligned]
};

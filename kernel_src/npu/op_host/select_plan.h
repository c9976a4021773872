// BlitzSelectBlocks' tiling arithmetic as pure functions: shapes, attributes, the actual lengths
// and the core counts in; the tiling parameters (op_kernel/select_tiling_params.h) or a refusal
// out. No CANN here, so tests/npu_host compiles and tests it with g++, and the npu_sim launcher
// (kernel_src/npu/sim/launcher/select_launch.cpp) runs it as CANN's tiling function would.
// Query and key are read as BlitzSparseAttention's plan reads them (tiling_plan.h's readers);
// what the NPU op does not implement yet (select_npu_limits.h, from the spec) is refused.
#pragma once

#include <cstdint>
#include <string>

#include "../op_kernel/select_tiling_params.h"
#include "select_npu_limits.h"
#include "tiling_plan.h"

namespace blitz_npu {

struct SelectRequest {
  int64_t q_dims[kMaxRank] = {};
  int64_t k_dims[kMaxRank] = {};
  int q_rank = 0, k_rank = 0;
  // The attributes start at the op's defaults (the spec's, select_npu_limits.h); the glue
  // overwrites each one it reads.
  std::string layout = select_limits::kDefaultInputLayout;
  bool dtype_supported = false;  // query and key both fp16, or both bf16 (the glue checks the enum)
  uint32_t dtype_size = 2;
  int64_t num_heads = select_limits::kDefaultNumHeads;
  int64_t num_kv_heads = select_limits::kDefaultNumKeyValueHeads;  // 0 = num_heads
  double scale_value = select_limits::kDefaultScaleValue;  // 0 = 1 / sqrt(D)
  // The blockShape attribute; NULL / empty means the attention's default (the glue keeps these).
  int64_t block_q = blitz::limits::kDefaultBlockQ, block_kv = blitz::limits::kDefaultBlockKv;
  std::string method = select_limits::kDefaultMethod;
  double mass = select_limits::kDefaultMass;
  int64_t top_k = select_limits::kDefaultTopK;
  int64_t anchor_first = select_limits::kDefaultAnchorFirst;
  bool anchor_diagonal = select_limits::kDefaultAnchorDiagonal, anchor_last = select_limits::kDefaultAnchorLast;
  bool share_kv_groups = select_limits::kDefaultShareKvGroups;
  double refine_below = select_limits::kDefaultRefineBelow;
  int64_t sub_block = select_limits::kDefaultSubBlock;
  int64_t stride = select_limits::kDefaultStride;  // antidiagonal: the cell side in tokens
  // The attention's index mask: not seen by the NPU op yet (refused unless 0).
  int64_t sparse_mode = select_limits::kDefaultSparseMode;
  // Actual lengths (host values, value-depend inputs), count 0 = absent.
  const int64_t *actual_q = nullptr;
  int64_t actual_q_count = 0;
  const int64_t *actual_kv = nullptr;
  int64_t actual_kv_count = 0;
  CoreInfo cores{};
  SoftmaxTmpBytesFn softmax_tmp_bytes = nullptr;  // GetSoftMaxFlashV2MinTmpSize for [rows, cols] float
  void *softmax_tmp_user = nullptr;
};

struct SelectPlan {
  bool ok = false;
  std::string error;
  SelectTilingParams params{};
};

SelectPlan plan_select(const SelectRequest &request);

// Pieces, for the tests: the unified buffer bytes for a chunk of token rows and a score row of
// cols_aligned floats, and the most columns (a multiple of 64) that fit `ub_bytes`.
// refining: the sub-block refinement's buffers too (the kernel has them only then), with a
// key-unit row of k_units_aligned floats; without it a block is one unit (k_units_aligned unused).
// cells: the antidiagonal method's buffers instead (key units are cells; refining is false then).
uint64_t select_ub_bytes(int64_t chunk_rows, int64_t head_dim, uint32_t dtype_size, int64_t cols_aligned,
                         uint32_t softmax_tmp, bool refining = false, int64_t k_units_aligned = 0,
                         bool cells = false);
// units_per_block: key units a block may split into when refining (cells: ceil(bkv / stride)).
int64_t select_max_cols(int64_t chunk_rows, int64_t head_dim, uint32_t dtype_size, uint64_t ub_bytes,
                        uint32_t softmax_tmp, bool refining = false, int64_t units_per_block = 1,
                        bool cells = false);

}  // namespace blitz_npu

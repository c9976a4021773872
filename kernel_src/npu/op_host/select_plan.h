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
#include "tiling_plan.h"

namespace blitz_npu {

struct SelectRequest {
  int64_t q_dims[kMaxRank] = {};
  int64_t k_dims[kMaxRank] = {};
  int q_rank = 0, k_rank = 0;
  std::string layout = "BNSD";
  bool dtype_supported = false;  // query and key both fp16, or both bf16 (the glue checks the enum)
  uint32_t dtype_size = 2;
  int64_t num_heads = 1;
  int64_t num_kv_heads = 0;  // 0 = num_heads
  double scale_value = 0.0;  // 0 = 1 / sqrt(D)
  int64_t block_q = 128, block_kv = 128;  // the blockShape attribute, NULL / empty resolved to (128, 128)
  std::string method = "mean_pool";
  double mass = 0.0;
  int64_t top_k = 0;
  int64_t anchor_first = 1;
  bool anchor_diagonal = true, anchor_last = true;
  bool share_kv_groups = false;
  double refine_below = 0.0;
  int64_t sub_block = 32;
  int64_t stride = 8;  // antidiagonal: the cell side in tokens
  int64_t sparse_mode = 0;  // the attention's index mask: not seen by the NPU op yet (refused unless 0)
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

// BlitzSparseAttention's arguments as the aclnn entry points receive them (OpArgs), and the
// checked, resolved call they become (Plan): an AttentionProblem plus the copies it points into.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "aclnnop/aclnn_blitz_sparse_attention.h"
#include "kernel/attention_problem.h"

namespace blitz::cpu::runtime {

// The 27 parameters of aclnnBlitzSparseAttentionGetWorkspaceSize, by name.
struct OpArgs {
  const aclTensor *query = nullptr, *key = nullptr, *value = nullptr;
  const aclTensor *pse_shift = nullptr, *atten_mask = nullptr, *sabi = nullptr;
  const aclIntArray *actual_seq_lengths = nullptr, *actual_seq_lengths_kv = nullptr;
  const aclTensor *deq_scale1 = nullptr, *quant_scale1 = nullptr, *deq_scale2 = nullptr;
  const aclTensor *quant_scale2 = nullptr, *quant_offset2 = nullptr;
  int64_t num_heads = 0;
  double scale_value = 1.0;
  int64_t pre_tokens = 0, next_tokens = 0;
  const char *input_layout = nullptr;
  int64_t num_key_value_heads = 0, sparse_mode = 0, inner_precise = 0;
  bool softmax_lse_flag = false;
  const aclIntArray *block_shape = nullptr;
  const aclTensor *attention_out = nullptr, *softmax_lse = nullptr;
};

struct Plan {
  AttentionProblem problem;
  // Owned copies of the length arrays (the caller may destroy its aclIntArrays before the
  // queued run executes); problem.actual_seq_q / actual_seq_kv point into them.
  std::vector<int64_t> actual_seq_q, actual_seq_kv;
  // TND: each batch's first query / key token (problem.q_start / kv_start point into them).
  std::vector<int64_t> q_start, kv_start;
  int num_threads = 1;
  size_t workspace_bytes = 0;
  bool empty = false;  // no output element to write: the run enqueues nothing
  // What the library's backend (backend.h) derived from the call, e.g. the NPU tiling.
  std::shared_ptr<const void> backend_state;
};

// Checks every argument and resolves the call; throws StatusError (ACLNN_ERR_PARAM_NULLPTR or
// ACLNN_ERR_PARAM_INVALID with a message naming the argument) on bad input.
std::shared_ptr<Plan> build_plan(const OpArgs &args);

}  // namespace blitz::cpu::runtime

// BlitzSelectBlocks' arguments as its aclnn entry point receives them, and their checks.
#pragma once

#include <cstdint>

#include "aclnnop/aclnn_blitz_select_blocks.h"
#include "select/select_problem.h"

namespace blitz::cpu::select {

// The parameters of aclnnBlitzSelectBlocksGetWorkspaceSize (aclnn_gen/spec.py's SELECT_OP), by name.
struct SelectArgs {
  const aclTensor *query = nullptr, *key = nullptr;
  const aclIntArray *actual_seq_lengths = nullptr, *actual_seq_lengths_kv = nullptr;
  int64_t num_heads = 0, num_key_value_heads = 0;
  const char *input_layout = nullptr;
  double scale_value = 0.0;
  const aclIntArray *block_shape = nullptr;
  const char *method = nullptr;
  double mass = 0.0;
  int64_t top_k = 0, anchor_first = 0;
  bool anchor_diagonal = false, anchor_last = false, share_kv_groups = false;
  int64_t stride = 0, sub_block = 0;
  double refine_below = 0.0;
  const aclTensor *sabi = nullptr;
};

// Checks every argument (StatusError naming it on bad input) and resolves the layouts.
SelectProblem build_select_problem(const SelectArgs &args);

}  // namespace blitz::cpu::select

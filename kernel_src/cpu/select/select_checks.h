// BlitzSelectBlocks' arguments as its aclnn entry point receives them, and their checks.
#pragma once

#include <cstdint>
#include <memory>

#include "aclnnop/aclnn_blitz_select_blocks.h"
#include "cann_api/op_work.h"
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
  int64_t sparse_mode = 0, pre_tokens = 0, next_tokens = 0;
  const aclTensor *sabi = nullptr;
};

// Checks every argument (StatusError naming it on bad input) and resolves the layouts.
SelectProblem build_select_problem(const SelectArgs &args);

// The executor's op type for BlitzSelectBlocks (a run call checks it).
constexpr const char kSelectOpType[] = "BlitzSelectBlocks";

// The checked call as the device library runs it; each library defines it once: the CPU device
// (select_entry.cpp: run_select on the host), npu_sim (kernel_src/npu/sim/launcher/
// select_sim_entry.cpp: the NPU plan and the Ascend C kernel through the execution model).
// Throws StatusError on bad input. The entry points (select_export.cpp) call it.
std::shared_ptr<const cann_api::OpWork> make_select_work(const SelectArgs &args);

}  // namespace blitz::cpu::select

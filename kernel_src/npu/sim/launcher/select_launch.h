// BlitzSelectBlocks run on the host (launcher.h's counterpart): the real op_host plan
// (select_plan.cpp) with the 910B's cores, then one MIX_AIC_1_2 launch of the real kernel entry
// (op_kernel/blitz_select_blocks.cpp, once per input dtype) through the execution model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "launcher.h"
#include "select_tiling_data.h"
#include "../../op_host/select_plan.h"

namespace blitz_npu_sim {

// A call as CANN's TilingContext presents it (shapes, attributes, the host copies of the
// actual lengths) plus where its tensors live.
struct SelectSimCall {
  blitz_npu::SelectRequest request;
  bool bf16 = false;  // DTYPE_QUERY of the kernel binary: bfloat16_t, else half
  GmTensor query, key, sabi;
  std::vector<int64_t> actual_q, actual_kv;  // empty = absent
};

struct SelectSimPlan {
  bool ok = false;
  std::string error;
  BlitzSelectBlocksTilingData tiling{};
  uint32_t block_dim = 0;
  uint64_t workspace_bytes = 0;
};

// Runs the plan (and the Matmul / softmax tilings the glue would add); ok false carries its refusal.
SelectSimPlan plan_select(SelectSimCall &call, const blitz_npu::CoreInfo &cores);

// Registers every GM range and runs the launch (serialised with every other launch).
blitz_sim::LaunchReport launch_select(const SelectSimCall &call, const SelectSimPlan &plan, void *workspace);

}  // namespace blitz_npu_sim

// BlitzSelectBlocks' arguments as its aclnn entry point receives them, and their checks.
#pragma once

#include <cstdint>
#include <memory>

#include "cann_api/op_work.h"
#include "select/select_args.h"  // SelectArgs: the parameters by name (generated)
#include "select/select_problem.h"

namespace blitz::cpu::select {

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

// libblitz_cpu.so's backend (cann_api/backend.h): the CPU attention kernel (kernel/).
#include "common/op_refusals.h"
#include "kernel/attention_problem.h"
#include "kernel/cpu_features.h"
#include "cann_api/backend.h"

namespace blitz::cpu::cann_api::backend {

void prepare(OpPlan &plan, const OpArgs & /*args*/) {
  plan.num_threads = default_num_threads();
  plan.workspace_bytes = plan.empty ? 0 : workspace_size(plan.problem, plan.num_threads);
}

TaskStatus run(const OpPlan &plan, void *workspace) {
  const char *error = nullptr;
  const int rc = run_attention(plan.problem, workspace, plan.workspace_bytes, plan.num_threads, KernelPath::kAuto,
                               &error);
  if (rc == 0) return {};
  return {ACLNN_ERR_INNER, std::string("BlitzSparseAttention kernel failed: ") + (error ? error : "no message")};
}

std::string describe() {
  // Rebuilt each call: the path and thread count follow the environment at call time.
  return std::string("kernel path ") + path_name(resolve_path(KernelPath::kAuto)) + "; threads " +
         std::to_string(default_num_threads()) + "; " + isa_summary();
}

const char *title() { return limits::kCpuTitle; }

}  // namespace blitz::cpu::cann_api::backend

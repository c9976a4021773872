// libblitz_cpu.so's backend (cann_api/backend.h): the CPU attention kernel (kernel/), run with
// the caller's device settings (kernel_settings.h).
#include "backend/kernel_settings.h"
#include "cann_api/backend.h"
#include "cann_api/errors.h"
#include "common/op_refusals.h"
#include "kernel/attention_problem.h"
#include "kernel/cpu_features.h"

namespace blitz::cpu::cann_api::backend {
namespace {

KernelSettings settings_or_throw() {
  KernelSettings settings;
  std::string error;
  if (!current_kernel_settings(&settings, &error)) fail(ACLNN_ERR_PARAM_INVALID, error);
  return settings;
}

}  // namespace

void prepare(OpPlan &plan, const OpArgs & /*args*/) {
  const KernelSettings settings = settings_or_throw();
  plan.kernel_path = settings.path;
  plan.num_threads = settings.num_threads;
  plan.workspace_bytes = plan.empty ? 0 : workspace_size(plan.problem, plan.num_threads);
}

TaskStatus run(const OpPlan &plan, void *workspace) {
  const char *error = nullptr;
  const int rc = run_attention(plan.problem, workspace, plan.workspace_bytes, plan.num_threads, plan.kernel_path,
                               &error);
  if (rc == 0) return {};
  return {ACLNN_ERR_INNER, std::string("BlitzSparseAttention kernel failed: ") + (error ? error : "no message")};
}

std::string describe() {
  // Rebuilt each call: the path and thread count are this thread's current settings.
  const KernelSettings settings = settings_or_throw();
  return std::string("kernel path ") + path_name(resolve_path(settings.path)) + "; threads " +
         std::to_string(settings.num_threads) + "; " + isa_summary();
}

void configure(const char *path, int num_threads) {
  KernelSettings settings;
  std::string error;
  require(parse_kernel_settings(path, num_threads, "kernel path", &settings, &error), ACL_ERROR_INVALID_PARAM, error);
  set_thread_kernel_settings(settings);
}

const char *title() { return limits::kCpuTitle; }

}  // namespace blitz::cpu::cann_api::backend

// BlitzSparseAttention's aclnn entry points (the newest original prototype, 27 parameters) and
// the executor calls. GetWorkspaceSize (exported by the generated op_export.cpp, which fills
// OpArgs by name) checks and plans (op_checks.cpp); the run call enqueues the kernel on the
// stream with the caller's workspace and frees a non-repeatable executor. The other ops of the
// library (op_work.h) go through the same executor registry and lifecycle.
#include <mutex>
#include <string>

#include "backend.h"
#include "errors.h"
#include "exports.h"
#include "handles.h"
#include "op_plan.h"
#include "op_work.h"
#include "stream.h"

namespace blitz::cpu::cann_api {

Registry<aclOpExecutor> &executor_registry() {
  static Registry<aclOpExecutor> registry;
  return registry;
}

namespace {

std::mutex &executor_lifecycle_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

// The exported GetWorkspaceSize (op_export.cpp, generated) fills OpArgs by name and calls this.
aclnnStatus get_workspace_size(const char *function, const OpArgs &args, uint64_t *workspace_size,
                               aclOpExecutor **executor) {
  return guarded(function, [&] {
    require(workspace_size != nullptr, ACLNN_ERR_PARAM_NULLPTR, "workspaceSize is NULL");
    require(executor != nullptr, ACLNN_ERR_PARAM_NULLPTR, "executor is NULL");
    *executor = nullptr;
    *workspace_size = 0;
    auto handle = std::make_unique<aclOpExecutor>();
    std::shared_ptr<OpPlan> plan = build_plan(args);
    backend::prepare(*plan, args);
    handle->plan = std::move(plan);
    *workspace_size = handle->plan->workspace_bytes;
    executor_registry().add(handle.get());
    *executor = handle.release();
    return ACLNN_SUCCESS;
  });
}

namespace {

// What a run call takes from its executor: a copy of the shared call, made under the lifecycle
// lock; a non-repeatable executor is freed (consumed whatever happens next, as in CANN).
aclOpExecutor take_executor(aclOpExecutor *executor) {
  require(executor != nullptr, ACLNN_ERR_PARAM_NULLPTR, "executor is NULL");
  // One lock for lookup and release: two threads running one executor cannot both free it.
  std::lock_guard<std::mutex> lock(executor_lifecycle_mutex());
  require(executor_registry().contains(executor), ACLNN_ERR_PARAM_INVALID,
          "executor is not a live aclOpExecutor (already run, or destroyed)");
  aclOpExecutor taken = *executor;
  if (!executor->repeatable) {
    executor_registry().remove(executor);
    delete executor;
  }
  return taken;
}

void require_workspace(void *workspace, uint64_t workspace_size, uint64_t needed) {
  require(workspace_size >= needed, ACLNN_ERR_PARAM_INVALID,
          "workspaceSize " + std::to_string(workspace_size) + " is smaller than the " + std::to_string(needed) +
              " bytes GetWorkspaceSize asked for");
  require(needed == 0 || workspace != nullptr, ACLNN_ERR_PARAM_NULLPTR,
          "workspace is NULL but " + std::to_string(needed) + " bytes are needed");
}

aclnnStatus run(const char *function, void *workspace, uint64_t workspace_size,
                aclOpExecutor *executor, aclrtStream stream) {
  return guarded(function, [&] {
    std::shared_ptr<const OpPlan> plan = take_executor(executor).plan;
    require(plan != nullptr, ACLNN_ERR_PARAM_INVALID,
            "executor was made by another op's GetWorkspaceSize, not aclnnBlitzSparseAttentionGetWorkspaceSize");
    require_workspace(workspace, workspace_size, plan->workspace_bytes);
    Stream &target = stream_from_handle(stream);
    if (plan->empty) return ACLNN_SUCCESS;
    target.enqueue([plan, workspace]() -> TaskStatus { return backend::run(*plan, workspace); });
    return ACLNN_SUCCESS;
  });
}

}  // namespace

aclnnStatus work_get_workspace_size(const char *function, const std::function<std::shared_ptr<const OpWork>()> &build,
                                    uint64_t *workspace_size, aclOpExecutor **executor) {
  return guarded(function, [&] {
    require(workspace_size != nullptr, ACLNN_ERR_PARAM_NULLPTR, "workspaceSize is NULL");
    require(executor != nullptr, ACLNN_ERR_PARAM_NULLPTR, "executor is NULL");
    *executor = nullptr;
    *workspace_size = 0;
    auto handle = std::make_unique<aclOpExecutor>();
    handle->work = build();
    *workspace_size = handle->work->workspace_bytes();
    executor_registry().add(handle.get());
    *executor = handle.release();
    return ACLNN_SUCCESS;
  });
}

aclnnStatus work_run(const char *function, const char *op_type, void *workspace, uint64_t workspace_size,
                     aclOpExecutor *executor, aclrtStream stream) {
  return guarded(function, [&] {
    std::shared_ptr<const OpWork> work = take_executor(executor).work;
    require(work != nullptr && std::string(work->op_type()) == op_type, ACLNN_ERR_PARAM_INVALID,
            std::string("executor was made by another op's GetWorkspaceSize, not aclnn") + op_type +
                "GetWorkspaceSize");
    require_workspace(workspace, workspace_size, work->workspace_bytes());
    Stream &target = stream_from_handle(stream);
    if (work->empty()) return ACLNN_SUCCESS;
    target.enqueue([work, workspace]() -> TaskStatus { return work->run(workspace); });
    return ACLNN_SUCCESS;
  });
}

}  // namespace blitz::cpu::cann_api

using namespace blitz::cpu::cann_api;

BLITZ_EXPORT aclnnStatus aclnnBlitzSparseAttention(void *workspace, uint64_t workspaceSize,
                                                   aclOpExecutor *executor, const aclrtStream stream) {
  return run("aclnnBlitzSparseAttention", workspace, workspaceSize, executor, stream);
}

BLITZ_EXPORT aclnnStatus aclSetAclOpExecutorRepeatable(aclOpExecutor *executor) {
  return guarded("aclSetAclOpExecutorRepeatable", [&] {
    require(executor != nullptr, ACLNN_ERR_PARAM_NULLPTR, "executor is NULL");
    std::lock_guard<std::mutex> lock(executor_lifecycle_mutex());
    require(executor_registry().contains(executor), ACLNN_ERR_PARAM_INVALID, "executor is not a live aclOpExecutor");
    executor->repeatable = true;
    return ACLNN_SUCCESS;
  });
}

BLITZ_EXPORT aclnnStatus aclDestroyAclOpExecutor(aclOpExecutor *executor) {
  return guarded("aclDestroyAclOpExecutor", [&] {
    if (executor == nullptr) return ACLNN_SUCCESS;
    std::lock_guard<std::mutex> lock(executor_lifecycle_mutex());
    require(executor_registry().remove(executor), ACLNN_ERR_PARAM_INVALID,
            "executor is not a live aclOpExecutor (already run, or destroyed)");
    delete executor;  // a queued run keeps its own reference to the plan
    return ACLNN_SUCCESS;
  });
}

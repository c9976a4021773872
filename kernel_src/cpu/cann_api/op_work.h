// The executor's hook for the library's ops other than BlitzSparseAttention (whose checked call
// is a OpPlan, op_plan.h): each such op (BlitzSelectBlocks, kernel_src/cpu/select) builds an
// OpWork in its GetWorkspaceSize, and both phases go through the functions below, so every op
// shares one executor registry, one lifecycle (repeatable or consumed by the run call, destroyed
// by aclDestroyAclOpExecutor) and one stream discipline.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "handles.h"
#include "stream.h"

namespace blitz::cpu::cann_api {

// A checked call of one op, ready to run on a stream's worker thread.
class OpWork {
 public:
  virtual ~OpWork() = default;
  virtual const char *op_type() const = 0;  // e.g. "BlitzSelectBlocks": a run call checks it
  virtual uint64_t workspace_bytes() const = 0;
  virtual bool empty() const = 0;  // nothing to write: the run call enqueues nothing
  virtual TaskStatus run(void *workspace) const = 0;
};

// Phase 1: runs build (which checks the arguments and throws StatusError on bad input) and hands
// the caller a new executor holding the work.
aclnnStatus work_get_workspace_size(const char *function, const std::function<std::shared_ptr<const OpWork>()> &build,
                                    uint64_t *workspace_size, aclOpExecutor **executor);

// Phase 2: enqueues the executor's work on stream; the executor must come from op_type's phase 1.
aclnnStatus work_run(const char *function, const char *op_type, void *workspace, uint64_t workspace_size,
                     aclOpExecutor *executor, aclrtStream stream);

}  // namespace blitz::cpu::cann_api

// BlitzSelectBlocks' aclnn entry points (aclnn_gen/spec.py's SELECT_OP). GetWorkspaceSize checks
// the arguments (select_checks.cpp) into an OpWork the shared executor holds (cann_api/op_work.h);
// the run call enqueues run_select on the stream. No workspace: the selection's scratch is a few
// vectors per worker (key summaries of one key head, one row's masses).
#include "backend/kernel_settings.h"
#include "cann_api/errors.h"
#include "cann_api/exports.h"
#include "cann_api/op_work.h"
#include "select/select_checks.h"

namespace blitz::cpu::select {
namespace {

constexpr const char kOpType[] = "BlitzSelectBlocks";

class SelectWork : public cann_api::OpWork {
 public:
  // The caller's device settings, copied when the call is planned (backend/kernel_settings.h).
  SelectWork(SelectProblem problem, const KernelSettings &settings)
      : problem_(std::move(problem)), settings_(settings) {}
  const char *op_type() const override { return kOpType; }
  uint64_t workspace_bytes() const override { return 0; }
  bool empty() const override { return problem_.batch * problem_.heads_q * problem_.rows * problem_.cols == 0; }
  cann_api::TaskStatus run(void * /*workspace*/) const override {
    run_select(problem_, settings_.num_threads, settings_.path);
    return {};
  }

 private:
  SelectProblem problem_;
  KernelSettings settings_;
};

}  // namespace
}  // namespace blitz::cpu::select

using namespace blitz::cpu;

BLITZ_EXPORT aclnnStatus aclnnBlitzSelectBlocksGetWorkspaceSize(
    const aclTensor *query, const aclTensor *key, const aclIntArray *actualSeqLengths,
    const aclIntArray *actualSeqLengthsKv, int64_t numHeads, int64_t numKeyValueHeads, char *inputLayout,
    double scaleValue, const aclIntArray *blockShape, char *method, double mass, int64_t topK, int64_t anchorFirst,
    bool anchorDiagonal, bool anchorLast, bool shareKvGroups, int64_t stride, int64_t subBlock, double refineBelow,
    const aclTensor *sabi, uint64_t *workspaceSize, aclOpExecutor **executor) {
  select::SelectArgs a;
  a.query = query, a.key = key, a.actual_seq_lengths = actualSeqLengths, a.actual_seq_lengths_kv = actualSeqLengthsKv;
  a.num_heads = numHeads, a.num_key_value_heads = numKeyValueHeads, a.input_layout = inputLayout;
  a.scale_value = scaleValue, a.block_shape = blockShape, a.method = method, a.mass = mass, a.top_k = topK;
  a.anchor_first = anchorFirst, a.anchor_diagonal = anchorDiagonal, a.anchor_last = anchorLast;
  a.share_kv_groups = shareKvGroups, a.stride = stride, a.sub_block = subBlock, a.refine_below = refineBelow;
  a.sabi = sabi;
  return cann_api::work_get_workspace_size(
      "aclnnBlitzSelectBlocksGetWorkspaceSize",
      [&] {
        KernelSettings settings;
        std::string error;
        cann_api::require(current_kernel_settings(&settings, &error), ACLNN_ERR_PARAM_INVALID, error);
        return std::make_shared<const select::SelectWork>(select::build_select_problem(a), settings);
      },
      workspaceSize,
      executor);
}

BLITZ_EXPORT aclnnStatus aclnnBlitzSelectBlocks(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                const aclrtStream stream) {
  return cann_api::work_run("aclnnBlitzSelectBlocks", select::kOpType, workspace, workspaceSize, executor, stream);
}

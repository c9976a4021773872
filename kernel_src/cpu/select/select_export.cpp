// BlitzSelectBlocks' aclnn entry points (aclnn_gen/spec.py's SELECT_OP), shared by every device
// library: GetWorkspaceSize copies its parameters into SelectArgs by name and hands the library's
// make_select_work (select_checks.h) to the shared executor (cann_api/op_work.h); the run call
// enqueues that work on the stream.
#include "cann_api/exports.h"
#include "cann_api/op_work.h"
#include "select/select_checks.h"

using namespace blitz::cpu;

BLITZ_EXPORT aclnnStatus aclnnBlitzSelectBlocksGetWorkspaceSize(
    const aclTensor *query, const aclTensor *key, const aclIntArray *actualSeqLengths,
    const aclIntArray *actualSeqLengthsKv, int64_t numHeads, int64_t numKeyValueHeads, char *inputLayout,
    double scaleValue, const aclIntArray *blockShape, char *method, double mass, int64_t topK, int64_t anchorFirst,
    bool anchorDiagonal, bool anchorLast, bool shareKvGroups, int64_t stride, int64_t subBlock, double refineBelow,
    int64_t sparseMode, int64_t preTokens, int64_t nextTokens, const aclTensor *sabi, uint64_t *workspaceSize,
    aclOpExecutor **executor) {
  select::SelectArgs a;
  a.query = query, a.key = key, a.actual_seq_lengths = actualSeqLengths, a.actual_seq_lengths_kv = actualSeqLengthsKv;
  a.num_heads = numHeads, a.num_key_value_heads = numKeyValueHeads, a.input_layout = inputLayout;
  a.scale_value = scaleValue, a.block_shape = blockShape, a.method = method, a.mass = mass, a.top_k = topK;
  a.anchor_first = anchorFirst, a.anchor_diagonal = anchorDiagonal, a.anchor_last = anchorLast;
  a.share_kv_groups = shareKvGroups, a.stride = stride, a.sub_block = subBlock, a.refine_below = refineBelow;
  a.sparse_mode = sparseMode, a.pre_tokens = preTokens, a.next_tokens = nextTokens;
  a.sabi = sabi;
  return cann_api::work_get_workspace_size("aclnnBlitzSelectBlocksGetWorkspaceSize",
                                          [&] { return select::make_select_work(a); }, workspaceSize, executor);
}

BLITZ_EXPORT aclnnStatus aclnnBlitzSelectBlocks(void *workspace, uint64_t workspaceSize, aclOpExecutor *executor,
                                                const aclrtStream stream) {
  return cann_api::work_run("aclnnBlitzSelectBlocks", select::kSelectOpType, workspace, workspaceSize, executor, stream);
}

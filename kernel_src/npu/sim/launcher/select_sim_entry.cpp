// BlitzSelectBlocks in libblitz_npu_sim.so: make_select_work for the shared entry points
// (kernel_src/cpu/select/select_export.cpp). GetWorkspaceSize first runs the CPU op's own checks
// (select_checks.cpp, compiled into this library too), so every input both devices take is
// refused in the same words; then the NPU plan (op_host/select_plan.cpp) as CANN's tiling
// function runs it, whose refusals (what the NPU op does not implement yet) come back as
// ACLNN_ERR_PARAM_INVALID; the run launches the Ascend C kernel through the execution model
// (a model violation: ACLNN_ERR_INNER naming the core, the API and the rule).
#include <sstream>

#include "cann_api/errors.h"
#include "cann_api/op_work.h"
#include "select/select_checks.h"
#include "select_launch.h"
#include "sim_tensors.h"

namespace blitz::cpu::cann_api::backend {
namespace {

void copy_dims(const aclTensor *t, int64_t *dims, int *rank) {
  *rank = int(t->view_dims.size() > size_t(blitz_npu::kMaxRank) ? blitz_npu::kMaxRank : t->view_dims.size());
  for (int i = 0; i < *rank; ++i) dims[i] = t->view_dims[size_t(i)];
}

std::vector<int64_t> values(const aclIntArray *a) { return a == nullptr ? std::vector<int64_t>{} : a->values; }

// The TilingContext's view of a checked call, plus where its tensors live.
blitz_npu_sim::SelectSimCall sim_call(const select::SelectArgs &a, const select::SelectProblem &p) {
  blitz_npu_sim::SelectSimCall c;
  blitz_npu::SelectRequest &r = c.request;
  copy_dims(a.query, r.q_dims, &r.q_rank);
  copy_dims(a.key, r.k_dims, &r.k_rank);
  r.layout = a.input_layout;
  r.dtype_supported = blitz_npu::npu_qkv_dtype(kind_of(a.query->dtype));  // key's: checked equal
  r.dtype_size = r.dtype_supported ? 2 : 4;
  r.num_heads = a.num_heads;
  r.num_kv_heads = a.num_key_value_heads;
  r.scale_value = p.scale;  // resolved (0 -> 1/sqrt(D)) by the checks, as the glue would
  r.block_q = p.block_q;
  r.block_kv = p.block_kv;
  r.method = a.method;
  r.mass = a.mass;
  r.top_k = a.top_k;
  r.anchor_first = a.anchor_first;
  r.anchor_diagonal = a.anchor_diagonal;
  r.anchor_last = a.anchor_last;
  r.share_kv_groups = a.share_kv_groups;
  r.refine_below = a.refine_below;
  r.sub_block = a.sub_block;
  r.stride = a.stride;
  r.sparse_mode = a.sparse_mode;
  c.actual_q = values(a.actual_seq_lengths);
  c.actual_kv = values(a.actual_seq_lengths_kv);
  c.bf16 = p.dtype == ElementType::kBFloat16;
  if (!r.dtype_supported) return c;  // the plan refuses it; no tensor is read
  c.query = dense(a.query, "query");
  c.key = dense(a.key, "key");
  c.sabi = dense(a.sabi, "sabi");
  return c;
}

std::string plan_fields(const blitz_npu::SelectTilingParams &p) {
  std::ostringstream s;
  s << "\"plan\":{\"op\":\"" << select::kSelectOpType << "\",\"units\":" << p.units << ",\"workers\":" << p.workers
    << ",\"stride\":" << p.stride << ",\"k_units_max\":" << p.k_units_max
    << ",\"chunk_rows\":" << p.chunk_rows << ",\"cols_aligned\":" << p.cols_aligned
    << ",\"ub_total_bytes\":" << p.ub_total_bytes << ",\"ws_worker_bytes\":" << p.ws_worker_bytes << '}';
  return s.str();
}

class SelectSimWork : public OpWork {
 public:
  SelectSimWork(blitz_npu_sim::SelectSimCall call, blitz_npu_sim::SelectSimPlan plan, bool empty)
      : call_(std::move(call)), plan_(std::move(plan)), empty_(empty) {}
  const char *op_type() const override { return select::kSelectOpType; }
  uint64_t workspace_bytes() const override { return empty_ ? 0 : plan_.workspace_bytes; }
  bool empty() const override { return empty_; }
  TaskStatus run(void *workspace) const override {
    blitz_sim::LaunchReport report = blitz_npu_sim::launch_select(call_, plan_, workspace);
    TaskStatus status;
    if (!report.ok) status = {ACLNN_ERR_INNER, "the NPU execution model stopped the kernel: " + report.error};
    record_launch(std::move(report), plan_.block_dim, plan_fields(plan_.tiling.params));
    return status;
  }

 private:
  blitz_npu_sim::SelectSimCall call_;
  blitz_npu_sim::SelectSimPlan plan_;
  bool empty_;
};

std::shared_ptr<const OpWork> build(const select::SelectArgs &a) {
  const select::SelectProblem problem = select::build_select_problem(a);  // the CPU op's checks and words
  blitz_npu_sim::SelectSimCall call = sim_call(a, problem);
  blitz_npu_sim::SelectSimPlan plan =
      blitz_npu_sim::plan_select(call, blitz_npu_sim::core_info(blitz_npu_sim::thread_vector_cores()));
  require(plan.ok, ACLNN_ERR_PARAM_INVALID, "the NPU tiling rejects this call: " + plan.error);
  const bool empty = problem.batch * problem.heads_q * problem.rows * problem.cols == 0;
  return std::make_shared<const SelectSimWork>(std::move(call), std::move(plan), empty);
}

}  // namespace
}  // namespace blitz::cpu::cann_api::backend

namespace blitz::cpu::select {

// npu_sim's BlitzSelectBlocks (select_checks.h): the checks, the NPU plan, then the launch.
std::shared_ptr<const cann_api::OpWork> make_select_work(const SelectArgs &args) { return cann_api::backend::build(args); }

}  // namespace blitz::cpu::select

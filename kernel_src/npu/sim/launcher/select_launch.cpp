// The select launcher (select_launch.h).
#include "select_launch.h"

#include "blitz_sim/softmax.h"
#include "select_kernel_entries.h"

namespace blitz_npu_sim {
namespace {

// GetSoftMaxFlashV2MinTmpSize for a float [rows, cols] row without update, as the glue asks.
uint32_t softmax_tmp_bytes(uint32_t rows, uint32_t cols, void * /*user*/) {
  return blitz_sim::SoftmaxFlashV2MinTmpBytes(rows, cols, sizeof(float), sizeof(float), /*isUpdate=*/false);
}


}  // namespace

SelectSimPlan plan_select(SelectSimCall &call, const blitz_npu::CoreInfo &cores) {
  blitz_npu::SelectRequest &r = call.request;
  r.cores = cores;
  r.softmax_tmp_bytes = softmax_tmp_bytes;
  r.softmax_tmp_user = nullptr;
  r.actual_q = call.actual_q.empty() ? nullptr : call.actual_q.data();
  r.actual_q_count = int64_t(call.actual_q.size());
  r.actual_kv = call.actual_kv.empty() ? nullptr : call.actual_kv.data();
  r.actual_kv_count = int64_t(call.actual_kv.size());

  SelectSimPlan out;
  const blitz_npu::SelectPlan sp = blitz_npu::plan_select(r);
  if (!sp.ok) {
    out.error = sp.error;
    return out;
  }
  const blitz_npu::SelectTilingParams &p = sp.params;
  out.tiling.params = p;
  // The logits matmul [query units, key units] = Q units [q_units_max, cell_dim] x K^T (the MatmulApiTiling
  // SetShape / SetOrgShape the glue would call; cell_dim is D, or stride x D for antidiagonal cells); the kernel
  // sets its tail per unit.
  AscendC::tiling::TCubeTiling &t = out.tiling.scores;
  t.usedCoreNum = 1;
  t.M = int32_t(p.q_units_max), t.N = int32_t(p.k_units_max), t.Ka = int32_t(p.cell_dim), t.Kb = int32_t(p.cell_dim);
  t.singleCoreM = int32_t(p.q_units_max), t.singleCoreN = int32_t(p.k_units_max), t.singleCoreK = int32_t(p.cell_dim);
  blitz_sim::SoftmaxFlashV2Tiling(1, uint32_t(p.k_units_aligned), sizeof(float), sizeof(float), p.ub_softmax_tmp_bytes,
                                  /*isUpdate=*/false, &out.tiling.softmax);
  out.block_dim = p.cube_cores;
  out.workspace_bytes = blitz_sim::kSystemWorkspaceBytes + p.ws_user_bytes;
  out.ok = true;
  return out;
}

blitz_sim::LaunchReport launch_select(const SelectSimCall &call, const SelectSimPlan &plan, void *workspace) {
  std::lock_guard<std::mutex> lock(launch_mutex());
  const SelectKernelEntry entry = call.bf16 ? select_kernel_entry_bf16() : select_kernel_entry_half();
  BlitzSelectBlocksTilingData tiling = plan.tiling;  // in GM, as the framework copies it there
  const LaunchGm in_gm({{&call.query, "query"}, {&call.key, "key"}, {&call.sabi, "sabi"}}, call.actual_q,
                       call.actual_kv, workspace, plan.workspace_bytes, &tiling, sizeof(tiling));
  return blitz_sim::run_mix_launch(plan.block_dim, [&] {
    entry(gm(call.query.data), gm(call.key.data), in_gm.actual_q(), in_gm.actual_kv(), gm(call.sabi.data), gm(workspace), gm(&tiling));
  });
}

}  // namespace blitz_npu_sim

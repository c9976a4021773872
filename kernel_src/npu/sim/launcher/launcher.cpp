// The launcher (launcher.h): tiling as CANN's glue does it, then one MIX_AIC_1_2 launch.
#include "launcher.h"

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "blitz_sim/softmax.h"
#include "kernel_entries.h"

namespace blitz_npu_sim {
namespace {

// 910B memory per core (NPU架构版本2201.md). UB is the whole 192 KiB, as the platform reports
// it (GetCoreMemSize(UB)); the tiling keeps its own reserve, and the model checks the total
// against what a mix kernel may really use (blitz_sim::kUserUbBytes).
constexpr uint64_t kUbBytes = blitz_sim::kTotalUbBytes;
constexpr uint64_t kL1Bytes = 512 * 1024;
constexpr uint64_t kL0cBytes = 128 * 1024;

thread_local uint32_t vector_cores_set = kDefaultVectorCores;  // blitzNpuSimSetVectorCores

// GetSoftMaxFlashV2MinTmpSize for a float [rows, cols] slice with update, as the glue asks.
uint32_t softmax_tmp_bytes(uint32_t rows, uint32_t cols, void * /*user*/) {
  return blitz_sim::SoftmaxFlashV2MinTmpBytes(rows, cols, sizeof(float), sizeof(float), /*isUpdate=*/true);
}

// The Matmul tiling fields the glue's MatmulApiTiling calls set (SetShape / SetOrgShape); the
// model reads only singleCoreM/N/K, and only when the kernel never calls SetTail.
AscendC::tiling::TCubeTiling cube_tiling(int64_t m, int64_t n, int64_t k, int64_t org_m, int64_t org_n,
                                         int64_t org_ka, int64_t org_kb) {
  AscendC::tiling::TCubeTiling t{};
  t.usedCoreNum = 1;
  t.M = int32_t(org_m), t.N = int32_t(org_n), t.Ka = int32_t(org_ka), t.Kb = int32_t(org_kb);
  t.singleCoreM = int32_t(m), t.singleCoreN = int32_t(n), t.singleCoreK = int32_t(k);
  return t;
}


}  // namespace

std::mutex &launch_mutex() {
  static std::mutex m;
  return m;
}

blitz_npu::CoreInfo core_info(uint32_t vector_cores) {
  blitz_npu::CoreInfo c{};
  c.vector_cores = vector_cores;
  c.cube_cores = vector_cores / 2;
  c.ub_bytes = kUbBytes;
  c.l1_bytes = kL1Bytes;
  c.l0c_bytes = kL0cBytes;
  return c;
}

uint32_t parse_vector_cores(const char *text) {
  if (text == nullptr || *text == '\0') return kDefaultVectorCores;
  char *end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 1 || v > long(blitz_npu::kMaxWorkers)) {
    throw std::invalid_argument("expected the number of vector cores, 1.." + std::to_string(blitz_npu::kMaxWorkers) +
                                ", got '" + text + "'");
  }
  return uint32_t(v);
}

void set_thread_vector_cores(uint32_t vector_cores) { vector_cores_set = vector_cores; }

uint32_t thread_vector_cores() { return vector_cores_set; }

SimPlan plan(SimCall &call, const blitz_npu::CoreInfo &cores) {
  blitz_npu::TilingRequest &r = call.request;
  r.cores = cores;
  r.softmax_tmp_bytes = softmax_tmp_bytes;
  r.softmax_tmp_user = nullptr;
  // Value-depend inputs: the host copies (the glue's GetOptionalInputTensor(...)->GetData()).
  r.actual_q = call.actual_q.empty() ? nullptr : call.actual_q.data();
  r.actual_q_count = int64_t(call.actual_q.size());
  r.actual_kv = call.actual_kv.empty() ? nullptr : call.actual_kv.data();
  r.actual_kv_count = int64_t(call.actual_kv.size());
  // sabi is not value-depend (the glue's kSabiValueDepend): the kernel scans it on the device.
  r.sabi_values = nullptr;
  r.device_split_scan = true;

  SimPlan out;
  const blitz_npu::TilingPlan tp = blitz_npu::plan_tiling(r);
  if (!tp.ok) {
    out.error = tp.error;
    return out;
  }
  const blitz_npu::BlitzTilingParams &p = tp.params;
  out.tiling.params = p;
  // Q*K^T: [group, bkv] = Q [group, D] x K^T; C rows padded to kv_block_aligned (ND_ALIGN).
  out.tiling.qk = cube_tiling(p.group_rows, p.block_kv, p.head_dim, p.group_rows, p.kv_block_aligned, p.q.s, p.k.s);
  // P*V: [group, D] = P [group, bkv] x V [bkv, D].
  out.tiling.pv = cube_tiling(p.group_rows, p.head_dim, p.block_kv, p.group_rows, p.v.s, p.kv_block_aligned,
                              p.seq_kv);
  blitz_sim::SoftmaxFlashV2Tiling(uint32_t(p.slice_rows), uint32_t(p.kv_block_aligned), sizeof(float), sizeof(float),
                                  p.ub_softmax_tmp_bytes, /*isUpdate=*/true, &out.tiling.softmax);
  out.block_dim = p.cube_cores;
  // GetLibApiWorkSpaceSize() (the system part) + the kernel's own buffers.
  out.workspace_bytes = blitz_sim::kSystemWorkspaceBytes + p.ws_user_bytes;
  out.ok = true;
  return out;
}

LaunchGm::LaunchGm(std::initializer_list<NamedTensor> tensors, const std::vector<int64_t> &actual_q,
                   const std::vector<int64_t> &actual_kv, void *workspace, uint64_t workspace_bytes,
                   const void *tiling, size_t tiling_bytes)
    : actual_q_(actual_q), actual_kv_(actual_kv) {
  for (const auto &[t, name] : tensors) {
    if (t->data != nullptr && t->bytes != 0) ranges_.add(t->data, t->bytes, name);
  }
  if (!actual_q_.empty()) ranges_.add(actual_q_.data(), actual_q_.size() * sizeof(int64_t), "actual_seq_lengths");
  if (!actual_kv_.empty())
    ranges_.add(actual_kv_.data(), actual_kv_.size() * sizeof(int64_t), "actual_seq_lengths_kv");
  ranges_.add(workspace, workspace_bytes, "workspace");
  ranges_.add(tiling, tiling_bytes, "tiling");
  blitz_sim::set_system_workspace(workspace);
}

blitz_sim::LaunchReport launch(const SimCall &call, const SimPlan &plan, void *workspace,
                               blitz_sim::LaunchMode mode) {
  std::lock_guard<std::mutex> lock(launch_mutex());
  const KernelEntry entry = call.bf16 ? kernel_entry_bf16() : kernel_entry_half();
  // The tiling data and the actual lengths live in GM as on the device (the framework copies
  // them there before the launch).
  BlitzSparseAttentionTilingData tiling = plan.tiling;
  const LaunchGm in_gm({{&call.query, "query"}, {&call.key, "key"}, {&call.value, "value"},
                        {&call.atten_mask, "atten_mask"}, {&call.sabi, "sabi"},
                        {&call.attention_out, "attention_out"}, {&call.softmax_lse, "softmax_lse"}},
                       call.actual_q, call.actual_kv, workspace, plan.workspace_bytes, &tiling, sizeof(tiling));
  return blitz_sim::run_mix_launch(plan.block_dim, [&] {
    entry(gm(call.query.data), gm(call.key.data), gm(call.value.data), /*pseShift=*/nullptr,
          gm(call.atten_mask.data), gm(call.sabi.data), in_gm.actual_q(), in_gm.actual_kv(), /*deqScale1=*/nullptr, /*quantScale1=*/nullptr,
          /*deqScale2=*/nullptr, /*quantScale2=*/nullptr, /*quantOffset2=*/nullptr, gm(call.attention_out.data),
          gm(call.softmax_lse.data), gm(workspace), gm(&tiling));
  }, mode);
}

}  // namespace blitz_npu_sim

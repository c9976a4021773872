// The NPU op run on the host: the real op_host tiling (tiling_plan.cpp) plans a call the way
// CANN's tiling function does (op_host/blitz_sparse_attention_tiling.cpp), and the real kernel
// entry (op_kernel/blitz_sparse_attention.cpp) runs for every core of the launch through the
// Ascend C execution model (../include, blitz_sim/launch.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "blitz_sim/launch.h"
#include "kernel_operator.h"  // GM_ADDR
#include "blitz_tiling_data.h"
#include "../../op_host/tiling_plan.h"

namespace blitz_npu_sim {

// One global-memory tensor of the call: its first element and its bytes (nullptr = absent).
struct GmTensor {
  const void *data = nullptr;
  size_t bytes = 0;
};

// A call as CANN's TilingContext presents it to the tiling (shapes, dtypes, attributes, the
// host values of the value-depend inputs) plus where its tensors live.
struct SimCall {
  // Shapes and attributes; `cores`, `softmax_tmp_bytes` and the actual-length pointers are
  // filled by plan() (the platform's part and what CANN's glue adds).
  blitz_npu::TilingRequest request = blitz_npu::default_request();
  bool bf16 = false;  // DTYPE_QUERY of the kernel binary: bfloat16_t, else half
  GmTensor query, key, value, atten_mask, sabi, attention_out, softmax_lse;
  // actual_seq_lengths / _kv as passed (value-depend: the framework copies them to the host for
  // the tiling and hands the kernel the device tensor); empty = absent.
  std::vector<int64_t> actual_q, actual_kv;
};

// What the tiling produced for one call.
struct SimPlan {
  bool ok = false;
  std::string error;                       // the tiling's rejection message
  BlitzSparseAttentionTilingData tiling{};  // what GET_TILING_DATA_WITH_STRUCT reads
  uint32_t block_dim = 0;                  // SetBlockDim: cube cores launched
  uint64_t workspace_bytes = 0;            // GetWorkspaceSizes[0]: system reserve + user part
};

// The 910B's core counts and memory sizes as PlatformAscendC reports them. Core counts are not
// in the docs (/work/shared/ASCEND_C_MODEL_FACTS.md section 1: asc-devkit's test stub
// tests/api/common/platform_stub.cpp uses 24 AIC / 48 AIV, impl/.../kfc_comm.h allows at most
// 25 / 50; per-SKU counts are unconfirmed), so the vector core count is a parameter the caller
// passes down (blitzNpuSimSetVectorCores; the binding passes BLITZ_ACL_NPU_SIM_CORES), default
// 48, cube cores = vector / 2 (MIX_AIC_1_2 pairs two vector cores with each cube core).
// UB 192 KiB, L1 512 KiB, L0C 128 KiB (NPU架构版本2201.md).
constexpr uint32_t kDefaultVectorCores = 48;
blitz_npu::CoreInfo core_info(uint32_t vector_cores);
// A vector core count as its caller wrote it (the binding passes the variable's text, so the
// range below is checked in this one place): NULL or "" is the default, else a decimal count in
// 1..kMaxWorkers (the tiling's worker arrays); throws std::invalid_argument, naming the range
// and the text, for anything else.
uint32_t parse_vector_cores(const char *text);
// The vector core count the calling thread's next calls plan with (both ops' GetWorkspaceSize
// and blitzCpuDeviceInfo): the last one it set, or the default for a thread that never set one.
void set_thread_vector_cores(uint32_t vector_cores);
uint32_t thread_vector_cores();

// Every launch of every op holds it: the GM registry and the system workspace are global.
std::mutex &launch_mutex();

// A host pointer as the kernel entry takes it.
inline GM_ADDR gm(const void *p) { return static_cast<GM_ADDR>(const_cast<void *>(p)); }

// What GM holds for one launch of either op, as the framework leaves it before the kernel
// starts: the call's tensors, copies of the value-depend lengths, the workspace (its system part
// set as the Matmul's) and the tiling data; every range registered so the model checks each
// access against them. Lives for the launch (the registry is cleared when it ends).
class LaunchGm {
 public:
  using NamedTensor = std::pair<const GmTensor *, const char *>;
  LaunchGm(std::initializer_list<NamedTensor> tensors, const std::vector<int64_t> &actual_q,
           const std::vector<int64_t> &actual_kv, void *workspace, uint64_t workspace_bytes, const void *tiling,
           size_t tiling_bytes);
  LaunchGm(const LaunchGm &) = delete;
  LaunchGm &operator=(const LaunchGm &) = delete;
  GM_ADDR actual_q() const { return actual_q_.empty() ? nullptr : gm(actual_q_.data()); }
  GM_ADDR actual_kv() const { return actual_kv_.empty() ? nullptr : gm(actual_kv_.data()); }

 private:
  std::vector<int64_t> actual_q_, actual_kv_;
  blitz_sim::GmScope ranges_;
};

// Runs the tiling; plan.ok false carries the tiling's message.
SimPlan plan(SimCall &call, const blitz_npu::CoreInfo &cores);

// Registers every GM range, runs the MIX_AIC_1_2 launch of the kernel entry and returns the
// model's report (ok false: the first ModelViolation, "core aiv 3: <API>: <rule>").
// `workspace` holds plan.workspace_bytes. Launches are serialised (the GM registry is global).
// LaunchMode::kCountingOnly checks and counts without computing (blitz_sim/launch.h): the
// outputs are left as they are, and the report says counting_only.
blitz_sim::LaunchReport launch(const SimCall &call, const SimPlan &plan, void *workspace,
                               blitz_sim::LaunchMode mode = blitz_sim::LaunchMode::kNumeric);

}  // namespace blitz_npu_sim

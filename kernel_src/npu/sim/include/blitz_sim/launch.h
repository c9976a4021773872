// The launcher's view of the execution model: global-memory registration, per-core counters and
// one KERNEL_TYPE_MIX_AIC_1_2 launch run on host threads. See kernel_src/npu/sim/README.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace blitz_sim {

// A kernel action the hardware would reject, hang on, or silently get wrong. The message names
// the API, the core and the rule.
struct ModelViolation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Every counter the model keeps per core, once: X(name, meaning). CoreCounters, the atomic
// copies, the sums and the JSON report (report_json) are all generated from this list.
#define BLITZ_SIM_COUNTERS(X)                                                                      \
  X(gm_to_ub_bytes, "bytes GM -> UB (MTE2 copies, vector cores)")                                  \
  X(ub_to_gm_bytes, "bytes UB -> GM (MTE3 copies, vector cores)")                                  \
  X(gm_to_ub_copies, "DataCopy / DataCopyPad GM -> UB instructions")                               \
  X(ub_to_gm_copies, "DataCopy / DataCopyPad UB -> GM instructions")                               \
  X(gm_to_l1_bytes, "matmul operand bytes GM -> L1 (M*K + K*N elements per IterateAll; cube cores)") \
  X(l0c_to_gm_bytes, "matmul result bytes L0C -> GM (M*N floats per IterateAll; cube cores)")      \
  X(matmul_calls, "IterateAll calls served (cube cores)")                                         \
  X(cube_flops, "2*M*N*K per IterateAll (cube cores)")                                             \
  X(vector_instrs, "vector API calls (Muls, Cast, SoftmaxFlashV2, ... each one)")                  \
  X(vector_repeats, "256-byte repeats issued (count form: ceil(bytes of the widest operand / 256); " \
                    "repeat form: repeatTime; SoftmaxFlashV2: 3 passes over its source)")         \
  X(vector_elem_ops, "elements processed by vector instructions")                                 \
  X(set_flags, "SetFlag events, the queues' EnQue / FreeTensor ones included")                     \
  X(wait_flags, "WaitFlag events, the queues' DeQue / AllocTensor ones included")                  \
  X(scalar_reads, "GetValue reads on the scalar unit (UB and GM)")

struct CoreCounters {  // per core, filled by the model (meanings in BLITZ_SIM_COUNTERS)
#define BLITZ_SIM_COUNTER_FIELD(name, doc) uint64_t name = 0;
  BLITZ_SIM_COUNTERS(BLITZ_SIM_COUNTER_FIELD)
#undef BLITZ_SIM_COUNTER_FIELD
  CoreCounters &operator+=(const CoreCounters &o)
  {
#define BLITZ_SIM_COUNTER_ADD(name, doc) name += o.name;
    BLITZ_SIM_COUNTERS(BLITZ_SIM_COUNTER_ADD)
#undef BLITZ_SIM_COUNTER_ADD
    return *this;
  }
  bool operator==(const CoreCounters &o) const
  {
    bool same = true;
#define BLITZ_SIM_COUNTER_EQ(name, doc) same = same && name == o.name;
    BLITZ_SIM_COUNTERS(BLITZ_SIM_COUNTER_EQ)
#undef BLITZ_SIM_COUNTER_EQ
    return same;
  }
};

struct LaunchReport {
  bool ok = true;
  std::string error;
  // A counting-only launch (LaunchMode::kCountingOnly): every check ran and every counter
  // counted, but no arithmetic and no data reached the outputs; never a result.
  bool counting_only = false;
  std::vector<CoreCounters> cube, vector;
};

// Numeric: every API computes its result. Counting only: every API still checks its rules
// (bounds, alignment, UB capacity, queue / event / pipe discipline, Matmul shapes) and counts,
// but computes nothing: vector instructions, SoftmaxFlashV2 and Matmul write no data, UB -> GM
// copies leave GM as it is. GM -> UB copies of GM the launch has not written (the kernel's
// inputs: sabi chunks its scalar unit walks) still move their bytes, so control flow that reads
// inputs runs as it would; a scalar read (GetValue) of data the skipped arithmetic would have
// produced stops the launch (CountingUndecidable), because the counts could differ from a
// numeric run's from there on.
enum class LaunchMode { kNumeric, kCountingOnly };

// Thrown by a counting-only launch when the kernel's control flow reads computed data.
struct CountingUndecidable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The report as JSON: {"ok", "error", "counting_only", "block_dim", "counters": {name: meaning},
// "cube": [{counter: value, ...} per cube core], "vector": [... per vector core]}, then
// `extra_fields` (`"name":value,...`, the launcher's own) if not empty.
std::string report_json(const LaunchReport &report, uint32_t block_dim, const std::string &extra_fields = "");

// 910B (arch 2201) facts the launcher needs; sources in the README.
// User UB of a mix kernel built without --cce-disable-asc-reserved-ubuf: 192 KiB - 256 B - 8 KiB
// (docs/zh/guide/编程指南/高级编程/硬件实现/架构规格/NPU架构版本2201.md).
constexpr uint32_t kTotalUbBytes = 192 * 1024;
constexpr uint32_t kUserUbBytes = kTotalUbBytes - 256 - 8 * 1024;  // 188160
// The system part of the workspace the framework prepends (GetUserWorkspace = workspace + this;
// impl/utils/tiling/platform/platform_ascendc.cpp RESERVED_WORKSPACE, basic_api workspace/
// GetUserWorkspace.md).
constexpr size_t kSystemWorkspaceBytes = 16u * 1024u * 1024u;

// Registers [base, base + bytes) as global memory (inputs, outputs, workspace, tiling data).
// Every GM access of a kernel is checked against the registered ranges. Register / clear only
// while no launch runs (the ranges are read without a lock by the core threads).
void register_gm(const void *base, size_t bytes, const char *name);
void clear_gm();
// RAII: clears the registry on scope exit.
struct GmScope {
  GmScope() = default;
  GmScope(const GmScope &) = delete;
  GmScope &operator=(const GmScope &) = delete;
  ~GmScope() { clear_gm(); }
  void add(const void *base, size_t bytes, const char *name) { register_gm(base, bytes, name); }
};

// The pointer GetSysWorkSpacePtr() returns in the next launches (the workspace argument the
// launcher passes the kernel: its first kSystemWorkspaceBytes are the system part). It must lie
// in a registered range of at least kSystemWorkspaceBytes (REGIST_MATMUL_OBJ checks that).
void set_system_workspace(void *base);

// Runs a KERNEL_TYPE_MIX_AIC_1_2 launch of block_dim blocks: block_dim cube cores and
// 2*block_dim vector cores, each a std::thread with its own UB state. `entry` is called on every
// core. The first ModelViolation (or other exception) on any core makes ok=false with
// "core <aic|aiv> <idx>: <message>"; cores blocked on a dead partner are released.
LaunchReport run_mix_launch(uint32_t block_dim, const std::function<void()> &entry,
                            LaunchMode mode = LaunchMode::kNumeric);

}  // namespace blitz_sim

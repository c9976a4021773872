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

struct CoreCounters {                                // per core, filled by the model
  uint64_t gm_to_ub_bytes = 0, ub_to_gm_bytes = 0;   // vector cores (MTE2 / MTE3)
  uint64_t gm_to_l1_bytes = 0, l0c_to_gm_bytes = 0;  // cube cores (matmul operand loads / results)
  uint64_t cube_flops = 0;                           // 2*M*N*K per matmul, on the cube core
  uint64_t vector_elem_ops = 0;                      // elements processed by vector instructions
};

struct LaunchReport {
  bool ok = true;
  std::string error;
  std::vector<CoreCounters> cube, vector;
};

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
LaunchReport run_mix_launch(uint32_t block_dim, const std::function<void()> &entry);

}  // namespace blitz_sim

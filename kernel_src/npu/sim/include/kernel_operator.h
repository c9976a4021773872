// The execution model's stand-in for CANN's kernel_operator.h: the Ascend C APIs our kernel
// uses, and nothing else (an API the model lacks is a compile error). Semantics and checks:
// blitz_sim/*.h, each citing its doc page under docs/zh/api/SIMD-API/ of asc-devkit.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "blitz_sim/core.h"
#include "blitz_sim/numeric.h"
#include "blitz_sim/tensor.h"
#include "blitz_sim/sync.h"
#include "blitz_sim/pipe.h"
#include "blitz_sim/copy.h"
#include "blitz_sim/vector.h"
#include "blitz_sim/convert.h"
#include "blitz_sim/softmax.h"
#include "kernel_tiling/kernel_tiling.h"

// Address-space and function qualifiers have no meaning on the host.
#define __aicore__
#define __global__
#define __gm__
#define GM_ADDR uint8_t *

// ASCEND_IS_AIV / ASCEND_IS_AIC: constexpr tests of g_coreType on the device
// (impl/utils/sys_macros.h, used as `if ASCEND_IS_AIV {`); here a per-thread runtime test.
#define ASCEND_IS_AIV (blitz_sim::current().type == blitz_sim::CoreType::AIV)
#define ASCEND_IS_AIC (blitz_sim::current().type == blitz_sim::CoreType::AIC)

// Kernel types (Kernel-Tiling/设置Kernel类型.md); the model launches MIX_AIC_1_2 only.
enum KernelMetaType { KERNEL_TYPE_AIV_ONLY = 0, KERNEL_TYPE_AIC_ONLY, KERNEL_TYPE_MIX_AIV_1_0, KERNEL_TYPE_MIX_AIC_1_0,
                      KERNEL_TYPE_MIX_AIC_1_1, KERNEL_TYPE_MIX_AIC_1_2 };

namespace blitz_sim {
// KERNEL_TASK_TYPE_DEFAULT is a compile-time marker (impl/utils/kernel_utils_macros.h); the model
// checks it names the launch type it runs.
inline void declare_kernel_type(KernelMetaType t)
{
  if (t != KERNEL_TYPE_MIX_AIC_1_2) fail("KERNEL_TASK_TYPE_DEFAULT", "the model launches KERNEL_TYPE_MIX_AIC_1_2 only");
}
// GET_TILING_DATA_WITH_STRUCT copies sizeof(S) bytes of the GM tiling into a local
// (tools/build/asc_op_compile_base get_op_tiling.py); the tiling buffer is GM like the rest.
template <typename S>
inline S read_tiling(const uint8_t *tiling)
{
  static_assert(std::is_trivially_copyable<S>::value, "tiling data is plain data");
  check_gm("GET_TILING_DATA_WITH_STRUCT", tiling, sizeof(S));
  S s;
  std::memcpy(&s, tiling, sizeof(S));
  return s;
}
uint8_t *system_workspace();
}  // namespace blitz_sim

#define KERNEL_TASK_TYPE_DEFAULT(type) blitz_sim::declare_kernel_type(type)
// REGISTER_TILING_DEFAULT(S) names the tiling struct for the build tools; nothing at run time.
#define REGISTER_TILING_DEFAULT(S) static_assert(std::is_trivially_copyable<S>::value, "tiling data is plain data")
#define GET_TILING_DATA_WITH_STRUCT(tiling_struct, tiling_data, tiling_arg) \
  tiling_struct tiling_data = blitz_sim::read_tiling<tiling_struct>(tiling_arg)

namespace AscendC {

// 工具接口/系统资源与变量/GetBlockIdx.md, GetBlockNum.md, GetTaskRatio.md, GetSubBlockIdx(ISASI).md:
// with MIX_AIC_1_2 and N blocks, the AIC of block i has index i, ratio 1, sub-block 0; its two
// AIVs have indices 2i + s, ratio 2, sub-block s; GetBlockNum is N on both.
inline int64_t GetBlockIdx() { return blitz_sim::current().block_idx; }
inline int64_t GetBlockNum() { return blitz_sim::current().block_num; }
inline int64_t GetTaskRatio() { return blitz_sim::current().type == blitz_sim::CoreType::AIV ? 2 : 1; }
inline int64_t GetSubBlockIdx() { return blitz_sim::current().sub_idx; }

// 资源管理/workspace/GetUserWorkspace.md: on the NPU the user part starts after the system
// reserve (16 MiB, blitz_sim::kSystemWorkspaceBytes).
inline GM_ADDR GetUserWorkspace(GM_ADDR workspace)
{
  if (workspace == nullptr) blitz_sim::fail("GetUserWorkspace", "null workspace");
  return workspace + blitz_sim::kSystemWorkspaceBytes;
}
// 资源管理/workspace/GetSysWorkSpacePtr.md.
inline GM_ADDR GetSysWorkSpacePtr() { return blitz_sim::system_workspace(); }

}  // namespace AscendC

// Unqualified forms the kernel uses inside AscendC-using code (CANN exposes these at global scope).
using AscendC::GetSysWorkSpacePtr;

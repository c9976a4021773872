// CANN tiling glue shared by both ops' TilingFuncs (blitz_sparse_attention_tiling.cpp,
// blitz_select_blocks_tiling.cpp): how a refusal reaches the log, how a CANN dtype reads, and
// which platform figures the plans read. Needs CANN's headers; the plans themselves (tiling_plan, select_plan) do not.
#pragma once

#include <cstdio>
#include <string>

#include "register/op_impl_registry.h"
#include "tiling/platform/platform_ascendc.h"

#include "tiling_plan.h"

namespace blitz_npu::glue {

// The message reaches the caller through the tiling failure; print it so it shows in the log.
inline void report(gert::TilingContext *context, const std::string &message)
{
  std::fprintf(stderr, "[%s] %s\n", context->GetNodeName(), message.c_str());
}

// A CANN dtype as the plans name it (kOther: one neither op takes).
inline DataKind data_kind(ge::DataType dtype)
{
  switch (dtype) {
    case ge::DT_FLOAT16: return DataKind::kFloat16;
    case ge::DT_BF16: return DataKind::kBFloat16;
    case ge::DT_BOOL: return DataKind::kBool;
    case ge::DT_INT8: return DataKind::kInt8;
    case ge::DT_UINT8: return DataKind::kUint8;
    default: return DataKind::kOther;
  }
}

// The core counts and per-core memories of the SoC the op is compiled for.
inline CoreInfo read_cores(platform_ascendc::PlatformAscendC &platform)
{
  CoreInfo cores{};
  cores.cube_cores = platform.GetCoreNumAic();
  cores.vector_cores = platform.GetCoreNumAiv();
  platform.GetCoreMemSize(platform_ascendc::CoreMemType::UB, cores.ub_bytes);
  platform.GetCoreMemSize(platform_ascendc::CoreMemType::L1, cores.l1_bytes);
  platform.GetCoreMemSize(platform_ascendc::CoreMemType::L0_C, cores.l0c_bytes);
  return cores;
}

}  // namespace blitz_npu::glue

// The tiling structs the kernel's tiling data embeds (CANN generates kernel_tiling.h from the
// host tiling definitions). SoftMaxTiling's fields are those of
// docs/zh/api/SIMD-API/高阶API/激活函数/SoftMax接口/SoftMax-Tiling使用说明.md; TCubeTiling holds
// the Matmul tiling fields (Matmul-Tiling类/Matmul-Tiling类使用说明.md) the model reads or the
// launcher fills. Plain data: the host tiling and the kernel share the layout.
#pragma once

#include <cstdint>

namespace AscendC {
namespace tiling {

struct TCubeTiling {
  int32_t usedCoreNum = 0;
  int32_t M = 0, N = 0, Ka = 0, Kb = 0;
  int32_t singleCoreM = 0, singleCoreN = 0, singleCoreK = 0;
  int32_t baseM = 0, baseN = 0, baseK = 0;
  int32_t depthA1 = 0, depthB1 = 0, stepM = 0, stepN = 0, stepKa = 0, stepKb = 0;
  int32_t isBias = 0, transLength = 0, iterateOrder = 0;
  int32_t shareMode = 0, shareL1Size = 0, shareL0CSize = 0, shareUbSize = 0;
  int32_t batchM = 0, batchN = 0, singleBatchM = 0, singleBatchN = 0;
  int32_t dbL0A = 0, dbL0B = 0, dbL0C = 0;
};

struct SoftMaxTiling {
  uint32_t srcM = 0;
  uint32_t srcK = 0;
  uint32_t srcSize = 0;
  uint32_t outMaxM = 0;
  uint32_t outMaxK = 0;
  uint32_t outMaxSize = 0;
  uint32_t splitM = 0;
  uint32_t splitK = 0;
  uint32_t splitSize = 0;
  uint32_t reduceM = 0;
  uint32_t reduceK = 0;
  uint32_t reduceSize = 0;
  uint32_t rangeM = 0;
  uint32_t tailM = 0;
  uint32_t tailSplitSize = 0;
  uint32_t tailReduceSize = 0;
};

}  // namespace tiling
}  // namespace AscendC

// Host-side SoftmaxFlashV2 tiling stand-ins (impl/adv_api/tiling/activation/softmax_tiling.cpp,
// arch 2201 branch, isBasicBlock = false, isFlashOutputBrc = false).
#include "blitz_sim/softmax.h"

#include <stdexcept>

namespace blitz_sim {

namespace {
constexpr uint32_t kBlock = 32;
constexpr uint32_t kBasicBlockUnit = 64;  // SOFTMAX_BASICBLOCK_UNIT
constexpr uint32_t kTmpBufferCount = 2;   // SOFTMAX_TMPBUFFER_COUNT
constexpr uint32_t kBasicTileNum = 8;     // BASIC_TILE_NUM

void check_args(uint32_t srcM, uint32_t srcK, uint32_t size1, uint32_t size2)
{
  if (srcM == 0 || srcK == 0) throw std::invalid_argument("SoftmaxFlashV2 tiling: empty shape");
  if ((size1 != 2 && size1 != 4) || (size2 != 2 && size2 != 4)) {
    throw std::invalid_argument("SoftmaxFlashV2 tiling: data type sizes must be 2 or 4");
  }
  if ((srcK * size1) % kBlock != 0) throw std::invalid_argument("SoftmaxFlashV2 tiling: srcK not 32-byte aligned");
}
}  // namespace

uint32_t SoftmaxFlashV2MinTmpBytes(uint32_t srcM, uint32_t srcK, uint32_t size1, uint32_t size2, bool)
{
  check_args(srcM, srcK, size1, size2);
  const uint32_t perBlk = kBlock / size2;
  const uint32_t floats = size1 == 2 ? perBlk * kTmpBufferCount + srcK + kBasicBlockUnit : perBlk + kBasicBlockUnit;
  return floats * 4;
}

void SoftmaxFlashV2Tiling(uint32_t srcM, uint32_t srcK, uint32_t size1, uint32_t size2, uint32_t localWorkSpaceSize,
                          bool, AscendC::tiling::SoftMaxTiling *t)
{
  check_args(srcM, srcK, size1, size2);
  const uint32_t perBlk = kBlock / size2;
  const uint32_t work = localWorkSpaceSize / 4;
  uint32_t baseM = size1 == 2 ? work / (perBlk * kTmpBufferCount + srcK + kBasicBlockUnit) : work / (perBlk + kBasicBlockUnit);
  baseM = std::min(baseM, srcM);
  if (baseM < srcM && baseM > kBasicTileNum) baseM = baseM / kBasicTileNum * kBasicTileNum;
  *t = AscendC::tiling::SoftMaxTiling();
  t->srcM = srcM;
  t->srcK = srcK;
  t->srcSize = srcM * srcK;
  t->outMaxM = srcM;
  t->outMaxK = perBlk;
  t->outMaxSize = srcM * perBlk;
  t->reduceM = baseM;
  t->reduceK = perBlk;
  t->reduceSize = baseM * perBlk;
  t->splitM = baseM;
  t->splitK = srcK;
  t->splitSize = baseM * srcK;
  const uint32_t tail = baseM ? srcM % baseM : 0;
  t->rangeM = baseM ? srcM / baseM : 0;
  t->tailM = tail;
  t->tailSplitSize = tail * srcK;
  t->tailReduceSize = tail * perBlk;
}

}  // namespace blitz_sim

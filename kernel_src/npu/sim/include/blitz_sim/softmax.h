// SoftmaxFlashV2 (docs/zh/api/SIMD-API/高阶API/激活函数/SoftMax接口/SoftmaxFlashV2.md; update
// rule from impl/adv_api/detail/activation/softmax/membase/common/softmax_flashv2_common_impl.h)
// and its host tiling (SoftmaxFlashV2-Tiling接口.md; the minimum tmp size formula of
// impl/adv_api/tiling/activation/softmax_tiling.cpp for arch 2201, non-basic-block).
//   isUpdate=false: max = rowmax(x), dst = exp(x - max), sum = rowsum(dst); expMax not written.
//   isUpdate=true:  m' = max(inMax, rowmax(x)), dst = exp(x - m'), expMax = exp(inMax - m'),
//                   sum = expMax * inSum + rowsum(dst).
// Stats tensors hold one 32 B block per row (the value 8 times for float); srcK * sizeof(T) a
// multiple of 32; all srcK columns take part (the caller pads oriSrcK..srcK). Aliases allowed:
// dst = src, max = inMax, sum = inSum; tmp overlaps nothing and holds at least the minimum.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "blitz_sim/vector.h"
#include "kernel_tiling/kernel_tiling.h"

namespace AscendC {

// SoftMaxShapeInfo{srcM, srcK, oriSrcM, oriSrcK} (SoftmaxFlashV2.md).
struct SoftMaxShapeInfo {
  uint32_t srcM = 0;
  uint32_t srcK = 0;
  uint32_t oriSrcM = 0;
  uint32_t oriSrcK = 0;
};

}  // namespace AscendC

namespace blitz_sim {

// GetSoftMaxFlashV2MinTmpSize stand-in for arch 2201 without basic blocks: for a float source
// (elementNumPerBlk + 64) floats, for half (2 * elementNumPerBlk + srcK + 64) floats, where
// elementNumPerBlk = 32 / sizeof(stats type). isUpdate does not change it on 2201.
uint32_t SoftmaxFlashV2MinTmpBytes(uint32_t srcM, uint32_t srcK, uint32_t dataTypeSize1, uint32_t dataTypeSize2,
                                   bool isUpdate);
// SoftMaxFlashV2TilingFunc stand-in (the AscendC::tiling::SoftMaxTiling overload).
void SoftmaxFlashV2Tiling(uint32_t srcM, uint32_t srcK, uint32_t dataTypeSize1, uint32_t dataTypeSize2,
                          uint32_t localWorkSpaceSize, bool isUpdate, AscendC::tiling::SoftMaxTiling *tiling);

inline bool ranges_overlap(uint32_t a, uint32_t an, uint32_t b, uint32_t bn) { return a < b + bn && b < a + an; }

// The writes of one SoftmaxFlashV2 (V pipe op `op`) as the ordering check sees them.
inline void softmax_access(const char *api, uint64_t op, uint32_t tmp, uint32_t tmpBytes, uint32_t d,
                           uint32_t rowsBytes, uint32_t mx, uint32_t sm, uint32_t em, uint32_t statBytes, bool isUpdate)
{
  ub_access(api, kPipeV, op, tmp, tmpBytes, true);
  ub_access(api, kPipeV, op, d, rowsBytes, true);
  ub_access(api, kPipeV, op, mx, statBytes, true);
  ub_access(api, kPipeV, op, sm, statBytes, true);
  if (isUpdate) ub_access(api, kPipeV, op, em, statBytes, true);
}

}  // namespace blitz_sim

namespace AscendC {

template <typename T, bool isUpdate = false, bool isReuseSource = false, bool isBasicBlock = false,
          bool isDataFormatNZ = false>
inline void SoftmaxFlashV2(const LocalTensor<T> &dstTensor, const LocalTensor<T> &expSumTensor,
                           const LocalTensor<T> &maxTensor, const LocalTensor<T> &srcTensor,
                           const LocalTensor<T> &expMaxTensor, const LocalTensor<T> &inExpSumTensor,
                           const LocalTensor<T> &inMaxTensor, const LocalTensor<uint8_t> &sharedTmpBuffer,
                           const tiling::SoftMaxTiling &tiling, const SoftMaxShapeInfo &softmaxShapeInfo)
{
  const char *api = "SoftmaxFlashV2";
  static_assert(std::is_same<T, float>::value, "the model implements the float SoftmaxFlashV2");
  static_assert(!isBasicBlock && !isDataFormatNZ, "the model implements the ND, non-basic-block form");
  (void)tiling;  // the kernel recomputes its split from the tmp size when shapes differ; results do not depend on it
  const uint32_t m = softmaxShapeInfo.srcM, k = softmaxShapeInfo.srcK;
  if ((k * sizeof(T)) % 32 != 0) blitz_sim::fail(api, blitz_sim::msg("srcK ", k, " * sizeof(T) is not a multiple of 32 bytes"));
  if (softmaxShapeInfo.oriSrcK > k || softmaxShapeInfo.oriSrcM > m) blitz_sim::fail(api, "oriSrcM/oriSrcK exceed srcM/srcK");
  if (m == 0 || k == 0) blitz_sim::fail(api, "empty shape");
  constexpr uint32_t statStride = 32 / sizeof(T);
  for (const LocalTensor<T> *t : {&dstTensor, &expSumTensor, &maxTensor, &srcTensor, &expMaxTensor, &inExpSumTensor, &inMaxTensor}) {
    blitz_sim::check_vec_operand(api, *t);
  }
  blitz_sim::check_vec_operand(api, sharedTmpBuffer);
  const uint32_t s = srcTensor.span(api, 0, uint64_t(m) * k), d = dstTensor.span(api, 0, uint64_t(m) * k);
  const uint32_t mx = maxTensor.span(api, 0, uint64_t(m) * statStride), sm = expSumTensor.span(api, 0, uint64_t(m) * statStride);
  const uint32_t imx = inMaxTensor.span(api, 0, uint64_t(m) * statStride),
                 ism = inExpSumTensor.span(api, 0, uint64_t(m) * statStride);
  const uint32_t em = isUpdate ? expMaxTensor.span(api, 0, uint64_t(m) * statStride) : expMaxTensor.addr();
  const uint32_t minTmp = blitz_sim::SoftmaxFlashV2MinTmpBytes(m, k, sizeof(T), sizeof(T), isUpdate);
  const uint32_t tmpBytes = sharedTmpBuffer.len();
  if (tmpBytes < minTmp) {
    blitz_sim::fail(api, blitz_sim::msg("sharedTmpBuffer of ", tmpBytes, " bytes < GetSoftMaxFlashV2MinTmpSize ", minTmp));
  }
  const uint32_t tmp = sharedTmpBuffer.addr();
  const uint32_t rowsBytes = m * k * sizeof(T), statBytes = m * 32;
  const struct { uint32_t a, n; } others[] = {{s, rowsBytes}, {d, rowsBytes}, {mx, statBytes}, {sm, statBytes},
                                              {imx, statBytes}, {ism, statBytes}, {em, isUpdate ? statBytes : 0u}};
  for (auto o : others) {
    if (o.n && blitz_sim::ranges_overlap(tmp, tmpBytes, o.a, o.n)) blitz_sim::fail(api, "sharedTmpBuffer overlaps an operand");
  }
  if (s != d && blitz_sim::ranges_overlap(s, rowsBytes, d, rowsBytes)) blitz_sim::fail(api, "src and dst partly overlap");
  const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeV);
  blitz_sim::ub_access(api, blitz_sim::kPipeV, op, s, rowsBytes, false);
  if (isUpdate) {
    blitz_sim::ub_access(api, blitz_sim::kPipeV, op, imx, statBytes, false);
    blitz_sim::ub_access(api, blitz_sim::kPipeV, op, ism, statBytes, false);
  }
  // max, exp, sum: three passes over the source, each element once.
  blitz_sim::count_vec(uint64_t(m) * k * 3, 3 * blitz_sim::repeats_of(uint64_t(m) * k, sizeof(T)));
  if (!blitz_sim::computes()) {  // counting only: the results and the tmp garbage are never written
    for (auto o : {std::pair<uint32_t, uint32_t>{tmp, tmpBytes}, {d, rowsBytes}, {mx, statBytes}, {sm, statBytes},
                   {em, isUpdate ? statBytes : 0u}}) {
      blitz_sim::ub_produced(o.first, o.second);
    }
    blitz_sim::softmax_access(api, op, tmp, tmpBytes, d, rowsBytes, mx, sm, em, statBytes, isUpdate);
    return;
  }
  T *src = srcTensor.ptr();
  T *dst = dstTensor.ptr();
  T *maxOut = maxTensor.ptr(), *sumOut = expSumTensor.ptr();
  const T *inMax = inMaxTensor.ptr(), *inSum = inExpSumTensor.ptr();
  T *expMax = expMaxTensor.ptr();
  for (uint32_t r = 0; r < m; ++r) {
    const T *x = src + uint64_t(r) * k;
    float rowMax = x[0];
    for (uint32_t c = 1; c < k; ++c) rowMax = std::max(rowMax, static_cast<float>(x[c]));
    const float oldMax = isUpdate ? static_cast<float>(inMax[r * statStride]) : 0.0f;
    const float oldSum = isUpdate ? static_cast<float>(inSum[r * statStride]) : 0.0f;
    const float newMax = isUpdate ? std::max(oldMax, rowMax) : rowMax;
    float rowSum = 0.0f;
    T *y = dst + uint64_t(r) * k;
    for (uint32_t c = 0; c < k; ++c) {
      const float e = std::exp(static_cast<float>(x[c]) - newMax);
      y[c] = static_cast<T>(e);
      rowSum += e;
    }
    float newSum = rowSum;
    if (isUpdate) {
      const float scale = std::exp(oldMax - newMax);
      newSum = scale * oldSum + rowSum;
      for (uint32_t j = 0; j < statStride; ++j) expMax[r * statStride + j] = static_cast<T>(scale);
    }
    for (uint32_t j = 0; j < statStride; ++j) {
      maxOut[r * statStride + j] = static_cast<T>(newMax);
      sumOut[r * statStride + j] = static_cast<T>(newSum);
    }
  }
  // tmp holds intermediate results: its contents are garbage afterwards.
  std::memset(blitz_sim::current().ub + tmp, 0xFF, tmpBytes);
  blitz_sim::softmax_access(api, op, tmp, tmpBytes, d, rowsBytes, mx, sm, em, statBytes, isUpdate);
}

}  // namespace AscendC

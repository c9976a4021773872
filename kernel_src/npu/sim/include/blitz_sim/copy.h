// GM <-> UB copies (docs/zh/api/SIMD-API/基础API/Memory矢量计算/数据搬运/):
//   DataCopy（GM与UB连续数据搬运）.md: DataCopy(dst, src, count). UB address 32 B aligned;
//     count * sizeof(T) must be a multiple of 32 B (the NPU silently rounds the length down,
//     the CPU build asserts: a violation here).
//   DataCopyPad（GMToUB非对齐数据搬运）.md: DataCopyPad(local, global, DataCopyExtParams,
//     DataCopyPadExtParams<T>). blockCount 1..4095 blocks of blockLen bytes (a multiple of
//     sizeof(T), <= 2097151); srcStride = GM gap in bytes, dstStride = UB gap in 32 B blocks;
//     each UB block is left pad + data + right pad rounded up to 32 B; pads <= 32 B each.
//     Fill: isPad -> paddingValue; no pads and an unaligned block -> the block's first element
//     (dummy); otherwise random (the model writes 0xFF bytes: NaN for floats).
//   DataCopyPad（UBToGM非对齐数据搬运）.md: DataCopyPad(global, local, DataCopyExtParams).
//     srcStride = UB gap in 32 B blocks, dstStride = GM gap in bytes; each UB block is read as
//     ceil32(blockLen) bytes, of which blockLen reach GM.
// GM -> UB runs on MTE2, UB -> GM on MTE3 (counters gm_to_ub_bytes / ub_to_gm_bytes and the
// instruction counts). Counting-only launches (launch.h) check and count every copy; UB -> GM
// writes nothing, GM -> UB moves bytes only from GM the launch has not written.
#pragma once

#include <cstdint>
#include <cstring>

#include "blitz_sim/core.h"
#include "blitz_sim/tensor.h"

namespace AscendC {

// DataCopyExtParams (数据搬运辅助配置接口 / DataCopyPad pages): field order blockCount,
// blockLen, srcStride, dstStride, rsv.
struct DataCopyExtParams {
  uint16_t blockCount = 0;
  uint32_t blockLen = 0;
  uint32_t srcStride = 0;
  uint32_t dstStride = 0;
  uint32_t rsv = 0;
  DataCopyExtParams() = default;
  DataCopyExtParams(uint16_t count, uint32_t len, uint32_t srcStrideIn, uint32_t dstStrideIn, uint32_t rsvIn)
      : blockCount(count), blockLen(len), srcStride(srcStrideIn), dstStride(dstStrideIn), rsv(rsvIn) {}
};

template <typename T>
struct DataCopyPadExtParams {
  bool isPad = false;
  uint8_t leftPadding = 0;
  uint8_t rightPadding = 0;
  T paddingValue = T();
  DataCopyPadExtParams() = default;
  DataCopyPadExtParams(bool pad, uint8_t left, uint8_t right, T value)
      : isPad(pad), leftPadding(left), rightPadding(right), paddingValue(value) {}
};

}  // namespace AscendC

namespace blitz_sim {

constexpr uint32_t kMaxBlockCount = 4095;
constexpr uint32_t kMaxPadBlockLen = 2097151;

inline uint32_t ceil32(uint64_t n) { return static_cast<uint32_t>((n + 31) / 32 * 32); }

inline void check_ub_aligned(const char *api, uint32_t addr)
{
  if (addr % kUbBlock != 0) fail(api, msg("UB address ", addr, " is not 32-byte aligned"));
}

}  // namespace blitz_sim

namespace AscendC {

// GM -> UB, count elements (DataCopy（GM与UB连续数据搬运）.md).
template <typename T>
inline void DataCopy(const LocalTensor<T> &dst, const GlobalTensor<T> &src, uint32_t count)
{
  const char *api = "DataCopy(GM->UB)";
  const uint32_t addr = dst.span(api, 0, count);
  blitz_sim::check_ub_aligned(api, addr);
  if ((count * sizeof(T)) % 32 != 0) {
    blitz_sim::fail(api, blitz_sim::msg(count, " elements = ", count * sizeof(T),
                                        " bytes, not a multiple of 32 (the NPU rounds the length down)"));
  }
  src.check(api, 0, count);
  const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeMTE2);
  blitz_sim::ub_access(api, blitz_sim::kPipeMTE2, op, addr, count * sizeof(T), true);
  if (blitz_sim::gm_defined(src.GetPhyAddr(), count * sizeof(T))) {
    std::memcpy(dst.ptr(), src.GetPhyAddr(), count * sizeof(T));
    blitz_sim::ub_loaded(addr, count * sizeof(T));
  } else {
    blitz_sim::ub_produced(addr, count * sizeof(T));  // counting only: never computed
  }
  blitz_sim::current().counters.gm_to_ub_bytes += count * sizeof(T);
  blitz_sim::current().counters.gm_to_ub_copies += 1;
}

// UB -> GM, count elements.
template <typename T>
inline void DataCopy(const GlobalTensor<T> &dst, const LocalTensor<T> &src, uint32_t count)
{
  const char *api = "DataCopy(UB->GM)";
  const uint32_t addr = src.span(api, 0, count);
  blitz_sim::check_ub_aligned(api, addr);
  if ((count * sizeof(T)) % 32 != 0) {
    blitz_sim::fail(api, blitz_sim::msg(count, " elements = ", count * sizeof(T),
                                        " bytes, not a multiple of 32 (the NPU rounds the length down)"));
  }
  dst.check(api, 0, count);
  const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeMTE3);
  blitz_sim::ub_access(api, blitz_sim::kPipeMTE3, op, addr, count * sizeof(T), false);
  if (blitz_sim::computes()) std::memcpy(dst.GetPhyAddr(), src.ptr(), count * sizeof(T));
  blitz_sim::gm_produced(dst.GetPhyAddr(), count * sizeof(T));
  blitz_sim::gm_written(api, dst.GetPhyAddr(), count * sizeof(T), op);
  blitz_sim::current().counters.ub_to_gm_bytes += count * sizeof(T);
  blitz_sim::current().counters.ub_to_gm_copies += 1;
}

// GM -> UB with padding (DataCopyPad（GMToUB非对齐数据搬运）.md).
template <typename T>
inline void DataCopyPad(const LocalTensor<T> &dst, const GlobalTensor<T> &src, const DataCopyExtParams &p,
                        const DataCopyPadExtParams<T> &pad)
{
  const char *api = "DataCopyPad(GM->UB)";
  dst.live(api);
  blitz_sim::check_ub_aligned(api, dst.addr());
  if (p.blockCount == 0 || p.blockLen == 0) return;  // no-op
  if (p.blockCount > blitz_sim::kMaxBlockCount) blitz_sim::fail(api, blitz_sim::msg("blockCount ", p.blockCount, " > 4095"));
  if (p.blockLen > blitz_sim::kMaxPadBlockLen) {
    blitz_sim::fail(api, blitz_sim::msg("blockLen ", p.blockLen, " > ", blitz_sim::kMaxPadBlockLen));
  }
  if (p.blockLen % sizeof(T) != 0) {
    blitz_sim::fail(api, blitz_sim::msg("blockLen ", p.blockLen, " bytes is not a multiple of sizeof(T) = ", sizeof(T)));
  }
  const uint32_t left = pad.leftPadding * sizeof(T), right = pad.rightPadding * sizeof(T);
  if (left > 32 || right > 32) {
    blitz_sim::fail(api, blitz_sim::msg("leftPadding/rightPadding ", left, "/", right, " bytes exceed 32 bytes"));
  }
  const uint32_t blockBytes = blitz_sim::ceil32(uint64_t(left) + p.blockLen + right);
  const uint64_t ubSpan = uint64_t(p.blockCount - 1) * (blockBytes + uint64_t(p.dstStride) * 32) + blockBytes;
  if (ubSpan > uint64_t(dst.len()) * sizeof(T)) {
    blitz_sim::fail(api, blitz_sim::msg("writes ", ubSpan, " UB bytes into a tensor of ", dst.len() * sizeof(T)));
  }
  const uint64_t gmSpan = uint64_t(p.blockCount - 1) * (uint64_t(p.blockLen) + p.srcStride) + p.blockLen;
  if (gmSpan % sizeof(T) != 0) {
    blitz_sim::fail(api, blitz_sim::msg("srcStride ", p.srcStride, " bytes is not a multiple of sizeof(T)"));
  }
  const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeMTE2);
  const uint8_t *g = reinterpret_cast<const uint8_t *>(src.GetPhyAddr());
  uint8_t *ub = blitz_sim::current().ub;
  // Counting only: GM this launch wrote holds nothing computed, so nothing is moved from it.
  const bool moves = blitz_sim::gm_defined(g, gmSpan);
  for (uint32_t b = 0; b < p.blockCount; ++b) {
    const uint8_t *gb = g + uint64_t(b) * (uint64_t(p.blockLen) + p.srcStride);
    src.check(api, static_cast<uint64_t>(gb - g) / sizeof(T), p.blockLen / sizeof(T));
    const uint32_t ubb = dst.addr() + b * (blockBytes + p.dstStride * 32);
    blitz_sim::ub_access(api, blitz_sim::kPipeMTE2, op, ubb, blockBytes, true);
    if (!moves) {
      blitz_sim::ub_produced(ubb, blockBytes);
      continue;
    }
    blitz_sim::ub_loaded(ubb, blockBytes);
    uint8_t *u = ub + ubb;
    std::memset(u, 0xFF, blockBytes);  // "random" fill
    std::memcpy(u + left, gb, p.blockLen);
    if (pad.isPad) {
      for (uint32_t o = 0; o < left; o += sizeof(T)) std::memcpy(u + o, &pad.paddingValue, sizeof(T));
      for (uint32_t o = left + p.blockLen; o < blockBytes; o += sizeof(T)) std::memcpy(u + o, &pad.paddingValue, sizeof(T));
    } else if (left == 0 && right == 0) {
      for (uint32_t o = p.blockLen; o < blockBytes; o += sizeof(T)) std::memcpy(u + o, gb, sizeof(T));
    }
  }
  blitz_sim::current().counters.gm_to_ub_bytes += uint64_t(p.blockCount) * p.blockLen;
  blitz_sim::current().counters.gm_to_ub_copies += 1;
}

// UB -> GM (DataCopyPad（UBToGM非对齐数据搬运）.md).
template <typename T>
inline void DataCopyPad(const GlobalTensor<T> &dst, const LocalTensor<T> &src, const DataCopyExtParams &p)
{
  const char *api = "DataCopyPad(UB->GM)";
  src.live(api);
  blitz_sim::check_ub_aligned(api, src.addr());
  if (p.blockCount == 0 || p.blockLen == 0) return;
  if (p.blockCount > blitz_sim::kMaxBlockCount) blitz_sim::fail(api, blitz_sim::msg("blockCount ", p.blockCount, " > 4095"));
  if (p.blockLen > blitz_sim::kMaxPadBlockLen) {
    blitz_sim::fail(api, blitz_sim::msg("blockLen ", p.blockLen, " > ", blitz_sim::kMaxPadBlockLen));
  }
  if (p.blockLen % sizeof(T) != 0) {
    blitz_sim::fail(api, blitz_sim::msg("blockLen ", p.blockLen, " bytes is not a multiple of sizeof(T) = ", sizeof(T)));
  }
  if ((uint64_t(p.blockLen) + p.dstStride) % sizeof(T) != 0) {
    blitz_sim::fail(api, blitz_sim::msg("dstStride ", p.dstStride, " bytes is not a multiple of sizeof(T)"));
  }
  const uint32_t blockBytes = blitz_sim::ceil32(p.blockLen);
  const uint64_t ubSpan = uint64_t(p.blockCount - 1) * (blockBytes + uint64_t(p.srcStride) * 32) + blockBytes;
  if (ubSpan > uint64_t(src.len()) * sizeof(T)) {
    blitz_sim::fail(api, blitz_sim::msg("reads ", ubSpan, " UB bytes (each block rounded up to 32) from a tensor of ",
                                        src.len() * sizeof(T)));
  }
  const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeMTE3);
  uint8_t *g = reinterpret_cast<uint8_t *>(dst.GetPhyAddr());
  const uint8_t *ub = blitz_sim::current().ub;
  for (uint32_t b = 0; b < p.blockCount; ++b) {
    uint8_t *gb = g + uint64_t(b) * (uint64_t(p.blockLen) + p.dstStride);
    dst.check(api, static_cast<uint64_t>(gb - g) / sizeof(T), p.blockLen / sizeof(T));
    const uint32_t ubb = src.addr() + b * (blockBytes + p.srcStride * 32);
    blitz_sim::ub_access(api, blitz_sim::kPipeMTE3, op, ubb, blockBytes, false);
    if (blitz_sim::computes()) std::memcpy(gb, ub + ubb, p.blockLen);
    blitz_sim::gm_written(api, gb, p.blockLen, op);
  }
  blitz_sim::gm_produced(g, uint64_t(p.blockCount - 1) * (uint64_t(p.blockLen) + p.dstStride) + p.blockLen);
  blitz_sim::current().counters.ub_to_gm_bytes += uint64_t(p.blockCount) * p.blockLen;
  blitz_sim::current().counters.ub_to_gm_copies += 1;
}

}  // namespace AscendC

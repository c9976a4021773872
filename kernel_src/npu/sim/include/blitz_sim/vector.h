// Vector APIs the kernel calls (docs/zh/api/SIMD-API/基础API/Memory矢量计算/, rules from
// 通用说明和约束.md and SIMD计算说明/{连续计算,高维切分,掩码}.md):
//   operands 32 B aligned; within one 256 B repeat a source and the destination overlap fully or
//   not at all; the repeat form takes repeatTime <= 255 (0 = no-op) and a contiguous mask of
//   1..256/sizeof(T) elements; a b32 bit mask uses mask[0] only; masked-off elements are kept.
// All run on the V pipe and count themselves (vector_instrs), their 256 B repeats and their
// processed elements. In a counting-only launch they check and count but write no data.
#pragma once

#include <cmath>
#include <cstdint>

#include "blitz_sim/core.h"
#include "blitz_sim/numeric.h"
#include "blitz_sim/tensor.h"

namespace AscendC {

// BinaryRepeatParams (辅助数据结构/BinaryRepeatParams.md): dstBlkStride, src0BlkStride,
// src1BlkStride, dstRepStride, src0RepStride, src1RepStride; u8 each; defaults 1,1,1,8,8,8.
struct BinaryRepeatParams {
  uint8_t dstBlkStride = 1, src0BlkStride = 1, src1BlkStride = 1;
  uint8_t dstRepStride = 8, src0RepStride = 8, src1RepStride = 8;
  BinaryRepeatParams() = default;
  BinaryRepeatParams(uint8_t dB, uint8_t s0B, uint8_t s1B, uint8_t dR, uint8_t s0R, uint8_t s1R)
      : dstBlkStride(dB), src0BlkStride(s0B), src1BlkStride(s1B), dstRepStride(dR), src0RepStride(s0R),
        src1RepStride(s1R) {}
};

// RoundMode (类型转换/Cast.md, RoundMode取值说明).
enum class RoundMode { CAST_NONE = 0, CAST_RINT, CAST_FLOOR, CAST_CEIL, CAST_ROUND, CAST_TRUNC, CAST_ODD, CAST_HYBRID };

// CMPMODE (比较与选择/Compares.md).
enum class CMPMODE : uint8_t { LT = 0, GT, EQ, LE, GE, NE };

// SELMODE (比较与选择/Select.md).
enum class SELMODE : uint8_t { VSEL_CMPMASK_SPR = 0, VSEL_TENSOR_SCALAR_MODE, VSEL_TENSOR_TENSOR_MODE };

}  // namespace AscendC

namespace blitz_sim {

constexpr uint32_t kRepeatBytes = 256;
constexpr uint32_t kMaxRepeat = 255;  // MAX_REPEAT_TIMES (kernel_utils_constants.h)

template <typename T>
inline void check_vec_operand(const char *api, const AscendC::LocalTensor<T> &t)
{
  t.live(api);
  if (t.addr() % kUbBlock != 0) fail(api, msg("operand at UB byte ", t.addr(), " is not 32-byte aligned"));
}

// Count form: operands laid out contiguously; a source overlapping the destination must start at
// the same address or a whole repeat away (通用说明和约束.md, 地址重叠约束).
inline void check_overlap(const char *api, uint32_t dst, uint32_t dstBytes, uint32_t src, uint32_t srcBytes)
{
  if (dst == src) return;
  const bool disjoint = dst + dstBytes <= src || src + srcBytes <= dst;
  const uint32_t gap = dst > src ? dst - src : src - dst;
  if (!disjoint && gap < kRepeatBytes) {
    fail(api, msg("source UB [", src, ", ", src + srcBytes, ") partly overlaps destination [", dst, ", ",
                  dst + dstBytes, ") within one repeat"));
  }
}

// One elementwise count-form op over count elements, reading the given sources (UB address,
// bytes): checks, then compute(dst.ptr()) writes the results (numeric launches only; it reads
// every source before writing, as dst may be a source), then counts. widest = the largest
// operand element size, which sets the repeats.
template <typename D, typename F>
inline void vec_count(const char *api, const AscendC::LocalTensor<D> &dst, uint32_t count, uint32_t widest,
                      F compute, std::initializer_list<std::pair<uint32_t, uint32_t>> srcs)
{
  if (count == 0) return;
  const uint32_t d = dst.span(api, 0, count);
  const uint64_t op = pipe_op(kPipeV);
  for (auto s : srcs) {
    check_overlap(api, d, count * sizeof(D), s.first, s.second);
    ub_access(api, kPipeV, op, s.first, s.second, false);
  }
  ub_access(api, kPipeV, op, d, count * sizeof(D), true);
  if (computes()) {
    compute(dst.ptr());
  } else {
    ub_produced(d, count * sizeof(D));
  }
  count_vec(count, repeats_of(count, widest));
}

template <typename T>
inline uint32_t src_span(const char *api, const AscendC::LocalTensor<T> &src, uint32_t count)
{
  check_vec_operand(api, src);
  return src.span(api, 0, count);
}

}  // namespace blitz_sim

namespace AscendC {

// Muls.md: dst = src * scalar (count form).
template <typename T>
inline void Muls(const LocalTensor<T> &dst, const LocalTensor<T> &src, const T &scalar, const int32_t &count)
{
  const char *api = "Muls";
  blitz_sim::check_vec_operand(api, dst);
  const uint32_t n = static_cast<uint32_t>(count);
  const uint32_t s = blitz_sim::src_span(api, src, n);
  blitz_sim::vec_count(api, dst, n, sizeof(T), [&](T *out) {
    const std::vector<T> in(src.ptr(), src.ptr() + n);  // every source element before any write
    for (uint32_t i = 0; i < n; ++i) out[i] = static_cast<T>(in[i] * scalar);
  }, {{s, n * sizeof(T)}});
}

// Adds.md: dst = src + scalar (count form).
template <typename T>
inline void Adds(const LocalTensor<T> &dst, const LocalTensor<T> &src, const T &scalar, const int32_t &count)
{
  const char *api = "Adds";
  blitz_sim::check_vec_operand(api, dst);
  const uint32_t n = static_cast<uint32_t>(count);
  const uint32_t s = blitz_sim::src_span(api, src, n);
  blitz_sim::vec_count(api, dst, n, sizeof(T), [&](T *out) {
    const std::vector<T> in(src.ptr(), src.ptr() + n);
    for (uint32_t i = 0; i < n; ++i) out[i] = static_cast<T>(in[i] + scalar);
  }, {{s, n * sizeof(T)}});
}

// Add.md: dst = src0 + src1 (count form).
template <typename T>
inline void Add(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1, const int32_t &count)
{
  const char *api = "Add";
  blitz_sim::check_vec_operand(api, dst);
  const uint32_t n = static_cast<uint32_t>(count);
  const uint32_t s0 = blitz_sim::src_span(api, src0, n), s1 = blitz_sim::src_span(api, src1, n);
  blitz_sim::vec_count(api, dst, n, sizeof(T), [&](T *out) {
    const std::vector<T> a(src0.ptr(), src0.ptr() + n), b(src1.ptr(), src1.ptr() + n);
    for (uint32_t i = 0; i < n; ++i) out[i] = static_cast<T>(a[i] + b[i]);
  }, {{s0, n * sizeof(T)}, {s1, n * sizeof(T)}});
}

}  // namespace AscendC

namespace blitz_sim {

// Repeat form of a binary op with a contiguous mask (高维切分.md, 掩码.md): repeat r, block k,
// element j of the block sits at base + r*repStride*32 + k*blkStride*32 + j*sizeof(T).
template <typename T, typename Op>
inline void binary_repeat(const char *api, const AscendC::LocalTensor<T> &dst, const AscendC::LocalTensor<T> &src0,
                          const AscendC::LocalTensor<T> &src1, uint64_t mask, uint8_t repeatTime,
                          const AscendC::BinaryRepeatParams &p, Op op)
{
  check_vec_operand(api, dst);
  check_vec_operand(api, src0);
  check_vec_operand(api, src1);
  constexpr uint32_t perRepeat = kRepeatBytes / sizeof(T);
  constexpr uint32_t perBlock = kUbBlock / sizeof(T);
  if (mask == 0 || mask > perRepeat) {
    fail(api, msg("contiguous mask ", mask, " outside 1..", perRepeat, " for ", sizeof(T) * 8, "-bit elements"));
  }
  if (repeatTime == 0) return;
  // repeatTime is u8 in the prototype, so the 255 limit is the type's; a caller's value above
  // it would already have wrapped (mask_ops / row_ops pass u8 casts).
  if (p.dstBlkStride == 0) fail(api, "dstBlkStride 0 is undefined (高维切分.md)");
  auto addr = [&](const AscendC::LocalTensor<T> &, uint32_t r, uint32_t e, uint8_t blk, uint8_t rep) {
    return uint64_t(r) * rep * kUbBlock + uint64_t(e / perBlock) * blk * kUbBlock + (e % perBlock) * sizeof(T);
  };
  const uint64_t op_index = pipe_op(kPipeV);
  // Bounds: the last element each operand touches.
  auto check_extent = [&](const AscendC::LocalTensor<T> &t, uint8_t blk, uint8_t rep) {
    const uint64_t last = addr(t, repeatTime - 1u, static_cast<uint32_t>(mask - 1), blk, rep);
    if (last + sizeof(T) > uint64_t(t.len()) * sizeof(T)) {
      fail(api, msg("repeat form touches UB byte ", t.addr() + last, " past the tensor's end ",
                    t.addr() + t.len() * sizeof(T)));
    }
  };
  check_extent(dst, p.dstBlkStride, p.dstRepStride);
  check_extent(src0, p.src0BlkStride, p.src0RepStride);
  check_extent(src1, p.src1BlkStride, p.src1RepStride);
  uint8_t *ub = current().ub;
  const bool numeric = computes();
  for (uint32_t r = 0; r < repeatTime; ++r) {
    T a[perRepeat], b[perRepeat];
    for (uint32_t e = 0; e < mask; ++e) {
      const uint64_t o0 = src0.addr() + addr(src0, r, e, p.src0BlkStride, p.src0RepStride);
      const uint64_t o1 = src1.addr() + addr(src1, r, e, p.src1BlkStride, p.src1RepStride);
      if (numeric) {
        std::memcpy(&a[e], ub + o0, sizeof(T));
        std::memcpy(&b[e], ub + o1, sizeof(T));
      }
      if (e % perBlock == 0) {
        ub_access(api, kPipeV, op_index, static_cast<uint32_t>(o0), kUbBlock, false);
        ub_access(api, kPipeV, op_index, static_cast<uint32_t>(o1), kUbBlock, false);
      }
    }
    for (uint32_t e = 0; e < mask; ++e) {
      const uint64_t od = dst.addr() + addr(dst, r, e, p.dstBlkStride, p.dstRepStride);
      if (numeric) {
        const T v = static_cast<T>(op(a[e], b[e]));
        std::memcpy(ub + od, &v, sizeof(T));
      } else if (e % perBlock == 0) {
        ub_produced(static_cast<uint32_t>(od), kUbBlock);
      }
      if (e % perBlock == 0) ub_access(api, kPipeV, op_index, static_cast<uint32_t>(od), kUbBlock, true);
    }
  }
  count_vec(uint64_t(mask) * repeatTime, repeatTime);
}

}  // namespace blitz_sim

namespace AscendC {

// Mul.md, repeat form with a contiguous mask.
template <typename T>
inline void Mul(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1, uint64_t mask,
                const uint8_t repeatTime, const BinaryRepeatParams &repeatParams)
{
  blitz_sim::binary_repeat("Mul", dst, src0, src1, mask, repeatTime, repeatParams, [](T a, T b) { return a * b; });
}

// Div.md, repeat form with a contiguous mask (f16 / f32).
template <typename T>
inline void Div(const LocalTensor<T> &dst, const LocalTensor<T> &src0, const LocalTensor<T> &src1, uint64_t mask,
                const uint8_t repeatTime, const BinaryRepeatParams &repeatParams)
{
  static_assert(std::is_same<T, float>::value || std::is_same<T, half>::value, "Div takes half / float (Div.md)");
  blitz_sim::binary_repeat("Div", dst, src0, src1, mask, repeatTime, repeatParams, [](T a, T b) { return a / b; });
}

// Duplicate.md, count form: dst[i] = scalar for i < count.
template <typename T>
inline void Duplicate(const LocalTensor<T> &dst, const T &scalarValue, const int32_t &count)
{
  const char *api = "Duplicate";
  blitz_sim::check_vec_operand(api, dst);
  const T v = scalarValue;
  const uint32_t n = static_cast<uint32_t>(count);
  blitz_sim::vec_count(api, dst, n, sizeof(T), [&](T *out) {
    for (uint32_t i = 0; i < n; ++i) out[i] = v;
  }, {});
}

// Duplicate.md, repeat form with a bit mask: bit j of the repeat's mask selects element j
// (b32: mask[0] only, 64 elements; b16: mask[0] then mask[1], 128 elements).
template <typename T>
inline void Duplicate(const LocalTensor<T> &dst, const T &scalarValue, uint64_t mask[], const uint8_t repeatTime,
                      const uint16_t dstBlockStride, const uint8_t dstRepeatStride)
{
  const char *api = "Duplicate(bit mask)";
  blitz_sim::check_vec_operand(api, dst);
  constexpr uint32_t perRepeat = blitz_sim::kRepeatBytes / sizeof(T);
  constexpr uint32_t perBlock = blitz_sim::kUbBlock / sizeof(T);
  if (repeatTime == 0) return;
  if (dstBlockStride == 0) blitz_sim::fail(api, "dstBlockStride 0 is undefined (高维切分.md)");
  auto bit = [&](uint32_t e) { return e < 64 ? (mask[0] >> e) & 1u : (mask[1] >> (e - 64)) & 1u; };
  const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeV);
  uint8_t *ub = blitz_sim::current().ub;
  const bool numeric = blitz_sim::computes();
  uint64_t n = 0;
  for (uint32_t r = 0; r < repeatTime; ++r) {
    for (uint32_t e = 0; e < perRepeat; ++e) {
      if (!bit(e)) continue;  // masked-off elements are not written (掩码.md)
      const uint64_t off = uint64_t(r) * dstRepeatStride * blitz_sim::kUbBlock +
                           uint64_t(e / perBlock) * dstBlockStride * blitz_sim::kUbBlock + (e % perBlock) * sizeof(T);
      if (off + sizeof(T) > uint64_t(dst.len()) * sizeof(T)) {
        blitz_sim::fail(api, blitz_sim::msg("element ", e, " of repeat ", r, " at UB byte ", dst.addr() + off,
                                            " is past the tensor's end ", dst.addr() + dst.len() * sizeof(T)));
      }
      if (numeric) {
        std::memcpy(ub + dst.addr() + off, &scalarValue, sizeof(T));
      } else {
        blitz_sim::ub_produced(static_cast<uint32_t>(dst.addr() + off), sizeof(T));
      }
      blitz_sim::ub_access(api, blitz_sim::kPipeV, op, static_cast<uint32_t>(dst.addr() + off), sizeof(T), true);
      ++n;
    }
  }
  blitz_sim::count_vec(n, repeatTime);
}

}  // namespace AscendC

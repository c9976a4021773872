// The fp32 cell GEMM and the block softmax of cell_kernels.h, written once over a GCC vector
// type of kLanes floats (the including file's flags decide what the vector ops compile to: 16
// lanes under AVX-512, 8 under AVX2, 4 otherwise). The bf16 GEMMs (vdpbf16ps, AMX) live in
// cell_kernels_avx512.cpp / cell_kernels_amx.cpp and share block_softmax.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernel/vec_exp2.h"
#include "select/cell_kernels.h"

namespace blitz::cpu::select::cell_detail {

template <int kLanes>
struct Generic {
  typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
  typedef int32_t IVec __attribute__((vector_size(kLanes * sizeof(int32_t))));
  static constexpr int kPerGroup = static_cast<int>(kGroupCols) / kLanes;  // vectors per 16 columns

  static Vec load(const float *p) {
    Vec v;
    std::memcpy(&v, p, sizeof v);  // unaligned
    return v;
  }
  static void store(float *p, Vec v) { std::memcpy(p, &v, sizeof v); }
  static Vec splat(float x) { return Vec{} + x; }

  // R key cells x G packed query groups: R * G * kPerGroup accumulators, each query vector
  // loaded once per k and each key element broadcast once per k.
  template <int R, int G>
  static void block(const float *keys, int64_t kp, const float *queries, float *c, int64_t cols) {
    constexpr int V = G * kPerGroup;
    Vec acc[R][V] = {};
    for (int64_t k = 0; k < kp; ++k) {
      Vec b[V];
      for (int g = 0; g < G; ++g) {
        for (int v = 0; v < kPerGroup; ++v) b[g * kPerGroup + v] = load(queries + g * kp * kGroupCols + k * kGroupCols + v * kLanes);
      }
      for (int r = 0; r < R; ++r) {
        const Vec a = splat(keys[r * kp + k]);
        for (int x = 0; x < V; ++x) acc[r][x] += a * b[x];
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int x = 0; x < V; ++x) store(c + r * cols + x * kLanes, acc[r][x]);
    }
  }

  // Key rows outer (R rows stay in L1), query groups inner (the chunk's packed queries in L2).
  template <int R, int G>
  static void gemm(const void *keys_v, int64_t rows, int64_t kp, const void *queries_v, int64_t groups, float *c) {
    static_assert(kRowPad % R == 0, "rows come in multiples of kRowPad");
    const float *keys = static_cast<const float *>(keys_v);
    const float *queries = static_cast<const float *>(queries_v);
    const int64_t cols = groups * kGroupCols;
    for (int64_t t = 0; t < rows; t += R) {
      int64_t g = 0;
      for (; g + G <= groups; g += G) {
        block<R, G>(keys + t * kp, kp, queries + g * kp * kGroupCols, c + t * cols + g * kGroupCols, cols);
      }
      for (; g < groups; ++g) {
        block<R, 1>(keys + t * kp, kp, queries + g * kp * kGroupCols, c + t * cols + g * kGroupCols, cols);
      }
    }
  }

  // 2^x for x <= 0 as vec_exp2.h states it: 2^n * p(f), n = round(x), f in [-1/2, 1/2];
  // x < kExp2MinExponent gives 0.
  static Vec exp2_nonpositive(Vec x) {
    const Vec floor_value = splat(kExp2MinExponent);
    const IVec live = x >= floor_value;
    x = x < floor_value ? floor_value : x;
    // Round to nearest by adding 1.5 * 2^23 (the sum's low mantissa bits are then n); no float <->
    // int vector conversion needed (gcc 12 refuses __builtin_convertvector on dependent types).
    constexpr float kMagic = 12582912.0f;
    constexpr int32_t kMagicBits = 0x4B400000;
    const Vec big = x + kMagic;
    const Vec f = x - (big - kMagic);
    IVec n;
    std::memcpy(&n, &big, sizeof n);
    n -= kMagicBits;
    Vec p = splat(kExp2Poly[0]);
    for (int k = 1; k < kExp2PolyTerms; ++k) p = p * f + kExp2Poly[k];
    Vec scale;
    const IVec bits = (n + 127) << 23;  // n >= -126: a normal float 2^n
    std::memcpy(&scale, &bits, sizeof scale);
    return live != 0 ? p * scale : Vec{};
  }

  // cell_kernels.h's block_softmax; rows outer so c streams once per pass, max2 / sum stay in L1.
  static void block_softmax(float *c, int64_t n, int64_t cols, const int64_t *count, const float *bias,
                            const float *coef, float *max2, float *sum) {
    constexpr float kLog2e = 1.4426950408889634f;
    for (int64_t q = 0; q < cols; q += kLanes) store(max2 + q, splat(-INFINITY));
    for (int64_t t = 0; t < n; ++t) {
      float *row = c + t * cols;
      const float *k_coef = coef + (count[t] - 1) * cols;
      const Vec b = splat(bias[t]);
      for (int64_t q = 0; q < cols; q += kLanes) {
        const Vec x = (load(row + q) * load(k_coef + q) + b) * kLog2e;
        store(row + q, x);
        const Vec m = load(max2 + q);
        store(max2 + q, x > m ? x : m);
      }
    }
    for (int64_t q = 0; q < cols; q += kLanes) store(sum + q, Vec{});
    for (int64_t t = 0; t < n; ++t) {
      const float *row = c + t * cols;
      for (int64_t q = 0; q < cols; q += kLanes) {
        store(sum + q, load(sum + q) + exp2_nonpositive(load(row + q) - load(max2 + q)));
      }
    }
  }
};

}  // namespace blitz::cpu::select::cell_detail

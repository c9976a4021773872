// AVX-512 building blocks of the fast path: the register-blocked GEMM micro-kernel (bf16 pairs
// with vdpbf16ps, or fp32 with FMA) and a fast exp2. Include only from *_avx512.cpp files (they
// are compiled with the AVX-512 flags and reached only after the CPUID check).
#pragma once

#if !defined(__AVX512F__) || !defined(__AVX512BF16__)
#error "avx512_micro.h needs -mavx512f -mavx512bf16 (include it only from *_avx512.cpp files)"
#endif

#include <immintrin.h>

#include <cstdint>

namespace blitz::cpu::avx512 {

constexpr int kLanes = 16;        // fp32 lanes in a zmm register: one "column group"
constexpr int kVecBytes = 64;     // one packed B vector: 16 fp32, or 16 bf16 pairs
constexpr int kMicroRows = 4;     // rows of C per micro-kernel call
constexpr int kMicroGroups = 4;   // 16-column groups of C per micro-kernel call
// 4 x 4 accumulators + 4 B vectors + 1 broadcast = 21 of the 32 zmm registers.

// bf16 operands: A is read as 32-bit words (a pair of adjacent bf16 along the reduction), B as
// 16 such pairs; one vdpbf16ps does C[16] += A.lo * B.lo + A.hi * B.hi per lane.
struct Bf16Ops {
  using AElem = uint32_t;  // one bf16 pair
  static inline __m512i broadcast(const AElem *a) { return _mm512_set1_epi32((int)*a); }
  static inline __m512 fma(__m512 acc, __m512i a, __m512i b) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
  }
};

// fp32 operands (fp32 inputs, and fp16 inputs converted to fp32): one FMA per step.
struct F32Ops {
  using AElem = float;
  static inline __m512i broadcast(const AElem *a) { return _mm512_castps_si512(_mm512_set1_ps(*a)); }
  static inline __m512 fma(__m512 acc, __m512i a, __m512i b) {
    return _mm512_fmadd_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b), acc);
  }
};

// C[r][g*16 .. g*16+15] (+)= sum_k A[r][k] * B(g, k) for r < R, g < G, k < steps, where
// A[r][k] = a[r * a_stride + k] (AElem units) and B(g, k) is the 64-byte vector at
// b + g * b_stride_g + k * b_stride_k (bytes). C rows are c_stride floats apart.
template <class Ops, int R, int G, bool kAccumulate>
inline void micro_kernel(const typename Ops::AElem *a, int64_t a_stride, const char *b,
                         int64_t b_stride_g, int64_t b_stride_k, int64_t steps, float *c,
                         int64_t c_stride) {
  __m512 acc[R][G];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g)
      acc[r][g] = kAccumulate ? _mm512_loadu_ps(c + r * c_stride + g * kLanes) : _mm512_setzero_ps();
  for (int64_t k = 0; k < steps; ++k) {
    __m512i bv[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) bv[g] = _mm512_loadu_si512(b + g * b_stride_g + k * b_stride_k);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
      const __m512i av = Ops::broadcast(a + r * a_stride + k);
#pragma GCC unroll 4
      for (int g = 0; g < G; ++g) acc[r][g] = Ops::fma(acc[r][g], av, bv[g]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < G; ++g) _mm512_storeu_ps(c + r * c_stride + g * kLanes, acc[r][g]);
}

// Bytes of B one k-block may touch: half of a 32 KiB L1D, so a block of B (e.g. 64 keys of K,
// or 64 key pairs of V for 64 output columns) stays in L1 while every row chunk uses it.
constexpr int64_t kBBlockBytes = 16 << 10;

// The same over `rows` x `groups` of C, in micro-kernel blocks (tails by smaller blocks).
// Loop order: column blocks, then k-blocks of B sized to L1, then rows innermost, so B is read
// from L2 once per column block instead of once per 4 rows; C (a few KiB) absorbs the partial
// sums of successive k-blocks.
template <class Ops, bool kAccumulate>
inline void gemm(const typename Ops::AElem *a, int64_t a_stride, const char *b, int64_t b_stride_g,
                 int64_t b_stride_k, int64_t steps, float *c, int64_t c_stride, int64_t rows,
                 int64_t groups) {
  using Fn = void (*)(const typename Ops::AElem *, int64_t, const char *, int64_t, int64_t,
                      int64_t, float *, int64_t);
#define BLITZ_MICRO_ROW(R, ACC)                                                   \
  {micro_kernel<Ops, R, 1, ACC>, micro_kernel<Ops, R, 2, ACC>, micro_kernel<Ops, R, 3, ACC>, \
   micro_kernel<Ops, R, 4, ACC>}
  static constexpr Fn kFirst[kMicroRows][kMicroGroups] = {
      BLITZ_MICRO_ROW(1, kAccumulate), BLITZ_MICRO_ROW(2, kAccumulate),
      BLITZ_MICRO_ROW(3, kAccumulate), BLITZ_MICRO_ROW(4, kAccumulate)};
  static constexpr Fn kLater[kMicroRows][kMicroGroups] = {
      BLITZ_MICRO_ROW(1, true), BLITZ_MICRO_ROW(2, true), BLITZ_MICRO_ROW(3, true),
      BLITZ_MICRO_ROW(4, true)};
#undef BLITZ_MICRO_ROW
  for (int64_t g0 = 0; g0 < groups; g0 += kMicroGroups) {
    const int64_t ng = groups - g0 < kMicroGroups ? groups - g0 : kMicroGroups;
    int64_t k_block = kBBlockBytes / (ng * kVecBytes);
    if (k_block < 1) k_block = 1;
    for (int64_t k0 = 0; k0 < steps; k0 += k_block) {
      const int64_t nk = steps - k0 < k_block ? steps - k0 : k_block;
      const Fn(*table)[kMicroGroups] = k0 == 0 ? kFirst : kLater;
      for (int64_t r0 = 0; r0 < rows; r0 += kMicroRows) {
        const int64_t nr = rows - r0 < kMicroRows ? rows - r0 : kMicroRows;
        table[nr - 1][ng - 1](a + r0 * a_stride + k0, a_stride, b + g0 * b_stride_g + k0 * b_stride_k,
                              b_stride_g, b_stride_k, nk, c + r0 * c_stride + g0 * kLanes, c_stride);
      }
    }
  }
}

// Horizontal max / sum of 16 lanes with whole-register shuffles (gcc 12's _mm512_reduce_*
// intrinsics trip -Wuninitialized inside its own headers).
inline float reduce_max(__m512 v) {
  v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(v);
}
inline float reduce_add(__m512 v) {
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
  v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_cvtss_f32(v);
}

// 2^x for x <= 0 (scores minus the running max, in base 2), relative error < 2e-7 (degree-6
// Taylor of 2^f on |f| <= 1/2), far inside bf16/fp16 tolerance. x < -126 (including -inf, a
// masked score) gives exactly 0, so an empty row stays empty rather than a sum of denormals.
inline __m512 exp2_nonpositive(__m512 x) {
  constexpr float kMinExponent = -126.0f;
  const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kMinExponent), _CMP_GE_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(kMinExponent));
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);  // in [-1/2, 1/2]
  // ln2^k / k!, k = 6 .. 0
  __m512 p = _mm512_set1_ps(1.5403530393381606e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129107628477e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866482158e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265069591007e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471805599453e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(live, p, n);
}

}  // namespace blitz::cpu::avx512

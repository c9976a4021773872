// The AVX-512 vector layer (16 fp32 lanes in a zmm register) that tiles_impl.h is written
// against; see vec_avx2.h for the same interface on ymm registers. Include only from
// *_avx512.cpp / *_amx.cpp files (compiled with the AVX-512 flags, reached only after the CPUID
// check in cpu_features.cpp).
//
// bf16 products use vdpbf16ps on pairs of bf16 along the reduction (Bf16Ops); fp32 products
// (fp32 inputs, and fp16 converted to fp32 by vcvtph2ps) use FMA (F32Ops).
#pragma once

#if !defined(__AVX512F__) || !defined(__AVX512BF16__)
#error "vec_avx512.h needs -mavx512f -mavx512bf16 (include it only from *_avx512.cpp files)"
#endif

#include <immintrin.h>

#include <cmath>
#include <cstdint>

#include "kernel/attention_problem.h"
#include "kernel/vec_exp2.h"

namespace blitz::cpu::avx512 {

struct Vec {
  using F = __m512;
  static constexpr int kLanes = 16;              // fp32 lanes: one "column group"
  static constexpr int kVecBytes = kLanes * 4;   // one packed B vector: 16 fp32, or 16 bf16 pairs
  static constexpr bool kBf16Dot = true;         // bf16 stays packed as bf16 pairs (vdpbf16ps)
  static constexpr const char *kName = "avx512";

  static F zero() { return _mm512_setzero_ps(); }
  static F set1(float x) { return _mm512_set1_ps(x); }
  static F load(const float *p) { return _mm512_loadu_ps(p); }
  // 16 elements of type E at p, widened to fp32 exactly (bf16: a 16-bit shift; fp16: F16C).
  template <ElementType E>
  static F load_as_f32(const void *p) {
    if constexpr (E == ElementType::kFloat32) {
      return _mm512_loadu_ps(p);
    } else {
      const __m256i h = _mm256_loadu_si256(static_cast<const __m256i *>(p));
      if constexpr (E == ElementType::kFloat16) return _mm512_cvtph_ps(h);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
  }
  static void store(float *p, F v) { _mm512_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static F fmsub(F a, F b, F c) { return _mm512_fmsub_ps(a, b, c); }  // a * b - c

  // Horizontal max / sum with whole-register shuffles (gcc 12's _mm512_reduce_* intrinsics
  // trip -Wuninitialized inside its own headers).
  static float reduce_max(F v) {
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_max_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_max_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_cvtss_f32(v);
  }
  static float reduce_add(F v) {
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm512_cvtss_f32(v);
  }

  // 2^x for x <= 0 (vec_exp2.h); 2^n applied by vscalefps.
  static F exp2_nonpositive(F x) {
    const __mmask16 live = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExp2MinExponent), _CMP_GE_OQ);
    x = _mm512_max_ps(x, _mm512_set1_ps(kExp2MinExponent));
    const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(kExp2Poly[0]);
    for (int k = 1; k < kExp2PolyTerms; ++k) p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(kExp2Poly[k]));
    return _mm512_maskz_scalef_ps(live, p, n);
  }

  // v with lanes for keys c .. c+15 outside [lo, hi), or masked by a nonzero byte of mask_row
  // (read only below hi), set to -inf. lo, hi are tile-relative in [0, block_kv]: the 32-bit
  // lane compares cannot wrap.
  static F keep_allowed(F v, int64_t c, int64_t lo, int64_t hi, const uint8_t *mask_row) {
    const __m512i lane = _mm512_add_epi32(_mm512_set1_epi32((int)c),
                                          _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    const __mmask16 in_row = _mm512_cmplt_epi32_mask(lane, _mm512_set1_epi32((int)hi));
    __mmask16 ok = _mm512_cmpge_epi32_mask(lane, _mm512_set1_epi32((int)lo)) & in_row;
    if (mask_row != nullptr && ok != 0) {
      const __m128i bytes = _mm_maskz_loadu_epi8(in_row, mask_row + c);
      ok &= _mm_cmpeq_epi8_mask(bytes, _mm_setzero_si128());
    }
    return _mm512_mask_mov_ps(_mm512_set1_ps(-INFINITY), ok, v);
  }

  // v rounded to fp16 and back (round to nearest even), as the NPU's P*V takes fp16 P.
  static F round_fp16(F v) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  // 16 lanes -> 16 bf16 (round to nearest even, as the NPU's cast).
  static void store_bf16(uint16_t *dst, F v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst), (__m256i)_mm512_cvtneps_pbh(v));
  }

  // The first n (1 .. 16) lanes of v, written as element type E at dst.
  template <ElementType E>
  static void store_out(char *dst, int64_t n, F v) {
    const __mmask16 m = n >= kLanes ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    if constexpr (E == ElementType::kFloat32) {
      _mm512_mask_storeu_ps(reinterpret_cast<float *>(dst), m, v);
    } else if constexpr (E == ElementType::kBFloat16) {
      _mm256_mask_storeu_epi16(reinterpret_cast<uint16_t *>(dst), m, (__m256i)_mm512_cvtneps_pbh(v));
    } else {
      _mm256_mask_storeu_epi16(reinterpret_cast<uint16_t *>(dst), m,
                               _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
  }

  // ---- bf16 packing (tiles_impl.h, PackingBf16), for whole groups the caller checked ----

  // dst[p * 16 + lane] = the bf16 pair (2p, 2p+1) of key `lane`, for p < pairs (a multiple of
  // 16): 16 keys whose rows start stride elements apart at k. Each block of 16 pairs is a 16 x 16
  // transpose of 32-bit words done in registers: every key row is read in whole 64-byte lines
  // (which the hardware prefetcher follows), where a gather per output vector touched 16 lines
  // at once and waited on all of them (the gather was a quarter of the pipeline's own time at
  // sparsity 0.875, where a packed block feeds only a few query blocks).
  static void pack_k_pairs16(const uint16_t *k, int64_t stride_elems, int64_t pairs, uint32_t *dst) {
    constexpr int kRows = 16;  // keys per block = 32-bit words per zmm
    for (int64_t p0 = 0; p0 < pairs; p0 += kRows) {
      __m512i t[kRows], u[kRows];
      for (int r = 0; r < kRows; r += 2) {  // rows r, r+1 interleaved by word within 128-bit lanes
        const __m512i a = _mm512_loadu_si512(k + r * stride_elems + 2 * p0);
        const __m512i b = _mm512_loadu_si512(k + (r + 1) * stride_elems + 2 * p0);
        t[r] = _mm512_unpacklo_epi32(a, b);
        t[r + 1] = _mm512_unpackhi_epi32(a, b);
      }
      // u[4g + c], lane L: rows 4g .. 4g+3 of word 4L + c.
      for (int g = 0; g < kRows / 4; ++g) {
        const __m512i *tg = t + 4 * g;
        u[4 * g + 0] = _mm512_unpacklo_epi64(tg[0], tg[2]);
        u[4 * g + 1] = _mm512_unpackhi_epi64(tg[0], tg[2]);
        u[4 * g + 2] = _mm512_unpacklo_epi64(tg[1], tg[3]);
        u[4 * g + 3] = _mm512_unpackhi_epi64(tg[1], tg[3]);
      }
      // Word 4L + c of every row: lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
      constexpr int kEvenLanes = 0x88, kOddLanes = 0xdd;  // _mm512_shuffle_i32x4: lanes (0, 2) / (1, 3) of each
      uint32_t *out = dst + p0 * kLanes;
      for (int c = 0; c < 4; ++c) {
        const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], kEvenLanes);
        const __m512i w0 = _mm512_shuffle_i32x4(u[c], u[4 + c], kOddLanes);
        const __m512i v1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], kEvenLanes);
        const __m512i w1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], kOddLanes);
        _mm512_storeu_si512(out + (0 + c) * kLanes, _mm512_shuffle_i32x4(v0, v1, kEvenLanes));
        _mm512_storeu_si512(out + (4 + c) * kLanes, _mm512_shuffle_i32x4(w0, w1, kEvenLanes));
        _mm512_storeu_si512(out + (8 + c) * kLanes, _mm512_shuffle_i32x4(v0, v1, kOddLanes));
        _mm512_storeu_si512(out + (12 + c) * kLanes, _mm512_shuffle_i32x4(w0, w1, kOddLanes));
      }
    }
  }
  // dst[j] = a[j] | b[j] << 16 for j < n (a multiple of 32): two key rows of V as bf16 pairs.
  static void interleave_rows(const uint16_t *a, const uint16_t *b, int64_t n, uint32_t *dst) {
    // Word 2m of the result is a[m], word 2m + 1 is b[m] (indices >= 32 pick from b).
    alignas(64) static constexpr uint16_t kInterleave[32] = {0,  32, 1,  33, 2,  34, 3,  35, 4,  36, 5,
                                                             37, 6,  38, 7,  39, 8,  40, 9,  41, 10, 42,
                                                             11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
    const __m512i lo = _mm512_load_si512(kInterleave);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    for (int64_t j = 0; j < n; j += 32) {
      const __m512i va = _mm512_loadu_si512(a + j), vb = _mm512_loadu_si512(b + j);
      _mm512_storeu_si512(dst + j, _mm512_permutex2var_epi16(va, lo, vb));
      _mm512_storeu_si512(dst + j + 16, _mm512_permutex2var_epi16(va, hi, vb));
    }
  }
  // dst[j] = src[j] ^ sign for j < n (a multiple of 32): a query row, its signs flipped or not.
  static void copy_xor16(const uint16_t *src, int64_t n, uint16_t sign, uint16_t *dst) {
    const __m512i s = _mm512_set1_epi16((short)sign);
    for (int64_t j = 0; j < n; j += 32) _mm512_storeu_si512(dst + j, _mm512_xor_si512(_mm512_loadu_si512(src + j), s));
  }

  // Micro-kernel operands (micro_gemm.h). 4 x 4 accumulators + 4 B vectors + 1 broadcast =
  // 21 of the 32 zmm registers.
  struct OpsBase {
    using V = Vec;
    using Acc = __m512;
    using B = __m512i;
    static constexpr int kLanes = Vec::kLanes, kVecBytes = Vec::kVecBytes;
    static constexpr int kMicroRows = 4, kMicroGroups = 4;
    static B load_b(const char *p) { return _mm512_loadu_si512(p); }
  };
  // bf16 operands: A is read as 32-bit words (a pair of adjacent bf16 along the reduction), B
  // as 16 such pairs; one vdpbf16ps does C[16] += A.lo * B.lo + A.hi * B.hi per lane.
  struct Bf16Ops : OpsBase {
    using AElem = uint32_t;  // one bf16 pair
    static B broadcast(const AElem *a) { return _mm512_set1_epi32((int)*a); }
    static Acc fma(Acc acc, B a, B b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
  };
  // fp32 operands: one FMA per step.
  struct F32Ops : OpsBase {
    using AElem = float;
    static B broadcast(const AElem *a) { return _mm512_castps_si512(_mm512_set1_ps(*a)); }
    static Acc fma(Acc acc, B a, B b) {
      return _mm512_fmadd_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b), acc);
    }
  };
};

}  // namespace blitz::cpu::avx512

// The register-blocked GEMM of the vector paths, written once against an operand set `Ops`
// from a vector layer (vec_avx512.h: Bf16Ops / F32Ops; vec_avx2.h: F32Ops). Ops gives:
//   AElem                 one A element (float, or a uint32 pair of bf16 along the reduction)
//   Acc, B                accumulator vector (kLanes fp32) and packed B vector (kVecBytes)
//   kMicroRows, kMicroGroups   the micro-kernel's C block: rows x groups of kLanes columns
//   load_b, broadcast(a), fma(acc, a, b), and V (the layer: load / store / zero of Acc)
// Include only from an ISA file (its flags make the intrinsics legal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace blitz::cpu::gemm {

// C[r][g*L .. g*L+L-1] (+)= sum_k A[r][k] * B(g, k) for r < R, g < G, k < steps, where
// A[r][k] = a[r * a_stride + k] (AElem units) and B(g, k) is the packed vector at
// b + g * b_stride_g + k * b_stride_k (bytes). C rows are c_stride floats apart.
template <class Ops, int R, int G, bool kAccumulate>
inline void micro_kernel(const typename Ops::AElem *a, int64_t a_stride, const char *b,
                         int64_t b_stride_g, int64_t b_stride_k, int64_t steps, float *c,
                         int64_t c_stride) {
  using V = typename Ops::V;
  using AElem = typename Ops::AElem;
  constexpr int L = Ops::kLanes;
  typename Ops::Acc acc[R][G];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) acc[r][g] = kAccumulate ? V::load(c + r * c_stride + g * L) : V::zero();
  // The loop walks pointers, not k: A's rows from two bases (rows 0-2 and 3-5, each a stride
  // register times 1 or 2 away, which x86 addressing folds), B's groups at one offset register,
  // and the end test on B. Indexed by k, gcc spent 7-8 integer instructions a step (and a stack
  // reload of b_stride_k) beside the 12 FMAs of AVX2's 6 x 2 kernel; this way 3. Unrolled by 4:
  // left rolled, the AVX2 kernel ran at 55-60 GFLOP/s a Zen 3 core instead of 80-90.
  const AElem *a_low = a, *a_high = R > 3 ? a + 3 * a_stride : a;
  const char *const b_end = b + steps * b_stride_k;
#pragma GCC unroll 4
  for (; b != b_end; b += b_stride_k, ++a_low, ++a_high) {
    typename Ops::B bv[G];
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) bv[g] = Ops::load_b(b + g * b_stride_g);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const typename Ops::B av = Ops::broadcast(r < 3 ? a_low + r * a_stride : a_high + (r - 3) * a_stride);
#pragma GCC unroll 8
      for (int g = 0; g < G; ++g) acc[r][g] = Ops::fma(acc[r][g], av, bv[g]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) V::store(c + r * c_stride + g * L, acc[r][g]);
}

// Every micro-kernel shape 1..kMicroRows x 1..kMicroGroups, so tails run the same code.
template <class Ops, bool kAccumulate>
struct MicroTable {
  using Fn = void (*)(const typename Ops::AElem *, int64_t, const char *, int64_t, int64_t,
                      int64_t, float *, int64_t);
  static constexpr int kRows = Ops::kMicroRows, kGroups = Ops::kMicroGroups;
  template <size_t... I>
  static constexpr auto build(std::index_sequence<I...>) {
    struct Table { Fn fn[sizeof...(I)]; };
    return Table{{&micro_kernel<Ops, (int)(I / kGroups) + 1, (int)(I % kGroups) + 1, kAccumulate>...}};
  }
  static constexpr auto table = build(std::make_index_sequence<kRows * kGroups>{});
  static Fn at(int64_t rows, int64_t groups) { return table.fn[(rows - 1) * kGroups + (groups - 1)]; }
};

// Bytes of B one k-block may touch: half of a 32 KiB L1D, so a block of B (e.g. 64 keys of K,
// or 64 key pairs of V for 64 output columns) stays in L1 while every row chunk uses it.
constexpr int64_t kBBlockBytes = 16 << 10;

// The same over `rows` x `groups` of C, in micro-kernel blocks (tails by smaller blocks).
// Loop order: column blocks, then k-blocks of B sized to L1, then rows innermost, so B is read
// from L2 once per column block instead of once per micro-kernel row block; C (a few KiB)
// absorbs the partial sums of successive k-blocks.
template <class Ops, bool kAccumulate>
inline void gemm(const typename Ops::AElem *a, int64_t a_stride, const char *b, int64_t b_stride_g,
                 int64_t b_stride_k, int64_t steps, float *c, int64_t c_stride, int64_t rows,
                 int64_t groups) {
  constexpr int64_t kRows = Ops::kMicroRows, kGroups = Ops::kMicroGroups;
  for (int64_t g0 = 0; g0 < groups; g0 += kGroups) {
    const int64_t ng = groups - g0 < kGroups ? groups - g0 : kGroups;
    int64_t k_block = kBBlockBytes / (ng * Ops::kVecBytes);
    if (k_block < 1) k_block = 1;
    for (int64_t k0 = 0; k0 < steps; k0 += k_block) {
      const int64_t nk = steps - k0 < k_block ? steps - k0 : k_block;
      // Only the first k-block may start C from zero; later ones add to it.
      const bool first = k0 == 0;
      for (int64_t r0 = 0, nr; r0 < rows; r0 += nr) {
        // Between one and two blocks left: two near-equal blocks (8 rows: 4 + 4, not 6 + 2), as a
        // block of 1-3 rows has too few accumulators to hide the FMA latency.
        const int64_t left = rows - r0;
        nr = left <= kRows ? left : left < 2 * kRows ? (left + 1) / 2 : kRows;
        const auto fn = first ? MicroTable<Ops, kAccumulate>::at(nr, ng)
                              : MicroTable<Ops, /*kAccumulate=*/true>::at(nr, ng);
        fn(a + r0 * a_stride + k0, a_stride, b + g0 * b_stride_g + k0 * b_stride_k, b_stride_g,
           b_stride_k, nk, c + r0 * c_stride + g0 * Ops::kLanes, c_stride);
      }
    }
  }
}

}  // namespace blitz::cpu::gemm

// The AVX-512 variants (compiled with the AVX-512 flags, the _avx512 suffix; reached only when
// the path choice allows avx512, which implies AVX512_BF16): fp32 FMA for fp16 / fp32 inputs,
// vdpbf16ps for bf16 inputs (each key pair broadcast against 16 query groups' pairs, exact
// products, fp32 accumulation). Both use 8 key cells x 2 packed query groups = 16 accumulators.
#include "select/cell_kernels.h"

#if defined(__AVX512F__) && defined(__AVX512BF16__)
#include <immintrin.h>

#include "select/cell_kernels_impl.h"

namespace blitz::cpu::select {
namespace {

using Avx512 = cell_detail::Generic<16>;

template <int R, int G>
void bf16_block(const uint16_t *keys, int64_t kp, const uint32_t *queries, float *c, int64_t cols) {
  const int64_t pairs = kp / 2;
  __m512 acc[R][G];
  for (int r = 0; r < R; ++r) {
    for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < pairs; ++p) {
    __m512i b[G];
    for (int g = 0; g < G; ++g) b[g] = _mm512_loadu_si512(queries + g * pairs * kGroupCols + p * kGroupCols);
    for (int r = 0; r < R; ++r) {
      uint32_t pair;
      std::memcpy(&pair, keys + r * kp + 2 * p, sizeof pair);
      const __m512i a = _mm512_set1_epi32(static_cast<int>(pair));
      for (int g = 0; g < G; ++g) acc[r][g] = _mm512_dpbf16_ps(acc[r][g], (__m512bh)a, (__m512bh)b[g]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int g = 0; g < G; ++g) _mm512_storeu_ps(c + r * cols + g * kGroupCols, acc[r][g]);
  }
}

void gemm_bf16(const void *keys_v, int64_t rows, int64_t kp, const void *queries_v, int64_t groups, float *c) {
  constexpr int R = 8, G = 2;
  static_assert(kRowPad % R == 0, "rows come in multiples of kRowPad");
  const uint16_t *keys = static_cast<const uint16_t *>(keys_v);
  const uint32_t *queries = static_cast<const uint32_t *>(queries_v);
  const int64_t cols = groups * kGroupCols, group_pairs = kp / 2 * kGroupCols;
  for (int64_t t = 0; t < rows; t += R) {
    int64_t g = 0;
    for (; g + G <= groups; g += G) bf16_block<R, G>(keys + t * kp, kp, queries + g * group_pairs, c + t * cols + g * kGroupCols, cols);
    for (; g < groups; ++g) bf16_block<R, 1>(keys + t * kp, kp, queries + g * group_pairs, c + t * cols + g * kGroupCols, cols);
  }
}

}  // namespace

const CellKernels kCellAvx512F32 = {"avx512", false, nullptr, nullptr, Avx512::gemm<8, 2>, Avx512::block_softmax};
const CellKernels kCellAvx512Bf16 = {"avx512_bf16", true, nullptr, nullptr, gemm_bf16, Avx512::block_softmax};

}  // namespace blitz::cpu::select
#else
namespace blitz::cpu::select {
const CellKernels kCellAvx512F32 = {"avx512", false, nullptr, nullptr, nullptr, nullptr};  // not an x86-64 build
const CellKernels kCellAvx512Bf16 = {"avx512_bf16", true, nullptr, nullptr, nullptr, nullptr};
}  // namespace blitz::cpu::select
#endif

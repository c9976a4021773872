// cell_dots with 16-lane vectors; compiled with the AVX-512 flags (the _avx512 suffix), run only
// when the kernel's path choice allows avx512 (cell_dots_for).
#include "select/cell_dots.h"
#include "select/cell_dots_impl.h"

namespace blitz::cpu::select {

constexpr int kAvx512Lanes = 16;

void cell_dots_avx512(const float *a, int64_t rows, const float *b, int64_t cols, int64_t n, float *c) {
  cell_dots_detail::Dots<kAvx512Lanes>::run(a, rows, b, cols, n, c);
}

}  // namespace blitz::cpu::select

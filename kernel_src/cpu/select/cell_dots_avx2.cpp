// cell_dots with 8-lane vectors; compiled with -mavx2 -mfma (the _avx2 suffix), run only when the
// kernel's path choice allows avx2 (cell_dots_for).
#include "select/cell_dots.h"
#include "select/cell_dots_impl.h"

namespace blitz::cpu::select {

constexpr int kAvx2Lanes = 8;

void cell_dots_avx2(const float *a, int64_t rows, const float *b, int64_t cols, int64_t n, float *c) {
  cell_dots_detail::Dots<kAvx2Lanes>::run(a, rows, b, cols, n, c);
}

}  // namespace blitz::cpu::select

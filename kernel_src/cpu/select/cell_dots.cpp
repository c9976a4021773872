// cell_dots for any CPU (4-lane vectors: SSE2 on x86-64), and the choice between the variants.
#include "select/cell_dots.h"

#include "kernel/attention_problem.h"
#include "kernel/cpu_features.h"
#include "select/cell_dots_impl.h"

namespace blitz::cpu::select {

constexpr int kPortableLanes = 4;

void cell_dots_portable(const float *a, int64_t rows, const float *b, int64_t cols, int64_t n, float *c) {
  cell_dots_detail::Dots<kPortableLanes>::run(a, rows, b, cols, n, c);
}

CellDotsFn cell_dots_for(KernelPath requested) {
  KernelPath path = resolve_path(requested);
  if (!path_supported(path)) path = best_path();  // a forced path this CPU lacks: never an illegal instruction
  switch (path) {
    case KernelPath::kAvx512:
    case KernelPath::kAmx: return cell_dots_avx512;  // amx implies the AVX-512 path's features
    case KernelPath::kAvx2: return cell_dots_avx2;
    default: return cell_dots_portable;
  }
}

}  // namespace blitz::cpu::select

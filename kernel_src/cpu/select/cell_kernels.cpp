// The portable variant (4-lane vectors: SSE2 on x86-64, NEON on aarch64) and the choice between
// the variants, made like the attention kernel's path (the requested one; a forced path this CPU
// lacks falls back to the best it has, never an illegal instruction).
#include "select/cell_kernels.h"

#include "kernel/attention_problem.h"
#include "kernel/cpu_features.h"
#include "select/cell_kernels_impl.h"

namespace blitz::cpu::select {

namespace {
using Portable = cell_detail::Generic<4>;
}  // namespace

const CellKernels kCellPortable = {"portable", false, nullptr, nullptr, Portable::gemm<2, 1>, Portable::block_softmax};

const CellKernels &cell_kernels_for(KernelPath requested, bool bf16_inputs) {
  KernelPath path = resolve_path(requested);
  if (!path_supported(path)) path = best_path();
  switch (path) {
    case KernelPath::kAmx:
      if (bf16_inputs && kCellAmx.gemm != nullptr) return kCellAmx;
      [[fallthrough]];  // fp16 / fp32 inputs: the AVX-512 path's fp32 variant, as the attention does
    case KernelPath::kAvx512:
      if (bf16_inputs && kCellAvx512Bf16.gemm != nullptr) return kCellAvx512Bf16;
      if (kCellAvx512F32.gemm != nullptr) return kCellAvx512F32;
      [[fallthrough]];
    case KernelPath::kAvx2:
      if (kCellAvx2.gemm != nullptr) return kCellAvx2;
      [[fallthrough]];
    default: return kCellPortable;
  }
}

void cell_kernels_begin(const CellKernels &k) {
  if (k.thread_begin != nullptr) k.thread_begin();
}
void cell_kernels_end(const CellKernels &k) {
  if (k.thread_end != nullptr) k.thread_end();
}

}  // namespace blitz::cpu::select

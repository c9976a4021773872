// The AVX2 variant: fp32 FMA on 8-lane vectors (compiled with -mavx2 -mfma, the _avx2 suffix),
// for every input dtype (bf16 widened exactly). Reached only when the path choice allows avx2.
#include "select/cell_kernels.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "select/cell_kernels_impl.h"

namespace blitz::cpu::select {
namespace {
using Avx2 = cell_detail::Generic<8>;
}  // namespace
const CellKernels kCellAvx2 = {"avx2", false, nullptr, nullptr, Avx2::gemm<4, 1>, Avx2::block_softmax};
}  // namespace blitz::cpu::select
#else
namespace blitz::cpu::select {
const CellKernels kCellAvx2 = {"avx2", false, nullptr, nullptr, nullptr, nullptr};  // not an x86-64 build
}  // namespace blitz::cpu::select
#endif

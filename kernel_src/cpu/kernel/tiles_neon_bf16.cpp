// The aarch64 NEON + BF16 path's bf16 kernel: tiles_impl.h against neon::VecBf16 (vec_neon.h),
// whose products run BFDOT on packed bf16 pairs. CMake compiles this file alone with
// -march=armv8.2-a+bf16; it is reached only after getauxval(AT_HWCAP2) reports bf16
// (cpu_features.cpp). fp16 and fp32 on this path run the neon kernel (tiles_neon.cpp).
#include "kernel/attention_plan.h"

#if !(defined(__aarch64__) && defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC) && !defined(__ARM_BIG_ENDIAN))
// Built without +bf16 (not AArch64, or a compiler without it): no BFDOT kernel.
namespace blitz::cpu {
const PathKernel *neon_bf16_kernel(ElementType) { return nullptr; }
}  // namespace blitz::cpu
#else

#include "kernel/vec_neon.h"
#include "kernel/tiles_impl.h"

namespace blitz::cpu {

const PathKernel *neon_bf16_kernel(ElementType dtype) {
  static const PathKernel bf16{scratch_bytes<neon::VecBf16, ElementType::kBFloat16, /*kAmx=*/false>,
                               run_tasks<neon::VecBf16, ElementType::kBFloat16, /*kAmx=*/false>};
  return dtype == ElementType::kBFloat16 ? &bf16 : nullptr;
}

}  // namespace blitz::cpu

#endif  // AArch64 + BF16

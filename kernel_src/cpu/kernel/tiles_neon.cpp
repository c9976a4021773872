// The aarch64 NEON path: the tile code of tiles_impl.h compiled against the NEON vector layer
// (vec_neon.h, neon::Vec), for every AArch64 CPU (Kunpeng 920, Graviton 2, Ampere Altra, ...).
// Every dtype multiplies in fp32 with FMA: bf16 is widened by a shift while packing, fp16 by
// FCVTL. Built with the compiler's default -march (Advanced SIMD is baseline AArch64).
#include "kernel/attention_plan.h"

#if !(defined(__aarch64__) && defined(__ARM_NEON) && !defined(__ARM_BIG_ENDIAN))
// Not little-endian AArch64: no NEON kernel.
namespace blitz::cpu {
const PathKernel *neon_kernel(ElementType) { return nullptr; }
}  // namespace blitz::cpu
#else

#include "kernel/vec_neon.h"
#include "kernel/tiles_impl.h"

namespace blitz::cpu {

const PathKernel *neon_kernel(ElementType dtype) { return vector_kernel<neon::Vec>(dtype); }

}  // namespace blitz::cpu

#endif  // AArch64

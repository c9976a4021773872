// The AVX2 + FMA + F16C path: the tile code of tiles_impl.h compiled against the AVX2 vector
// layer (vec_avx2.h), for x86-64 CPUs without AVX-512 BF16 (Zen 2 / Zen 3, Haswell to Ice Lake
// client, and Skylake-SP to Ice Lake server, whose AVX-512 lacks BF16). Every dtype multiplies
// in fp32 with FMA: bf16 is widened by a shift while packing, fp16 by F16C.
#include "kernel/attention_plan.h"

#if !(defined(__AVX2__) && defined(__FMA__) && defined(__F16C__))
// Built without the AVX2 flags (not x86-64): no AVX2 kernel.
namespace blitz::cpu {
const PathKernel *avx2_kernel(ElementType) { return nullptr; }
}  // namespace blitz::cpu
#else

#include "kernel/vec_avx2.h"
#include "kernel/tiles_impl.h"

namespace blitz::cpu {

// The fp32 packing's vector loads and K transpose must be found in the layer (they are detected,
// and a renamed function would silently fall back to the element-by-element loops).
static_assert(PackingF32<avx2::Vec, ElementType::kBFloat16>::kVectorTranspose, "vec_avx2.h: load_as_f32 / transpose");

const PathKernel *avx2_kernel(ElementType dtype) { return vector_kernel<avx2::Vec>(dtype); }

}  // namespace blitz::cpu

#endif  // AVX2

// The AVX-512 path (and the AMX path, which shares everything but its two products): the tile
// code of tiles_impl.h compiled against the AVX-512 vector layer (vec_avx512.h). bf16 products
// run vdpbf16ps; fp32 (and fp16 converted to fp32) run FMA. CPUs with AVX512-FP16 or AMX-FP16
// could do fp16 better; the machines this ran on have neither.
#include "kernel/attention_plan.h"

#if !(defined(__AVX512F__) && defined(__AVX512BF16__))
// Built without the AVX-512 flags (not x86-64): no AVX-512 or AMX kernel; everything portable.
namespace blitz::cpu {
const PathKernel *avx512_kernel(ElementType) { return nullptr; }
const PathKernel *amx_kernel(const AttentionProblem &) { return nullptr; }
}  // namespace blitz::cpu
#else

#include "kernel/vec_avx512.h"
#include "kernel/tiles_impl.h"

namespace blitz::cpu {

// fp16 / fp32 inputs pack through the layer's widening loads (detected: a rename would silently
// fall back to the element-by-element loops); K's 16 x 16 transpose is not written, so element-wise.
static_assert(PackingF32<avx512::Vec, ElementType::kFloat16>::kVectorLoads, "vec_avx512.h: load_as_f32");

const PathKernel *amx_kernel(const AttentionProblem &p) {
  // tiles_amx.cpp gets the AMX flags wherever this file gets the AVX-512 ones (CMake).
  static const PathKernel bf16{scratch_bytes<avx512::Vec, ElementType::kBFloat16, /*kAmx=*/true>,
                               run_tasks<avx512::Vec, ElementType::kBFloat16, /*kAmx=*/true>};
  // AMX reads whole 16-row tiles of Q / P / the accumulators: block_q must be a multiple of 16.
  if (p.dtype == ElementType::kBFloat16 && p.block_q % amx::kTileRows == 0) return &bf16;
  return nullptr;
}

const PathKernel *avx512_kernel(ElementType dtype) { return vector_kernel<avx512::Vec>(dtype); }

}  // namespace blitz::cpu

#endif  // AVX-512

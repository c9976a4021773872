// The AMX variant (bf16 inputs): the cell GEMM as AMX-BF16 tile products through the attention
// kernel's amx::Product (kernel/amx_gemm.h): the key cells are the A operand (row-major, 32 rows
// = 2 row tiles per product, so each query tile read feeds two), the packed query groups the B
// tiles. Compiled with the AMX flags (the _amx suffix); reached only when the CPU and the OS
// have AMX-BF16. block_softmax is the AVX-512 one.
#include "select/cell_kernels.h"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512F__)
#include "kernel/amx_gemm.h"
#include "select/cell_kernels_impl.h"

namespace blitz::cpu::select {
namespace {

void gemm_amx(const void *keys, int64_t rows, int64_t kp, const void *queries, int64_t groups, float *c) {
  static_assert(kRowPad == 2 * amx::kTileRows && kKPad == 2 * amx::kPairsPerTile, "tile shapes");
  const int64_t cols = groups * kGroupCols, row_bytes = kp * 2, k_tiles = kp / kKPad;
  amx::Product product{};
  product.a_stride = row_bytes;
  product.b_stride_g = kp * kGroupCols * 2;  // one packed group: kp / 2 pairs x 16 columns x 4 bytes
  product.b_stride_k = amx::kTileRowBytes;   // one pair of the reduction: 16 columns x 4 bytes
  product.c_stride = cols * static_cast<int64_t>(sizeof(float));
  product.groups = groups;
  product.row_tiles = 2;
  product.k_tiles = k_tiles;
  product.accumulate = false;
  product.b = static_cast<const char *>(queries);
  for (int64_t t = 0; t < rows; t += kRowPad) {
    product.a = static_cast<const char *>(keys) + t * row_bytes;
    product.c = c + t * cols;
    product.run();
  }
}

}  // namespace
const CellKernels kCellAmx = {"amx", true, amx::begin, amx::end, gemm_amx, cell_detail::Generic<16>::block_softmax};
}  // namespace blitz::cpu::select
#else
namespace blitz::cpu::select {
const CellKernels kCellAmx = {"amx", true, nullptr, nullptr, nullptr, nullptr};  // built without the AMX flags
}  // namespace blitz::cpu::select
#endif

// The AMX-BF16 products of the fast path, in the AVX-512 path's packed layouts (which are
// already AMX's: a packed 16-key group of K, or 16 key pairs of V, is one B tile of 16 rows of
// 64 bytes). Implemented in tiles_amx.cpp (compiled with -mamx-tile -mamx-bf16); reached only
// when the CPU and the OS have AMX-BF16 (cpu_features.h).
//
// Fenced by the CPUID/XCR0/arch_prctl checks (cpu_features.cpp); first run and tested on an
// Intel Xeon with AMX-BF16 (session 3), where kAuto picks it for bf16.
#pragma once

#include <cstdint>

namespace blitz::cpu::amx {

constexpr int64_t kTileRows = 16;       // rows of every tile we configure
constexpr int64_t kTileRowBytes = 64;   // bytes per tile row: 16 fp32, or 16 bf16 pairs
constexpr int64_t kPairsPerTile = 16;   // bf16 pairs along the reduction per A / B tile
constexpr int64_t kColumnsPerTile = 16; // fp32 columns of a C tile

// Loads this thread's tile configuration (built once, see tiles_amx.cpp); pair with end().
void begin();
void end();

// One product C[16 * row_tiles][groups * 16] (+)= A[16 * row_tiles][k_tiles * 32 bf16] * B, for
// a chunk of 16 or 32 rows (row_tiles 1 or 2; with 2, each B tile read feeds both row tiles):
//   A tile (r, kt): 16 rows at a + r * 16 * a_stride + kt * 64 bytes, rows a_stride bytes apart
//   (bf16 pairs along k);
//   B tile (g, kt): 16 rows at b + g * b_stride_g + kt * 16 * b_stride_k, rows b_stride_k apart;
//   C (r, g): 16 rows of 16 fp32 at c + g * 16 floats + r * 16 * c_stride bytes, rows c_stride
//   bytes apart.
// accumulate = false starts C from zero. All 16 rows of a row tile are read and written (callers
// pad). run() computes it whole; run_step(g0) computes columns groups g0 .. g0 + step_groups()
// over the whole reduction, so vector work can be interleaved between steps while the tile unit
// works (the tiles are the product's own; nothing else may use them in between).
struct Product {
  const char *a;
  int64_t a_stride;
  const char *b;
  int64_t b_stride_g, b_stride_k, k_tiles;
  float *c;
  int64_t c_stride, groups, row_tiles;
  bool accumulate;

  int64_t step_groups() const;
  int64_t steps() const { return (groups + step_groups() - 1) / step_groups(); }
  void run_step(int64_t g0) const;
  void run() const;
};

}  // namespace blitz::cpu::amx

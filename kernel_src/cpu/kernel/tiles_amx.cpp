// AMX-BF16 tile products (see amx_gemm.h). Everything outside the two products (packing,
// softmax, masks) is the AVX-512 path's.
#include "kernel/amx_gemm.h"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__)

#include <immintrin.h>

namespace blitz::cpu::amx {
namespace {

// Tile-register maps (all tiles 16 rows x 64 bytes). One 16-row chunk (rows <= 16):
//
//          B: tmm5 / tmm6 (16 pairs x 16 cols, alternate)
//                 |
//   A: tmm4  -->  C: tmm0 tmm1 tmm2 tmm3   (4 groups of 16 fp32 columns = 64 columns)
//   (16 rows x 16 pairs)
//
// Two 16-row chunks (rows 17 .. 32), blocked 2 x 2 so each B tile, read from L2 (a packed K or V
// block is 128 KB at 512 x 128), feeds two products instead of one:
//
//                 B: tmm6  tmm7          (groups g, g+1)
//   A: tmm4 (rows  0-15)  C: tmm0  tmm1
//   A: tmm5 (rows 16-31)  C: tmm2  tmm3
constexpr int kTilesUsed = 8;
constexpr int kMaxGroups = 4;
constexpr uint8_t kPalette = 1;

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// The one tile configuration, built once (threads share it; each thread loads it).
const TileConfig &tile_config() {
  static const TileConfig config = [] {
    TileConfig c{};
    c.palette_id = kPalette;
    for (int t = 0; t < kTilesUsed; ++t) {
      c.colsb[t] = (uint16_t)kTileRowBytes;
      c.rows[t] = (uint8_t)kTileRows;
    }
    return c;
  }();
  return config;
}

// Tile numbers are instruction immediates, so each kernel spells its map out.
template <int G>
void gemm_1xG(const char *a, int64_t a_stride, const char *b, int64_t b_stride_g,
              int64_t b_stride_k, int64_t k_tiles, float *c, int64_t c_stride, bool accumulate) {
  static_assert(G >= 1 && G <= kMaxGroups, "C tiles are tmm0..tmm3");
  const int64_t b_tile_step = kPairsPerTile * b_stride_k;
  if (accumulate) {
    _tile_loadd(0, c, c_stride);
    if constexpr (G > 1) _tile_loadd(1, c + kColumnsPerTile, c_stride);
    if constexpr (G > 2) _tile_loadd(2, c + 2 * kColumnsPerTile, c_stride);
    if constexpr (G > 3) _tile_loadd(3, c + 3 * kColumnsPerTile, c_stride);
  } else {
    _tile_zero(0);
    if constexpr (G > 1) _tile_zero(1);
    if constexpr (G > 2) _tile_zero(2);
    if constexpr (G > 3) _tile_zero(3);
  }
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const char *bk = b + kt * b_tile_step;
    _tile_loadd(4, a + kt * kTileRowBytes, a_stride);
    _tile_loadd(5, bk, b_stride_k);
    _tile_dpbf16ps(0, 4, 5);
    if constexpr (G > 1) {
      _tile_loadd(6, bk + b_stride_g, b_stride_k);
      _tile_dpbf16ps(1, 4, 6);
    }
    if constexpr (G > 2) {
      _tile_loadd(5, bk + 2 * b_stride_g, b_stride_k);
      _tile_dpbf16ps(2, 4, 5);
    }
    if constexpr (G > 3) {
      _tile_loadd(6, bk + 3 * b_stride_g, b_stride_k);
      _tile_dpbf16ps(3, 4, 6);
    }
  }
  _tile_stored(0, c, c_stride);
  if constexpr (G > 1) _tile_stored(1, c + kColumnsPerTile, c_stride);
  if constexpr (G > 2) _tile_stored(2, c + 2 * kColumnsPerTile, c_stride);
  if constexpr (G > 3) _tile_stored(3, c + 3 * kColumnsPerTile, c_stride);
}

// 32 rows x G (1 or 2) groups; rows 16-31 at a + 16 * a_stride and c + 16 * c_stride.
template <int G>
void gemm_2xG(const char *a, int64_t a_stride, const char *b, int64_t b_stride_g,
              int64_t b_stride_k, int64_t k_tiles, float *c, int64_t c_stride, bool accumulate) {
  static_assert(G == 1 || G == 2, "C tiles are tmm0..tmm3 as 2 x 2");
  const int64_t b_tile_step = kPairsPerTile * b_stride_k;
  const char *a1 = a + kTileRows * a_stride;
  float *c1 = reinterpret_cast<float *>(reinterpret_cast<char *>(c) + kTileRows * c_stride);
  if (accumulate) {
    _tile_loadd(0, c, c_stride);
    _tile_loadd(2, c1, c_stride);
    if constexpr (G > 1) {
      _tile_loadd(1, c + kColumnsPerTile, c_stride);
      _tile_loadd(3, c1 + kColumnsPerTile, c_stride);
    }
  } else {
    _tile_zero(0);
    _tile_zero(2);
    if constexpr (G > 1) {
      _tile_zero(1);
      _tile_zero(3);
    }
  }
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const char *bk = b + kt * b_tile_step;
    _tile_loadd(4, a + kt * kTileRowBytes, a_stride);
    _tile_loadd(6, bk, b_stride_k);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(5, a1 + kt * kTileRowBytes, a_stride);
    _tile_dpbf16ps(2, 5, 6);
    if constexpr (G > 1) {
      _tile_loadd(7, bk + b_stride_g, b_stride_k);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
  _tile_stored(0, c, c_stride);
  _tile_stored(2, c1, c_stride);
  if constexpr (G > 1) {
    _tile_stored(1, c + kColumnsPerTile, c_stride);
    _tile_stored(3, c1 + kColumnsPerTile, c_stride);
  }
}

}  // namespace

void begin() { _tile_loadconfig(&tile_config()); }
void end() { _tile_release(); }

int64_t Product::step_groups() const { return row_tiles == 2 ? 2 : kMaxGroups; }

void Product::run_step(int64_t g0) const {
  const char *bg = b + g0 * b_stride_g;
  float *cg = c + g0 * kColumnsPerTile;
  const int64_t n = groups - g0 < step_groups() ? groups - g0 : step_groups();
  if (row_tiles == 2) {
    if (n == 2) gemm_2xG<2>(a, a_stride, bg, b_stride_g, b_stride_k, k_tiles, cg, c_stride, accumulate);
    else gemm_2xG<1>(a, a_stride, bg, b_stride_g, b_stride_k, k_tiles, cg, c_stride, accumulate);
    return;
  }
  switch (n) {
    case 1: gemm_1xG<1>(a, a_stride, bg, b_stride_g, b_stride_k, k_tiles, cg, c_stride, accumulate); break;
    case 2: gemm_1xG<2>(a, a_stride, bg, b_stride_g, b_stride_k, k_tiles, cg, c_stride, accumulate); break;
    case 3: gemm_1xG<3>(a, a_stride, bg, b_stride_g, b_stride_k, k_tiles, cg, c_stride, accumulate); break;
    default: gemm_1xG<4>(a, a_stride, bg, b_stride_g, b_stride_k, k_tiles, cg, c_stride, accumulate); break;
  }
}

void Product::run() const {
  for (int64_t g0 = 0; g0 < groups; g0 += step_groups()) run_step(g0);
}

}  // namespace blitz::cpu::amx

#endif  // AMX

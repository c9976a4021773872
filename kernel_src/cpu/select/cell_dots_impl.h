// cell_dots' body, written once over a GCC vector type of kLanes floats (16 under AVX-512, 8
// under AVX2, 4 otherwise: the including file's flags decide what the vector ops compile to).
// Register block: kRows x kCols dot products at a time, the key cells outer so a block of kCols
// key cells is reused from L1 by every row group; each dot is kLanes partial sums reduced at
// the end, then the tail of x (n % kLanes) in scalar.
#pragma once

#include <cstdint>
#include <cstring>

namespace blitz::cpu::select::cell_dots_detail {

template <int kLanes>
struct Dots {
  typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
  static constexpr int kRows = 4, kCols = 4;

  static Vec load(const float *p) {
    Vec v;
    std::memcpy(&v, p, sizeof v);  // unaligned load
    return v;
  }
  static float sum(Vec v) {
    float lanes[kLanes];
    std::memcpy(lanes, &v, sizeof v);
    float total = 0.0f;
    for (int l = 0; l < kLanes; ++l) total += lanes[l];
    return total;
  }

  template <int R, int C>
  static void block(const float *a, const float *b, int64_t n, float *c, int64_t c_stride) {
    Vec acc[R][C] = {};
    int64_t x = 0;
    for (; x + kLanes <= n; x += kLanes) {
      Vec bv[C];
      for (int j = 0; j < C; ++j) bv[j] = load(b + j * n + x);
      for (int r = 0; r < R; ++r) {
        const Vec av = load(a + r * n + x);
        for (int j = 0; j < C; ++j) acc[r][j] += av * bv[j];
      }
    }
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < C; ++j) {
        float total = sum(acc[r][j]);
        for (int64_t t = x; t < n; ++t) total += a[r * n + t] * b[j * n + t];
        c[r * c_stride + j] = total;
      }
    }
  }

  static void run(const float *a, int64_t rows, const float *b, int64_t cols, int64_t n, float *c) {
    for (int64_t j = 0; j < cols; j += kCols) {
      const bool full_cols = j + kCols <= cols;
      for (int64_t r = 0; r < rows; r += kRows) {
        if (full_cols && r + kRows <= rows) {
          block<kRows, kCols>(a + r * n, b + j * n, n, c + r * cols + j, cols);
          continue;
        }
        for (int64_t rr = r; rr < (r + kRows < rows ? r + kRows : rows); ++rr) {  // tails, one dot each
          for (int64_t jj = j; jj < (full_cols ? j + kCols : cols); ++jj) {
            block<1, 1>(a + rr * n, b + jj * n, n, c + rr * cols + jj, cols);
          }
        }
      }
    }
  }
};

}  // namespace blitz::cpu::select::cell_dots_detail

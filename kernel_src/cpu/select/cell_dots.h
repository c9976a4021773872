// The antidiagonal method's one heavy loop: C[r][j] = sum_x a[r][x] * b[j][x] over packed rows
// (a: the query block's row groups, b: the key cells, n = stride * D floats each), i.e. a small
// GEMM with both operands reduction-contiguous. One source (cell_dots_impl.h) compiled three
// times: plain (any CPU), with AVX2 + FMA and with AVX-512 (the suffix gives the file its flags,
// kernel_src/cpu/CMakeLists.txt); cell_dots_for() picks the widest the caller's kernel path
// (its device settings, backend/kernel_settings.h) allows.
#pragma once

#include <cstdint>

#include "kernel/cpu_features.h"

namespace blitz::cpu::select {

// c[r * cols + j] for r < rows, j < cols; a is rows x n, b is cols x n, both row-major.
using CellDotsFn = void (*)(const float *a, int64_t rows, const float *b, int64_t cols, int64_t n, float *c);

void cell_dots_portable(const float *a, int64_t rows, const float *b, int64_t cols, int64_t n, float *c);
void cell_dots_avx2(const float *a, int64_t rows, const float *b, int64_t cols, int64_t n, float *c);
void cell_dots_avx512(const float *a, int64_t rows, const float *b, int64_t cols, int64_t n, float *c);

// The variant for this CPU and the requested kernel path (kAuto: the fastest; once per call).
CellDotsFn cell_dots_for(KernelPath path);

}  // namespace blitz::cpu::select

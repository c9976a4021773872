// The antidiagonal method's heavy loops, one variant per instruction set (antidiagonal.cpp runs
// them; cell_kernels.cpp picks one per call from the caller's kernel path, like the kernel):
//
//   gemm:  C[t][q] = key cell t . query row group q over kp elements, for a chunk of key cells
//          (rows, a multiple of kRowPad) against a chunk of query row groups (groups x 16). The
//          key cells are row-major (kp elements each, the cell's keys one after another); the
//          query row groups are packed 16 to a group with the reduction outer: bf16 variants
//          hold pairs, group g at queries + g * kp * 16 as [kp / 2][16] pairs (AMX's B-tile
//          layout, also vdpbf16ps' broadcast form), fp32 variants [kp][16] floats. Queries in
//          the columns make the softmax below run across 16 query groups per vector.
//   block_softmax: for the n key cells of one key block (rows of c, cols columns), each logit
//          x = c * coef[count[t] - 1][q] + bias[t] is taken to base 2 (x log2 e), and per column
//          q the block's max2[q] = max_t x2 and sum[q] = sum_t 2^(x2 - max2[q]) (float).
//
// bf16 variants are used for bf16 inputs only (their products are then exact; fp32
// accumulation), so the score they compute is the fp32 variants' up to summation order. fp16 and
// fp32 inputs always take an fp32 variant: rounding them to bf16 would change the rule.
#pragma once

#include <cstdint>

#include "kernel/attention_problem.h"

namespace blitz::cpu::select {

constexpr int64_t kGroupCols = 16;  // query row groups per packed group (one zmm of fp32)
constexpr int64_t kRowPad = 32;     // key-cell rows per gemm call are a multiple of this (AMX: 2 row tiles)
constexpr int64_t kKPad = 32;       // kp is a multiple of this (one AMX tile row of bf16)

struct CellKernels {
  const char *name;
  bool bf16;  // operands are bf16 (uint16_t) rather than float
  // Per-thread set-up around gemm (AMX: the tile configuration; nullptr: none). Function pointers,
  // so only the AMX-flagged file names amx::begin / amx::end (absent from non-x86 builds).
  void (*thread_begin)();
  void (*thread_end)();
  void (*gemm)(const void *keys, int64_t rows, int64_t kp, const void *queries, int64_t groups, float *c);
  void (*block_softmax)(float *c, int64_t n, int64_t cols, const int64_t *count, const float *bias,
                        const float *coef, float *max2, float *sum);
};

// For this CPU, the requested kernel path (the device settings, backend/kernel_settings.h; kAuto:
// the fastest) and the inputs' element type (bf16 or not).
const CellKernels &cell_kernels_for(KernelPath requested, bool bf16_inputs);

// The variant's per-thread set-up of the calling thread (no-ops where it has none).
void cell_kernels_begin(const CellKernels &k);
void cell_kernels_end(const CellKernels &k);

// The variants (cell_kernels*.cpp).
extern const CellKernels kCellPortable;
extern const CellKernels kCellAvx2;
extern const CellKernels kCellAvx512F32;
extern const CellKernels kCellAvx512Bf16;
extern const CellKernels kCellAmx;

}  // namespace blitz::cpu::select

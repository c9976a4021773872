// The antidiagonal method (XAttention's idea) for one (batch, key head), all its query heads and
// query blocks at once. The rule (block_scores.h states it; tests/select_oracle.py in float64):
// the block is cut into stride x stride cells; a cell's score is the mean of q . k along its
// antidiagonal (query row u S + S-1-r with key t S + r, valid pairs only; a cell whose
// antidiagonal misses every valid pair, possible only when both groups are partial, uses the mean
// over its valid pairs). Logit scale * score + ln(n_t); per query row group a softmax over all key
// cells, summed per key block, averaged over the row groups weighted by their rows. Under the
// attention's sparse_mode a row group's softmax runs over the cells it sees some pair of only
// (their scores unchanged); a row group that sees no key adds nothing.
//
// How it runs: the cell dot products are one GEMM, key cells (the keys reshaped, stride tokens a
// row) times query row groups (the rows reversed within each group, reshaped the same way),
// 1/stride of Q K^T's work. The key cells are staged once per key head; a task is one query head
// and a chunk of query blocks (about 128 row groups, packed once), which walks the key cells in
// chunks of whole key blocks (about 256 cells, reused by every row group of the task from L2):
// GEMM (cell_kernels.h: AMX, vdpbf16ps, or fp32 FMA), then each key block's max and sum of
// exponentials per row group, vectorised across row groups. A row group's block masses come from
// those partials at the end (in double), so no full row of logits is ever held.
#pragma once

#include <cstdint>

#include "select/select_problem.h"

namespace blitz::cpu::select {

// mass[(m * blocks_q + i) * blocks_kv + j] for query head g * group + m, query block i, key block
// j < ceil(len_kv / block_kv) of batch b (blocks_q = ceil(len_q / block_q); len_q, len_kv > 0).
// path: the caller's kernel path (its device settings; kAuto: the fastest), which picks the variant.
void antidiagonal_group_mass(const SelectProblem &p, int64_t b, int64_t g, int workers, KernelPath path,
                             double *mass);

}  // namespace blitz::cpu::select

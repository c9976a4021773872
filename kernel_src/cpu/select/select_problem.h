// BlitzSelectBlocks' checked call (select_checks.cpp fills it, select_run.cpp computes it): the
// query and key as [batch, head, seq, head_dim] strided views, each batch's lengths, the block
// shape of the attention call the sabi is for, the scoring method and the selection rule.
#pragma once

#include <cstdint>
#include <vector>

#include "kernel/attention_problem.h"

namespace blitz::cpu::select {

enum class Method { kMeanPool, kAntidiagonal };

// Which key blocks a row always keeps, whatever their score (the original frame pattern's
// leading and last key blocks, plus the query block's own positions).
struct Anchors {
  int64_t first = 1;     // key blocks 0 .. first-1
  bool diagonal = true;  // the key blocks holding token positions [i bq, i bq + rows) of query block i
  bool last = true;      // the batch's last valid key block
};

struct SelectProblem {
  ElementType dtype = ElementType::kFloat32;  // query and key share it
  int64_t batch = 0, heads_q = 0, heads_kv = 0, head_dim = 0;
  TensorView q, k;  // batch b's token t at data + b * stride_b + (start[b] + t) * stride_s + h * stride_h
  // Per batch (always `batch` entries): first token (0 unless TND) and valid length.
  std::vector<int64_t> q_start, kv_start, len_q, len_kv;

  int64_t block_q = 128, block_kv = 128;
  double scale = 1.0;  // the attention's softmax scale
  Method method = Method::kMeanPool;
  int64_t stride = 8;         // antidiagonal: tokens per antidiagonal cell side
  int64_t sub_block = 32;     // mean_pool: tokens per refinement sub-block
  double refine_below = 0.5;  // mean_pool: refine blocks whose coherence is below this

  double mass = 0.0;  // 0: off; else keep the fewest blocks (anchors first) reaching it
  int64_t top_k = 0;  // 0: off; else keep at least this many blocks (anchors included)
  Anchors anchors;
  bool share_kv_groups = false;  // one pattern per key head: the mean mass of its query heads

  // The attention's index mask (DESIGN.md): 0 none, 2 causal top-left, 3 causal bottom-right,
  // 4 band bottom-right with pre / next tokens (clamped to +-2^40 by the checks).
  int sparse_mode = 0;
  int64_t pre_tokens = 0, next_tokens = 0;

  // Output [batch, heads_q, rows, cols], contiguous: kept blocks ascending, then kSabiNoBlock.
  uint16_t *sabi = nullptr;
  int64_t rows = 0, cols = 0;
};

// Which (query token i, key token j) pairs of batch b the attention's sparse_mode lets through:
// j - i in [lo, hi] (kNoLimit: unbounded below); every pair when `all`.
struct Visibility {
  static constexpr int64_t kNoLimit = -(int64_t{1} << 60);
  bool all = true;
  int64_t lo = kNoLimit, hi = 0;

  static Visibility of(const SelectProblem &p, int64_t b) {
    Visibility v;
    const int64_t offset = p.len_kv[b] - p.len_q[b];  // modes 3 and 4 anchor bottom-right
    switch (p.sparse_mode) {
      case 2: v.all = false, v.hi = 0; break;
      case 3: v.all = false, v.hi = offset; break;
      case 4: v.all = false, v.lo = offset - p.pre_tokens, v.hi = offset + p.next_tokens; break;
      default: break;
    }
    return v;
  }
  // Whether some pair of query rows [r0, r1) x keys [k0, k1) is visible (both ranges nonempty):
  // some i in [r0, r1) with i + lo <= k1 - 1 and i + hi >= k0.
  bool any(int64_t r0, int64_t r1, int64_t k0, int64_t k1) const {
    if (all) return true;
    if (hi < lo) return false;
    return (r0 > k0 - hi ? r0 : k0 - hi) <= (r1 - 1 < k1 - 1 - lo ? r1 - 1 : k1 - 1 - lo);
  }
};

// Fills problem.sabi with num_threads threads.
void run_select(const SelectProblem &problem, int num_threads, KernelPath path);

}  // namespace blitz::cpu::select

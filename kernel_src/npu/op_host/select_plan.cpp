// BlitzSelectBlocks tiling arithmetic (see select_plan.h). Pure C++17, no CANN.
#include "select_plan.h"

#include <cmath>
#include <vector>

#include "../../common/op_limits.h"
#include "../../common/op_refusals.h"
#include "../../common/platform.h"
#include "../../common/select_refusals.h"
#include "select_npu_limits.h"

namespace blitz_npu {
namespace {

constexpr uint64_t kFloatBytes = 4;
constexpr uint64_t kSabiBytes = 2;
constexpr uint64_t kIntBytes = 4;
constexpr int64_t kRepeatFloats = kFloatsPerRepeat;  // a score row is whole vector repeats
constexpr int64_t kBlockUint16 = 16;     // the sabi row buffer is whole 32-byte blocks
constexpr uint64_t kUbBlock = 32;
constexpr uint64_t kTokenQueueDepth = 2;  // the copy of token chunk c+1 overlaps the cast of chunk c
// 32-byte blocks: the score row's max, sum and (unwritten, isUpdate false) expMax.
constexpr uint64_t kStatBuffers = 3;
constexpr uint64_t kLnTableBytes = 64 * kFloatBytes;  // cells: ln 1 .. ln 64 (select_kernel.h kLnTable)
// Token rows per GM -> UB copy, tried from the largest down until the score row fits.
constexpr int64_t kChunkRows[] = {64, 32, 16, 8};
constexpr const char kAntidiagonal[] = "antidiagonal";

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

bool fail(SelectPlan *plan, const std::string &message) {
  plan->ok = false;
  plan->error = message;
  return false;
}

// Units a block of `tokens` tokens may pool into: ceil(tokens / sub_block) when refining,
// ceil(tokens / stride) cells for antidiagonal, else 1.
int64_t units_of(const SelectTilingParams *p, int64_t tokens) {
  if (p->stride > 0) return blitz::ceil_div(tokens, p->stride);
  return p->sub_block > 0 ? blitz::ceil_div(tokens, p->sub_block < tokens ? p->sub_block : tokens) : 1;
}
int64_t units_per_block(const SelectTilingParams *p) { return units_of(p, p->block_kv); }
// The kernel allocates the refinement's / the cells' buffers on the same tests (select_kernel.h Init).
bool refining(const SelectTilingParams *p) { return p->sub_block > 0; }
bool cells(const SelectTilingParams *p) { return p->stride > 0; }

// tiling_plan.h's readers report into a TilingPlan; this moves their message over.
bool relay(SelectPlan *plan, bool ok, const TilingPlan &scratch) { return ok || fail(plan, scratch.error); }

bool supported_method(const std::string &method) {
  for (const char *m : select_limits::kNpuMethods) {
    if (method == m) return true;
  }
  return false;
}

bool read_rule(SelectPlan *plan, const SelectRequest &r, SelectTilingParams *p) {
  if (!supported_method(r.method)) return fail(plan, select_limits::refuse_select_npu_method(r.method));
  const bool antidiagonal = r.method == kAntidiagonal;
  if (antidiagonal && (r.stride < 1 || r.stride > select_limits::kStrideMax))
    return fail(plan, blitz::limits::refuse_select_stride(r.stride));
  if (!(r.refine_below >= 0.0 && r.refine_below <= 1.0))
    return fail(plan, blitz::limits::refuse_select_refine_below(std::to_string(r.refine_below)));
  if (r.refine_below > 0.0 && r.sub_block < 1)
    return fail(plan, "subBlock = " + std::to_string(r.sub_block) + "; expected >= 1 (tokens per sub-block)");
  if (r.sparse_mode != 0) return fail(plan, select_limits::refuse_select_npu_mask(r.sparse_mode));
  if (!(r.mass >= 0.0 && r.mass <= 1.0))
    return fail(plan, blitz::limits::refuse_select_mass(std::to_string(r.mass)));
  if (r.top_k < 0) return fail(plan, blitz::limits::refuse_select_top_k(r.top_k));
  if (r.mass == 0.0 && r.top_k == 0)
    return fail(plan, blitz::limits::refuse_select_rule_off());
  if (r.anchor_first < 0) return fail(plan, blitz::limits::refuse_select_anchor_first(r.anchor_first));
  p->mass = float(r.mass);
  p->top_k = r.top_k;
  p->anchor_first = r.anchor_first;
  p->anchor_diagonal = r.anchor_diagonal ? 1 : 0;
  p->anchor_last = r.anchor_last ? 1 : 0;
  p->share_kv_groups = r.share_kv_groups ? 1 : 0;
  p->refine_below = float(r.refine_below);
  // The refinement is mean_pool's: antidiagonal ignores refine_below, as the CPU op does.
  p->sub_block = !antidiagonal && r.refine_below > 0.0 ? r.sub_block : 0;
  p->stride = antidiagonal ? r.stride : 0;
  return true;
}

// Batches, their lengths and the tensors' sequence bounds (TND: the longest batch's).
bool read_batches(SelectPlan *plan, const SelectRequest &r, const int64_t q[4], const int64_t k[4],
                  SelectTilingParams *p) {
  TilingPlan scratch{};
  if (p->packed) {
    std::vector<int64_t> lq, lkv;
    if (!relay(plan, read_packed(&scratch, "actual_seq_lengths", r.actual_q, r.actual_q_count, q[2], &lq), scratch) ||
        !relay(plan, read_packed(&scratch, "actual_seq_lengths_kv", r.actual_kv, r.actual_kv_count, k[2], &lkv),
               scratch))
      return false;
    if (lq.size() != lkv.size())
      return fail(plan, blitz::limits::refuse_packed_lengths(int64_t(lkv.size()), int64_t(lq.size())));
    p->batch = int64_t(lq.size());
    p->seq_q = p->seq_kv = 0;
    for (size_t b = 0; b < lq.size(); ++b) {
      p->seq_q = lq[b] > p->seq_q ? lq[b] : p->seq_q;
      p->seq_kv = lkv[b] > p->seq_kv ? lkv[b] : p->seq_kv;
    }
  } else {
    if (k[0] != q[0]) return fail(plan, "key has batch " + std::to_string(k[0]) + "; expected the query's " + std::to_string(q[0]));
    p->batch = q[0];
    p->seq_q = q[2];
    p->seq_kv = k[2];
    if (!relay(plan, check_lengths(&scratch, "actual_seq_lengths", r.actual_q, r.actual_q_count, p->batch, p->seq_q),
               scratch) ||
        !relay(plan,
               check_lengths(&scratch, "actual_seq_lengths_kv", r.actual_kv, r.actual_kv_count, p->batch, p->seq_kv),
               scratch))
      return false;
  }
  if (p->batch < 1 || p->batch > blitz::limits::kNpuBatchMax)
    return fail(plan, blitz::limits::refuse_npu_batch(p->batch));
  p->actual_q_count = r.actual_q_count;
  p->actual_kv_count = r.actual_kv_count;
  return true;
}

// Token chunk, UB buffers and workspace for cols key blocks; false when no chunk fits.
bool size_buffers(SelectPlan *plan, const SelectRequest &r, SelectTilingParams *p) {
  const uint64_t ub = r.cores.ub_bytes > blitz_npu::kUbReserveBytes ? r.cores.ub_bytes - blitz_npu::kUbReserveBytes : 0;
  const int64_t d = p->head_dim;
  const uint32_t tmp = r.softmax_tmp_bytes ? r.softmax_tmp_bytes(1, uint32_t(p->k_units_aligned), r.softmax_tmp_user) : 0;
  // The limit the refusal names, at the smallest chunk: without this test a key-unit row that
  // grows by less than a 64-float repeat per block (cells, sub-blocks) would fit a few blocks
  // past it.
  const int64_t smallest = kChunkRows[sizeof(kChunkRows) / sizeof(kChunkRows[0]) - 1];
  const int64_t most = select_max_cols(smallest, d, p->dtype_size, ub, tmp, refining(p), units_per_block(p), cells(p));
  if (p->cols > most) return fail(plan, select_limits::refuse_select_npu_kv_blocks(p->cols, most));
  p->chunk_rows = 0;
  for (int64_t chunk : kChunkRows) {
    if (select_ub_bytes(chunk, d, p->dtype_size, p->cols_aligned, tmp, refining(p), p->k_units_aligned, cells(p)) <=
        ub) {
      p->chunk_rows = chunk;
      break;
    }
  }
  if (p->chunk_rows == 0) return fail(plan, select_limits::refuse_select_npu_kv_blocks(p->cols, most));
  p->ub_tokens_bytes = uint32_t(align_up(uint64_t(p->chunk_rows * d) * p->dtype_size, kUbBlock));
  p->ub_float_bytes = uint32_t(align_up(uint64_t(p->chunk_rows * d) * kFloatBytes, kUbBlock));
  p->ub_mean_bytes = uint32_t(align_up(uint64_t(d) * kFloatBytes, kUbBlock));
  p->ub_score_bytes = uint32_t(uint64_t(p->cols_aligned) * kFloatBytes);
  p->ub_stat_bytes = uint32_t(kUbBlock);
  p->ub_softmax_tmp_bytes = uint32_t(align_up(tmp, kUbBlock));
  p->ub_sabi_bytes = uint32_t(uint64_t(p->sabi_row_aligned) * kSabiBytes);
  p->ub_unit_row_bytes = uint32_t(uint64_t(p->k_units_aligned) * kFloatBytes);
  // Refining: a count and an ln n row over the key units, each block's first unit, the square
  // sums and one query unit's block masses. Cells: each block's first cell, one row group's
  // block masses (also the partial cells' stash), a count / ln table of 64 floats each (ln n_t
  // for n_t = 1..64) and the fallback's two sum rows. Otherwise none of these: the one partial
  // block's count and log take a 32-byte block each.
  const bool refine = refining(p), cell = cells(p), units = refine || cell;
  p->ub_log_bytes = refine ? p->ub_unit_row_bytes : cell ? uint32_t(kLnTableBytes) : uint32_t(kUbBlock);
  p->ub_first_bytes = units ? uint32_t(align_up(uint64_t(p->cols + 1) * kIntBytes, kUbBlock)) : 0;
  p->ub_sum_bytes = cell ? 2 * p->ub_mean_bytes : 0;
  // What the kernel's InitBuffer calls take, in its order (select_kernel.h Init); the search
  // above used select_ub_bytes, which bounds it from above (its sabi row is cols_aligned long).
  p->ub_total_bytes = kTokenQueueDepth * p->ub_tokens_bytes + p->ub_float_bytes +
                      (refine ? 2 : 1) * uint64_t(p->ub_mean_bytes) + p->ub_unit_row_bytes + 2 * uint64_t(p->ub_log_bytes) +
                      (units ? 3 : 2) * uint64_t(p->ub_score_bytes) + kStatBuffers * p->ub_stat_bytes +
                      p->ub_softmax_tmp_bytes + p->ub_sabi_bytes + p->ub_first_bytes + p->ub_sum_bytes;
  // select_ub_bytes bounds this from above; a plan that broke that would fail in the kernel's InitBuffer.
  if (p->ub_total_bytes > ub)
    return fail(plan, "the select plan's unified buffers take " + std::to_string(p->ub_total_bytes) + " B of " +
                          std::to_string(ub) + " (a sizing bug: select_ub_bytes under-counts)");

  p->ws_key_bytes = align_up(uint64_t(p->k_units_max * p->cell_dim) * kFloatBytes, kWorkspaceAlign);
  p->ws_query_bytes = align_up(uint64_t(p->q_units_max * p->cell_dim) * kFloatBytes, kWorkspaceAlign);
  p->ws_logit_bytes = align_up(uint64_t(p->q_units_max * p->k_units_aligned) * kFloatBytes, kWorkspaceAlign);
  p->ws_sum_bytes = cell ? align_up(uint64_t((p->cols + p->group) * d) * kFloatBytes, kWorkspaceAlign) : 0;
  p->ws_worker_bytes = p->ws_key_bytes + p->ws_query_bytes + p->ws_logit_bytes + p->ws_sum_bytes;
  return true;
}

// Units split evenly over the vector workers (two per cube core launched, never more than units).
void split_units(const SelectRequest &r, SelectTilingParams *p) {
  p->units = p->batch * p->kv_heads * p->rows;
  uint32_t cube = cube_cores_for(r.cores, p->units);  // the attention's rule (tiling_plan.h)
  if (cube == 0) cube = 1;
  p->cube_cores = cube;
  p->workers = 2 * cube;
  for (uint32_t w = 0; w <= p->workers; ++w) p->unit_start[w] = p->units * int64_t(w) / int64_t(p->workers);
  p->ws_user_bytes = p->ws_worker_bytes * p->workers;
}

}  // namespace

uint64_t select_ub_bytes(int64_t chunk_rows, int64_t head_dim, uint32_t dtype_size, int64_t cols_aligned,
                         uint32_t softmax_tmp, bool refining, int64_t k_units_aligned, bool cells) {
  const uint64_t tokens = kTokenQueueDepth * align_up(uint64_t(chunk_rows * head_dim) * dtype_size, kUbBlock);
  const uint64_t floats = align_up(uint64_t(chunk_rows * head_dim) * kFloatBytes, kUbBlock);
  const uint64_t mean_row = align_up(uint64_t(head_dim) * kFloatBytes, kUbBlock);
  const uint64_t sabi = align_up(uint64_t(cols_aligned) * kSabiBytes, kUbBlock);
  const uint64_t common = tokens + floats + kStatBuffers * kUbBlock + align_up(softmax_tmp, kUbBlock) + sabi;
  const uint64_t first = align_up(uint64_t(cols_aligned + 1) * kIntBytes, kUbBlock);
  if (cells) {
    // The partial cell's sum row (queued to GM) and the fallback's two sum rows; the count and
    // ln n table; a cell score row (queued from GM), its only row per cell; the head's mass
    // row, the group's mean mass row and one row group's block masses; each block's first cell.
    return common + 3 * mean_row + 2 * kLnTableBytes + uint64_t(k_units_aligned) * kFloatBytes +
           3 * uint64_t(cols_aligned) * kFloatBytes + first;
  }
  if (!refining) {
    // The pooled mean row; a score row (queued from GM), the head's mass row and the group's
    // mean mass row; the partial last block's count and log (a 32-byte block each).
    return common + mean_row + 3 * uint64_t(cols_aligned) * kFloatBytes + 2 * kUbBlock;
  }
  // The pooled mean row and the sum of squares row (the coherence); a unit score row (queued
  // from GM), the units' counts and their ln n row; the head's mass row, the group's mean mass
  // row and one query unit's block masses; each block's first unit.
  return common + 2 * mean_row + 3 * uint64_t(k_units_aligned) * kFloatBytes +
         3 * uint64_t(cols_aligned) * kFloatBytes + first;
}

int64_t select_max_cols(int64_t chunk_rows, int64_t head_dim, uint32_t dtype_size, uint64_t ub_bytes,
                        uint32_t softmax_tmp, bool refining, int64_t units_per_block, bool cells) {
  if (!refining && !cells) units_per_block = 1;
  const uint64_t fixed = select_ub_bytes(chunk_rows, head_dim, dtype_size, 0, softmax_tmp, refining, 0, cells);
  if (fixed >= ub_bytes) return 0;
  const uint64_t unit_rows = cells ? 1 : 3;
  const uint64_t per_col = refining || cells
                               ? (unit_rows * uint64_t(units_per_block) + 3) * kFloatBytes + kSabiBytes + kIntBytes
                               : 3 * kFloatBytes + kSabiBytes;
  int64_t most = int64_t((ub_bytes - fixed) / per_col) / kRepeatFloats * kRepeatFloats;
  // The rows' alignment: step down until the whole set fits.
  while (most > 0 && select_ub_bytes(chunk_rows, head_dim, dtype_size, most, softmax_tmp, refining,
                                     int64_t(align_up(uint64_t(most * units_per_block), kRepeatFloats)), cells) > ub_bytes)
    most -= kRepeatFloats;
  return most;
}

SelectPlan plan_select(const SelectRequest &r) {
  SelectPlan plan;
  SelectTilingParams *p = &plan.params;
  if (!r.dtype_supported || r.dtype_size != 2) {
    fail(&plan, select_limits::refuse_select_npu_dtype());
    return plan;
  }
  p->dtype_size = r.dtype_size;
  uint32_t layout = 0;
  if (!layout_code(r.layout, &layout)) {
    fail(&plan, blitz::limits::refuse_layout(r.layout));
    return plan;
  }
  if (r.num_heads < 1 || r.num_heads > blitz::limits::kNpuHeadsMax) {
    fail(&plan, blitz::limits::refuse_npu_heads(r.num_heads));
    return plan;
  }
  const int64_t kv_heads = r.num_kv_heads == 0 ? r.num_heads : r.num_kv_heads;
  if (kv_heads < 1 || r.num_heads % kv_heads != 0) {
    fail(&plan, blitz::limits::refuse_gqa("num_heads", r.num_heads, "num_key_value_heads", kv_heads));
    return plan;
  }
  if (r.num_heads / kv_heads > blitz::limits::kNpuGroupMax) {
    fail(&plan, blitz::limits::refuse_npu_group(r.num_heads / kv_heads));
    return plan;
  }
  int64_t q[4], k[4];
  TilingPlan scratch{};
  if (!relay(&plan, read_bnsd(&scratch, "query", r.q_dims, r.q_rank, layout, r.num_heads, q), scratch) ||
      !relay(&plan, read_bnsd(&scratch, "key", r.k_dims, r.k_rank, layout, kv_heads, k), scratch))
    return plan;
  if (q[1] != r.num_heads || k[1] != kv_heads || k[3] != q[3]) {
    fail(&plan, "query / key heads or head dims do not match num_heads " + std::to_string(r.num_heads) +
                    " / num_key_value_heads " + std::to_string(kv_heads));
    return plan;
  }
  const int64_t d = q[3];
  if (!blitz::limits::npu_head_dim_supported(d)) {
    fail(&plan, blitz::limits::refuse_npu_head_dim(d));
    return plan;
  }
  if (!blitz::limits::block_shape_supported(r.block_q, r.block_kv)) {
    fail(&plan, blitz::limits::refuse_block_shape(r.block_q, r.block_kv, blitz::limits::kNpuTitle));
    return plan;
  }
  if (!read_rule(&plan, r, p)) return plan;

  p->heads = r.num_heads;
  p->kv_heads = kv_heads;
  p->group = r.num_heads / kv_heads;
  p->head_dim = d;
  p->packed = layout == kLayoutTND ? 1 : 0;
  p->layout = layout == kLayoutBNSD_BSND ? kLayoutBNSD : layout;  // its inputs are BNSD
  if (!read_batches(&plan, r, q, k, p)) return plan;
  // Strides over the tensors as stored (TND: b stride 0, a batch addressed by its first token).
  p->q = layout_strides(p->layout, false, r.num_heads, q[2], d);
  p->k = layout_strides(p->layout, false, kv_heads, k[2], d);
  p->scale = float(r.scale_value != 0.0 ? r.scale_value : 1.0 / std::sqrt(double(d)));
  p->block_q = r.block_q;
  p->block_kv = r.block_kv;
  p->rows = blitz::ceil_div(p->seq_q, p->block_q);
  p->cols = blitz::ceil_div(p->seq_kv, p->block_kv);
  if (p->cols >= blitz::limits::kSabiPad) {
    fail(&plan, blitz::limits::refuse_npu_kv_blocks(p->cols));
    return plan;
  }
  p->cols_aligned = int64_t(align_up(uint64_t(p->cols > 0 ? p->cols : 1), kRepeatFloats));
  p->sabi_row_aligned = int64_t(align_up(uint64_t(p->cols > 0 ? p->cols : 1), kBlockUint16));
  // Key units: every block may split (a partial last block into no more than a full one's);
  // query units: each head of the group's block.
  p->k_units_max = (p->cols > 0 ? p->cols : 1) * units_per_block(p);
  p->k_units_aligned = int64_t(align_up(uint64_t(p->k_units_max), kRepeatFloats));
  p->q_units_max = p->group * units_of(p, p->block_q);
  p->cell_dim = cells(p) ? p->stride * d : d;
  if (!size_buffers(&plan, r, p)) return plan;
  split_units(r, p);
  plan.ok = true;
  return plan;
}

}  // namespace blitz_npu

// The plain part of BlitzSelectBlocks' tiling data: every number the select kernel
// (select_kernel.h) needs that the host (op_host/select_plan.cpp) derives from shapes,
// attributes, the actual lengths and the core counts. Plain integers only, so the same header
// compiles in the Ascend C kernel, the CANN tiling library and g++ host tests (tests/npu_host).
#pragma once

#if !defined(__CCE__) && !defined(__CCE_AICORE__) && !defined(ASCENDC_CPU_DEBUG)
#include <stdint.h>
#endif

#include "blitz_tiling_params.h"  // ViewStrides, LayoutCode, kMaxWorkers

namespace blitz_npu {

struct SelectTilingParams {
  // Problem dims; group = heads / kv_heads (query head h reads kv head h / group). seq_q /
  // seq_kv: the tensors' lengths (TND: the longest batch's), the bound actual lengths clip to.
  int64_t batch;
  int64_t heads;
  int64_t kv_heads;
  int64_t group;
  int64_t seq_q;
  int64_t seq_kv;
  int64_t head_dim;
  uint32_t layout;   // LayoutCode (BNSD_BSND reads as BNSD)
  uint32_t packed;   // 1: TND, batch b's tokens start at the cumulative actual lengths' end[b-1]
  uint32_t dtype_size;
  ViewStrides q;     // [B, N, S, D] element strides of query
  ViewStrides k;     // and of key ([B, Nkv, Skv, D])
  int64_t actual_q_count;   // entries of actual_seq_lengths (0 = absent)
  int64_t actual_kv_count;

  // The attention's tiles and the sabi written: [batch, heads, rows, cols] uint16, contiguous.
  int64_t block_q;
  int64_t block_kv;
  int64_t rows;          // ceil(seq_q / bq)
  int64_t cols;          // ceil(seq_kv / bkv)
  int64_t cols_aligned;  // cols rounded up to 64 floats (one vector repeat): a score row's length
  int64_t sabi_row_aligned;  // cols rounded up to 16 uint16 (32 bytes): the sabi row buffer

  // The rule (block_choice.h's, stated in select_kernel.h): anchors, top_k floor, mass stop.
  float scale;
  float mass;        // 0 = off
  int64_t top_k;     // 0 = off
  int64_t anchor_first;
  uint32_t anchor_diagonal;
  uint32_t anchor_last;
  uint32_t share_kv_groups;
  // The sub-block refinement (README "Choosing the tiles"): a block whose coherence
  // |sum x|^2 / (n sum |x|^2) is below refine_below (0 = never) is pooled as sub_block-token
  // units. Key units: at most k_units_max per (b, kv head), a logit row k_units_aligned floats
  // (64-float multiple); query units: at most q_units_max per unit (the group's heads).
  int64_t sub_block;
  float refine_below;
  int64_t k_units_max;
  int64_t k_units_aligned;
  int64_t q_units_max;
  // The antidiagonal method (stride > 0; 0 = mean_pool): a key unit is a cell of up to stride
  // keys of one block, a query unit a row group of up to stride rows, each as a "cell vector" of
  // stride x D floats (a cell's keys in order, a row group's rows reversed, zeros in the unused
  // slots), so one dot product of cell vectors is the sum along the cell's antidiagonal.
  // cell_dim: the logits matmul's K (stride x D; mean_pool: D). sub_block is 0 then.
  int64_t stride;
  int64_t cell_dim;

  // Work: a unit is (b, kv head g, query block i) flattened as ((b * kv_heads) + g) * rows + i;
  // worker w (vector core GetBlockIdx()) runs units [unit_start[w], unit_start[w + 1]).
  int64_t units;
  uint32_t cube_cores;  // blocks launched (MIX_AIC_1_2: two vector workers each)
  uint32_t workers;
  int64_t unit_start[kMaxWorkers + 1];

  // Unified buffer (bytes, each a multiple of 32): token chunks (chunk_rows x D input dtype,
  // double-buffered), their float copy, the pooled mean row (D floats, ub_mean_bytes), a
  // key-unit score row (ub_unit_row_bytes), the units' counts and ln n (ub_log_bytes each), the
  // mass row and the group's mean mass row (ub_score_bytes each), three 32-byte statistics (max,
  // sum, expMax), the softmax scratch, the sabi row; when refining (sub_block > 0) also the sum
  // of squares row (ub_mean_bytes), one query unit's block masses (ub_score_bytes) and each
  // block's first unit (ub_first_bytes; 0 otherwise); ub_total_bytes their sum.
  int64_t chunk_rows;
  uint32_t ub_tokens_bytes;
  uint32_t ub_float_bytes;
  uint32_t ub_mean_bytes;
  uint32_t ub_score_bytes;
  uint32_t ub_stat_bytes;
  uint32_t ub_softmax_tmp_bytes;
  uint32_t ub_sabi_bytes;
  uint32_t ub_unit_row_bytes;   // a key-unit row (k_units_aligned floats): the score row
  uint32_t ub_log_bytes;        // the counts / ln n: a key-unit row when refining, 256 (ln 1..64) for cells, else 32
  uint32_t ub_first_bytes;      // int32 [cols + 1]: each key block's first key unit (refining / cells, else 0)
  uint32_t ub_sum_bytes;        // cells: the two sum rows of the fallback dot product (D floats each), else 0
  uint64_t ub_total_bytes;

  // Workspace per worker: pooled key unit means [k_units_max, cell_dim] float, pooled query unit
  // means [q_units_max, cell_dim] float (cells: their cell vectors), unit logits [q_units_max,
  // k_units_aligned] float (the cube's output), then (cells) the partial cells' sums.
  uint64_t ws_key_bytes;
  uint64_t ws_query_bytes;
  uint64_t ws_logit_bytes;
  uint64_t ws_sum_bytes;  // cells: a partial cell's key sum per block, a partial row group's per head ([cols + group, D] float)
  uint64_t ws_worker_bytes;
  uint64_t ws_user_bytes;
};

}  // namespace blitz_npu

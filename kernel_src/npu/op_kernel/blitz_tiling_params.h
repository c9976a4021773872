// The plain part of BlitzSparseAttention's tiling data: every number the kernel needs that the
// host derives from shapes, attributes, sabi and the core counts. Plain integers only, so the
// same header compiles in the Ascend C kernel, in the CANN tiling library and with g++ in the
// host unit tests (tests/npu_host). The Matmul and SoftmaxFlashV2 tilings, which need CANN's
// headers, sit beside it in blitz_tiling_data.h.
#pragma once

#if !defined(__CCE__) && !defined(__CCE_AICORE__) && !defined(ASCENDC_CPU_DEBUG)
#include <stdint.h>
#endif

namespace blitz_npu {

// Vector cores the split can address (910B / 910_93 have at most 24 cube + 48 vector cores).
constexpr uint32_t kMaxWorkers = 64;
// The vector unit's float geometry, by which the plans size rows and the kernels walk them.
constexpr uint32_t kFloatsPerRepeat = 64;  // one 256-byte vector repeat of float
constexpr uint32_t kFloatsPerBlock = 8;    // one 32-byte datablock of float

// input_layout codes; strides below already encode the layout, the code is kept for messages
// and for the output layout of BNSD_BSND.
enum LayoutCode : uint32_t { kLayoutBNSD = 0, kLayoutBSND = 1, kLayoutBSH = 2, kLayoutBNSD_BSND = 3, kLayoutTND = 4 };

// A [batch, heads, seq, head_dim] view in elements; head_dim's stride is 1.
struct ViewStrides {
  int64_t b;
  int64_t h;
  int64_t s;
};

struct BlitzTilingParams {
  // Problem dims. heads = N, kv_heads = Nkv, group = N / Nkv (query head h reads kv head h / group).
  int64_t batch;
  int64_t heads;
  int64_t kv_heads;
  int64_t group;
  int64_t seq_q;
  int64_t seq_kv;
  int64_t head_dim;
  uint32_t layout;     // LayoutCode
  uint32_t dtype_size; // bytes of one q/k/v/out element (2: fp16 / bf16)
  float scale;
  uint32_t return_lse; // 1: write softmax_lse [B, N, Sq] float32 ([N, T] with TND)
  // TND (packed varlen): 1. q/k/v/out are [T, N, D] / [Tkv, Nkv, D] with strides b = 0; batch b
  // is the tokens [end[b-1], end[b]) of each, end = the CUMULATIVE actual_seq_lengths(_kv)
  // (actual_q_count = actual_kv_count = batch entries, read by the kernel from global memory);
  // seq_q / seq_kv are the longest batch's lengths. Rows past a batch's length are another
  // batch's and are never written.
  uint32_t packed;
  uint32_t packed_reserved;  // keeps the 64-bit fields below 8-byte aligned

  ViewStrides q, k, v, out;
  // softmax_lse element (b, h, row) at b * lse_stride_b + h * lse_stride_h + first + row, first =
  // the batch's first query token with TND (0 otherwise): [B, N, Sq] gives (N * Sq, Sq), TND's
  // [N, T] gives (0, T).
  int64_t lse_stride_b;
  int64_t lse_stride_h;

  // Tile geometry: bq x bkv tiles; q_blocks = ceil(Sq / bq), kv_blocks = ceil(Skv / bkv).
  int64_t block_q;
  int64_t block_kv;
  int64_t q_blocks;
  int64_t kv_blocks;

  // sabi uint16 [sabi_batch, sabi_heads, sabi_rows, sabi_width], contiguous, 0xFFFF = no block;
  // has_sabi 0 = dense. sabi_length = the element count, so the kernel can bound its reads.
  uint32_t has_sabi;
  int64_t sabi_batch;
  int64_t sabi_heads;
  int64_t sabi_rows;
  int64_t sabi_width;
  int64_t sabi_length;

  // Entries of actual_seq_lengths / _kv (0 = absent: full lengths; 1 = applies to every batch;
  // TND: batch entries, cumulative).
  int64_t actual_q_count;
  int64_t actual_kv_count;

  // Token mask (DESIGN.md; kernel_src/common/token_mask.h). mask_mode is the sparse mode the
  // kernel applies: 0 none, 1 explicit atten_mask, 2 causal top-left, 3 causal bottom-right,
  // 4 band (pre_tokens / next_tokens, clamped on the host so i + shift cannot overflow).
  // The explicit mask is bytes (bool / int8 / uint8, nonzero = masked out): element (b, h, i, j)
  // at b * mask_stride_b + h * mask_stride_h + i * mask_stride_q + j; a stride of 0 broadcasts
  // over that dim. It may be larger than [Sq, Skv] (mask_stride_q = its key length): only the
  // top-left window is read.
  uint32_t mask_mode;
  uint32_t has_mask_tensor;  // 1: mask_mode 1 reads atten_mask
  int64_t pre_tokens;
  int64_t next_tokens;
  int64_t mask_stride_b;
  int64_t mask_stride_h;
  int64_t mask_stride_q;

  // Vector-side blocking. A query block is processed in row groups of group_rows rows (the M
  // of both matmuls); the softmax walks a group in slices of slice_rows rows. kv_block_aligned
  // is bkv rounded up to 16 elements, so a row is whole 32-byte blocks both as float scores and
  // as fp16/bf16 probabilities (the row stride of the score/probability buffers).
  int64_t group_rows;
  int64_t slice_rows;
  int64_t kv_block_aligned;

  // Unified-buffer bytes of each vector buffer (one copy; the kernel doubles the queued ones).
  uint32_t ub_acc_bytes;      // O accumulator [group_rows, head_dim] float
  uint32_t ub_stat_bytes;     // one row-statistic buffer [group_rows, 8] float (max, sum, expmax)
  uint32_t ub_score_bytes;    // score slice [slice_rows, kv_block_aligned] float
  uint32_t ub_prob_bytes;     // probability slice [slice_rows, kv_block_aligned] in the input dtype
  uint32_t ub_otile_bytes;    // P*V slice [slice_rows, head_dim] float
  uint32_t ub_out_bytes;      // output slice [slice_rows, head_dim] in the input dtype
  uint32_t ub_softmax_tmp_bytes;  // SoftmaxFlashV2's scratch for one slice
  // Explicit mask only (0 otherwise), one copy each: the mask bytes of a slice, the same as
  // half, and the allowed-bit mask Compares writes (1 bit per element).
  uint32_t ub_mask_bytes;       // [slice_rows, kv_block_aligned] uint8
  uint32_t ub_mask_half_bytes;  // [slice_rows, kv_block_aligned] half
  uint32_t ub_mask_bits_bytes;  // slice_rows * kv_block_aligned / 8
  uint32_t ub_total_bytes;

  // Work split over vector workers: worker w runs tasks [task_start[w], task_start[w + 1]) of
  // the flattened (b, h, q_block) order (kernel_src/common/work_split.h), ranges balanced by the
  // tiles each task computes. When sabi's values are device data (the host never sees them),
  // device_split = 1: every worker streams sabi itself at the start and computes the same
  // weighted ranges (kernel_src/common/split_scan.h), in chunks of scan_chunk entries held in
  // the O accumulator's unified buffer before its first use; task_start is then unused. Only
  // when that scan is switched off by the tiling (TilingRequest::device_split_scan) does
  // interleave = 1 run worker w's tasks w, w + workers, w + 2 * workers, ... instead.
  uint32_t workers;     // vector cores used = 2 x cube cores launched
  uint32_t cube_cores;  // block dim of the launch
  uint32_t interleave;
  uint32_t device_split;
  uint32_t scan_chunk;  // sabi entries per scan load (2 loads in flight), a multiple of 16
  uint32_t reserved;    // keeps the 64-bit fields below 8-byte aligned on every compiler
  int64_t tasks;
  int64_t task_start[kMaxWorkers + 1];

  // User workspace: per worker, ping-pong buffers for scores (float), probabilities (input
  // dtype) and P*V tiles (float); offsets in bytes from the worker's base.
  uint64_t ws_score_bytes;   // one score buffer [group_rows, kv_block_aligned] float
  uint64_t ws_prob_bytes;    // one probability buffer
  uint64_t ws_otile_bytes;   // one P*V buffer [group_rows, head_dim] float
  uint64_t ws_worker_bytes;  // all six buffers, 512-byte aligned
  uint64_t ws_user_bytes;    // workers x ws_worker_bytes
};

}  // namespace blitz_npu

// What every kernel path reads about one run_attention call, derived once: block axes, the
// sabi view, the task list geometry, and per-task views (batch lengths, token mask, pointers).
//
// Tensors are [batch, heads, seq, head_dim] views (attention_problem.h): element (b, h, s, d)
// of q sits at q.data + b * q.stride_b + h * q.stride_h + s * q.stride_s + d (in elements);
// k, v use the key/value head h / group (GQA/MQA), out the query head.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/sabi_walk.h"
#include "common/tile_geometry.h"
#include "common/token_mask.h"
#include "common/work_split.h"
#include "kernel/attention_problem.h"
#include "kernel/element_convert.h"

namespace blitz::cpu {

struct AttentionPlan {
  const AttentionProblem *problem;
  BlockAxis q_axis, kv_axis;  // the whole tensors' axes (tasks cover every query block)
  SabiShape sabi;
  int64_t group;    // query heads per key/value head
  int64_t n_tasks;  // batch * heads_q * q_axis.count
  const int64_t *task_prefix;  // cost prefix sums, n_tasks + 1 entries

  static AttentionPlan make(const AttentionProblem &p) {
    AttentionPlan plan;
    plan.problem = &p;
    plan.q_axis = BlockAxis::make(p.seq_q, p.block_q);
    plan.kv_axis = BlockAxis::make(p.seq_kv, p.block_kv);
    plan.sabi = SabiShape{p.sabi, p.sabi_batch, p.sabi_heads, p.sabi_rows, p.sabi_width};
    plan.group = p.heads_kv > 0 ? p.heads_q / p.heads_kv : 1;
    if (plan.group < 1) plan.group = 1;
    plan.n_tasks = p.batch * p.heads_q * plan.q_axis.count;
    plan.task_prefix = nullptr;
    return plan;
  }

  SequenceGeometry sequence(int64_t b) const {
    const AttentionProblem &p = *problem;
    return SequenceGeometry::make(b, p.seq_q, p.seq_kv, p.block_kv, p.actual_seq_q,
                                  p.actual_seq_q_count, p.actual_seq_kv, p.actual_seq_kv_count);
  }

  // The token mask of query head h of batch entry b (the explicit mask may differ per head).
  TokenMask token_mask(int64_t b, int64_t h, const SequenceGeometry &seq) const {
    const AttentionProblem &p = *problem;
    const uint8_t *head_mask =
        (p.mask != nullptr && (p.sparse_mode == kSparseNone || p.sparse_mode == kSparseExplicit))
            ? p.mask + b * p.mask_stride_b + h * p.mask_stride_h
            : nullptr;
    return TokenMask::make(p.sparse_mode, seq.q_len, seq.kv_len, p.pre_tokens, p.next_tokens,
                           head_mask, p.mask_stride_q);
  }
};

// One task (b, h, q_block) resolved: its rows, lengths, mask, and base pointers of the
// (b, h) slices (byte pointers; rows are seq-stride apart).
struct QueryBlockTask {
  TaskIndex index;
  SequenceGeometry seq;
  TokenMask mask;
  int64_t row_begin, row_end;  // the query block's rows in the tensor
  int64_t valid_end;           // rows [row_begin, valid_end) are < q_len and get attention
  const char *q, *k, *v;       // (b, h) / (b, h_kv) slices
  char *out;
  int64_t q_stride_s, k_stride_s, v_stride_s, out_stride_s;  // in elements
  float *lse;                  // lse row of (b, h), or nullptr

  static QueryBlockTask make(const AttentionPlan &plan, int64_t t) {
    const AttentionProblem &p = *plan.problem;
    QueryBlockTask task;
    task.index = TaskIndex::decode(t, p.heads_q, plan.q_axis.count);
    const int64_t b = task.index.b, h = task.index.h, h_kv = h / plan.group;
    task.seq = plan.sequence(b);
    task.mask = plan.token_mask(b, h, task.seq);
    task.row_begin = plan.q_axis.begin(task.index.q_block);
    task.row_end = plan.q_axis.end(task.index.q_block);
    task.valid_end = task.row_end < task.seq.q_len ? task.row_end : task.seq.q_len;
    if (task.valid_end < task.row_begin) task.valid_end = task.row_begin;
    if (p.q_start != nullptr) task.row_end = task.valid_end;  // packed: later rows are another batch's
    const int64_t es = (int64_t)element_bytes(p.dtype);
    // Element offsets of batch b: b * stride_b, or its first token's row when packed (TND).
    const int64_t q_b = p.q_start != nullptr ? p.q_start[b] * p.q.stride_s : b * p.q.stride_b;
    const int64_t k_b = p.kv_start != nullptr ? p.kv_start[b] * p.k.stride_s : b * p.k.stride_b;
    const int64_t v_b = p.kv_start != nullptr ? p.kv_start[b] * p.v.stride_s : b * p.v.stride_b;
    const int64_t out_b = p.q_start != nullptr ? p.q_start[b] * p.out.stride_s : b * p.out.stride_b;
    task.q = static_cast<const char *>(p.q.data) + (q_b + h * p.q.stride_h) * es;
    task.k = static_cast<const char *>(p.k.data) + (k_b + h_kv * p.k.stride_h) * es;
    task.v = static_cast<const char *>(p.v.data) + (v_b + h_kv * p.v.stride_h) * es;
    task.out = static_cast<char *>(p.out.data) + (out_b + h * p.out.stride_h) * es;
    task.q_stride_s = p.q.stride_s;
    task.k_stride_s = p.k.stride_s;
    task.v_stride_s = p.v.stride_s;
    task.out_stride_s = p.out.stride_s;
    task.lse = p.lse == nullptr      ? nullptr
               : p.q_start != nullptr ? p.lse + h * p.lse_tokens + p.q_start[b]
                                      : p.lse + (b * p.heads_q + h) * p.seq_q;
    return task;
  }

  SabiRowCursor blocks(const AttentionPlan &plan) const {
    return SabiRowCursor::for_row(plan.sabi, index.b, index.h, index.q_block, seq.kv_blocks);
  }
};

// Writes zeros (and lse -inf) for rows [r0, r1) of a task: rows past the q length, empty rows.
void write_zero_rows(const AttentionPlan &plan, const QueryBlockTask &task, int64_t r0, int64_t r1);

// The task ranges one worker runs, in turn (attention.cpp: the grains of its own range, then
// grains other workers have not started). A path's loop keeps its per-thread state (the K/V
// cache, AMX tile configuration) across the ranges it gets.
class TaskSource {
 public:
  virtual bool next(int64_t *begin, int64_t *end) = 0;

 protected:
  ~TaskSource() = default;
};

// One path's entry points: scratch bytes per thread, and the loop over a worker's tasks.
struct PathKernel {
  size_t (*scratch_bytes)(const AttentionProblem &p);
  void (*run_tasks)(const AttentionPlan &plan, TaskSource &tasks, void *scratch);
};

const PathKernel &portable_kernel();
// The AVX-512 kernel for `dtype`, or nullptr when the build has no AVX-512 code.
const PathKernel *avx512_kernel(ElementType dtype);
// The AVX2 + FMA + F16C kernel for `dtype`, or nullptr when the build has no AVX2 code.
const PathKernel *avx2_kernel(ElementType dtype);
// The AMX kernel for this problem (bf16, block_q % 16 == 0), or nullptr (other dtypes and
// shapes, or a build without AMX code). Not yet run on AMX hardware: see amx_gemm.h.
const PathKernel *amx_kernel(const AttentionProblem &p);
// The aarch64 NEON kernel for `dtype` (fp32 FMA for every dtype), or nullptr off aarch64.
const PathKernel *neon_kernel(ElementType dtype);
// The NEON + BF16 kernel (BFDOT products) for bf16, or nullptr (other dtypes run neon_kernel;
// a build without aarch64 code).
const PathKernel *neon_bf16_kernel(ElementType dtype);

// Scratch carving: bump allocation from a thread's slice, 64-byte aligned.
constexpr size_t kScratchAlign = 64;
inline size_t align_up(size_t n) { return (n + kScratchAlign - 1) / kScratchAlign * kScratchAlign; }

struct ScratchCarver {
  char *next;
  template <class T>
  T *take(size_t count) {
    T *p = reinterpret_cast<T *>(next);
    next += align_up(count * sizeof(T));
    return p;
  }
};

}  // namespace blitz::cpu

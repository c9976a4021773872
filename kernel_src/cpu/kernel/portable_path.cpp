// The portable path: plain C++ for any CPU, correct for everything the operation defines; the
// reference the vectorised paths are tested against and the fallback where they cannot run.
//
// Per task (b, h, query block of up to block_q rows, D = head_dim):
//   q_tile [block_q, D]  fp32, scaled     k_tile, v_tile [block_kv, D] fp32
//   scores [block_q, block_kv] fp32        acc [block_q, D] fp32, one OnlineSoftmaxRow per row
// For each key block sabi selects (and the mask does not fully exclude): scores = q_tile
// k_tile^T, masked entries -inf, the online-softmax phases per row, acc += P v_tile with P
// rounded to the input dtype (as the NPU's P*V takes it).
#include <cmath>
#include <cstring>

#include "common/online_softmax.h"
#include "kernel/attention_plan.h"

namespace blitz::cpu {
namespace {

struct Scratch {
  float *q_tile, *k_tile, *v_tile, *scores, *acc;
  OnlineSoftmaxRow *rows;

  // The labelled sum workspace_size() relies on: the same list, in the same order.
  static size_t bytes(const AttentionProblem &p) {
    const size_t bq = p.block_q, bkv = p.block_kv, d = p.head_dim;
    return align_up(bq * d * sizeof(float))          // q_tile
           + 2 * align_up(bkv * d * sizeof(float))   // k_tile, v_tile
           + align_up(bq * bkv * sizeof(float))      // scores
           + align_up(bq * d * sizeof(float))        // acc
           + align_up(bq * sizeof(OnlineSoftmaxRow));  // rows
  }
  static Scratch carve(const AttentionProblem &p, void *memory) {
    const size_t bq = p.block_q, bkv = p.block_kv, d = p.head_dim;
    ScratchCarver c{static_cast<char *>(memory)};
    Scratch s;
    s.q_tile = c.take<float>(bq * d);
    s.k_tile = c.take<float>(bkv * d);
    s.v_tile = c.take<float>(bkv * d);
    s.scores = c.take<float>(bq * bkv);
    s.acc = c.take<float>(bq * d);
    s.rows = c.take<OnlineSoftmaxRow>(bq);
    return s;
  }
};

struct ExpF {
  float operator()(float x) const { return std::exp(x); }
};
struct LogF {
  float operator()(float x) const { return std::log(x); }
};

// rows x D elements starting at `base` (row stride in elements) -> fp32, times `factor`.
void load_rows(const char *base, int64_t stride_s, int64_t first, int64_t rows, int64_t d,
               ElementType t, float factor, float *dst) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row = (first + r) * stride_s;
    for (int64_t j = 0; j < d; ++j) dst[r * d + j] = load_element(base, row + j, t) * factor;
  }
}

void run_task(const AttentionPlan &plan, const QueryBlockTask &task, const Scratch &s) {
  const AttentionProblem &p = *plan.problem;
  const ElementType t = p.dtype;
  const int64_t d = p.head_dim;
  const int64_t rows = task.valid_end - task.row_begin;
  const int64_t block_kv = p.block_kv;
  if (rows <= 0) {
    write_zero_rows(plan, task, task.row_begin, task.row_end);
    return;
  }
  load_rows(task.q, task.q_stride_s, task.row_begin, rows, d, t, p.scale, s.q_tile);
  for (int64_t r = 0; r < rows; ++r) s.rows[r] = OnlineSoftmaxRow::start();
  std::memset(s.acc, 0, sizeof(float) * rows * d);

  SabiRowCursor cursor = task.blocks(plan);
  int64_t kb;
  while (cursor.next(&kb)) {
    const int64_t c0 = plan.kv_axis.begin(kb);
    const int64_t c1 = plan.kv_axis.end(kb) < task.seq.kv_len ? plan.kv_axis.end(kb) : task.seq.kv_len;
    const TileClass tile = task.mask.classify(task.row_begin, task.valid_end, c0, c1);
    if (tile == kTileAllMasked) continue;
    const int64_t cols = c1 - c0;
    load_rows(task.k, task.k_stride_s, c0, cols, d, t, 1.0f, s.k_tile);
    load_rows(task.v, task.v_stride_s, c0, cols, d, t, 1.0f, s.v_tile);

    for (int64_t r = 0; r < rows; ++r) {
      float *score = s.scores + r * block_kv;
      const float *q = s.q_tile + r * d;
      for (int64_t c = 0; c < cols; ++c) {
        const float *k = s.k_tile + c * d;
        float dot = 0.0f;
        for (int64_t j = 0; j < d; ++j) dot += q[j] * k[j];
        score[c] = dot;
      }
      if (tile == kTileMixed) {
        for (int64_t c = 0; c < cols; ++c) {
          if (!task.mask.allowed(task.row_begin + r, c0 + c)) score[c] = -INFINITY;
        }
      }
      float tile_max = -INFINITY;
      for (int64_t c = 0; c < cols; ++c) tile_max = score[c] > tile_max ? score[c] : tile_max;

      OnlineSoftmaxRow &row = s.rows[r];
      float *acc = s.acc + r * d;
      rescale_row(acc, d, row.update_max(tile_max, ExpF{}));
      const float sub = row.subtrahend();
      float tile_sum = 0.0f;
      for (int64_t c = 0; c < cols; ++c) {
        const float weight = std::exp(score[c] - sub);
        tile_sum += weight;
        const float rounded = round_to(t, weight);
        if (rounded == 0.0f) continue;
        const float *v = s.v_tile + c * d;
        for (int64_t j = 0; j < d; ++j) acc[j] += rounded * v[j];
      }
      row.accumulate(tile_sum);
    }
  }

  for (int64_t r = 0; r < rows; ++r) {
    float inv_sum, lse;
    s.rows[r].finalize(LogF{}, &inv_sum, &lse);
    const int64_t out_row = (task.row_begin + r) * task.out_stride_s;
    for (int64_t j = 0; j < d; ++j) store_element(task.out, out_row + j, t, s.acc[r * d + j] * inv_sum);
    if (task.lse != nullptr) task.lse[task.row_begin + r] = lse;
  }
  write_zero_rows(plan, task, task.valid_end, task.row_end);
}

size_t scratch_bytes(const AttentionProblem &p) { return Scratch::bytes(p); }

void run_tasks(const AttentionPlan &plan, TaskSource &tasks, void *memory) {
  const Scratch s = Scratch::carve(*plan.problem, memory);
  for (int64_t begin, end; tasks.next(&begin, &end);)
    for (int64_t t = begin; t < end; ++t) run_task(plan, QueryBlockTask::make(plan, t), s);
}

}  // namespace

const PathKernel &portable_kernel() {
  static const PathKernel kernel{scratch_bytes, run_tasks};
  return kernel;
}

}  // namespace blitz::cpu

// antidiagonal_group_mass (antidiagonal.h): staging, tasks and the per-column finish; the heavy
// loops are cell_kernels.h's.
#include "select/antidiagonal.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/platform.h"
#include "kernel/element_convert.h"
#include "kernel/thread_pool.h"
#include "select/cell_kernels.h"

namespace blitz::cpu::select {
namespace {

constexpr int64_t kQueryChunkGroups = 128;  // row groups per task: its packed queries stay in L2
constexpr int64_t kKeyChunkCells = 256;     // key cells per GEMM: reused by every row group of the task

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Token t (from the batch's first token) of head h of view v, into dst as float or as the raw bf16.
void copy_token(const SelectProblem &p, const TensorView &v, int64_t b, int64_t start, int64_t h, int64_t t,
                bool as_bf16, void *dst) {
  const int64_t element = b * v.stride_b + (start + t) * v.stride_s + h * v.stride_h, d = p.head_dim;
  if (as_bf16) {  // only for bf16 inputs
    std::memcpy(dst, static_cast<const uint16_t *>(v.data) + element, sizeof(uint16_t) * d);
    return;
  }
  float *out = static_cast<float *>(dst);
  switch (p.dtype) {
    case ElementType::kFloat32: std::memcpy(out, static_cast<const float *>(v.data) + element, sizeof(float) * d); return;
    case ElementType::kFloat16: {
      const uint16_t *src = static_cast<const uint16_t *>(v.data) + element;
      for (int64_t x = 0; x < d; ++x) out[x] = fp16_to_float(src[x]);
      return;
    }
    case ElementType::kBFloat16: {
      const uint16_t *src = static_cast<const uint16_t *>(v.data) + element;
      for (int64_t x = 0; x < d; ++x) out[x] = bf16_to_float(src[x]);
      return;
    }
  }
}

// Element x of a staged row as float.
float element_at(const void *row, bool bf16, int64_t x) {
  return bf16 ? bf16_to_float(static_cast<const uint16_t *>(row)[x]) : static_cast<const float *>(row)[x];
}

// The key cells of one (batch, key head): cell t's slot r is key t0 + r of its block.
struct CellKeys {
  int64_t valid_blocks = 0, cells = 0;
  std::vector<int64_t> block_begin;  // cells of block j: [block_begin[j], block_begin[j + 1])
  std::vector<int64_t> count;        // per cell: valid keys n_t
  std::vector<int64_t> first;        // per cell: its first key's position in the batch
  std::vector<float> bias;           // per cell: ln n_t
  std::vector<float> sums;           // per cell with n_t < stride: the sum of its keys, D floats (else unused)
  std::vector<char> rows;            // (cells + kRowPad) x kp elements (bf16 or float), zero past the keys
};

void stage_keys(const SelectProblem &p, int64_t b, int64_t g, bool bf16, int64_t kp, CellKeys &keys) {
  const int64_t d = p.head_dim, s = p.stride, len = p.len_kv[b], elem = bf16 ? 2 : 4;
  keys.valid_blocks = ceil_div(len, p.block_kv);
  keys.block_begin.assign(1, 0);
  keys.count.clear();
  keys.first.clear();
  for (int64_t j = 0; j < keys.valid_blocks; ++j) {
    const int64_t n = std::min(p.block_kv, len - j * p.block_kv);
    for (int64_t t0 = 0; t0 < n; t0 += s) {
      keys.count.push_back(std::min(s, n - t0));
      keys.first.push_back(j * p.block_kv + t0);
    }
    keys.block_begin.push_back(static_cast<int64_t>(keys.count.size()));
  }
  keys.cells = static_cast<int64_t>(keys.count.size());
  keys.bias.resize(keys.count.size());
  for (int64_t t = 0; t < keys.cells; ++t) keys.bias[t] = static_cast<float>(std::log(static_cast<double>(keys.count[t])));
  keys.rows.assign(static_cast<size_t>((keys.cells + kRowPad) * kp * elem), 0);
  keys.sums.assign(static_cast<size_t>(keys.cells * d), 0.0f);
  int64_t t = 0;
  for (int64_t j = 0; j < keys.valid_blocks; ++j) {
    const int64_t n = std::min(p.block_kv, len - j * p.block_kv);
    for (int64_t t0 = 0; t0 < n; t0 += s, ++t) {
      char *row = keys.rows.data() + t * kp * elem;
      for (int64_t r = 0; r < keys.count[t]; ++r) {
        copy_token(p, p.k, b, p.kv_start[b], g, j * p.block_kv + t0 + r, bf16, row + r * d * elem);
      }
      if (keys.count[t] < s) {  // only partial cells can need the fallback of a missed antidiagonal
        for (int64_t x = 0; x < keys.count[t] * d; ++x) keys.sums[t * d + x % d] += element_at(row, bf16, x);
      }
    }
  }
}

struct Task {
  int64_t m, i0, i1;  // query head g * group + m, query blocks [i0, i1)
};

struct Scratch {
  std::vector<char> row;       // one row group, kp elements
  std::vector<char> panel;     // the task's row groups packed (cell_kernels.h's query layout)
  std::vector<int64_t> n_u;    // per column: valid rows of its group (stride for padding)
  std::vector<int64_t> block;  // per column: its query block (-1 for padding)
  std::vector<int64_t> row0;   // per column: its group's first row in the batch
  std::vector<float> sums;     // per column with n_u < stride: its rows' sum, D floats
  std::vector<float> coef;     // stride x cols: scale / pairs(n_t, n_u), or 1 where the fallback applies
  std::vector<float> c;        // the GEMM's output, rows x cols
  std::vector<float> max2, sum;  // per key block and column
};

struct GroupRun {
  const SelectProblem *p;
  const CellKeys *keys;
  const CellKernels *kernels;
  int64_t b, g, blocks_q, kp;
  double *mass;
  std::vector<Task> tasks;
  std::vector<Scratch> *scratch;
  std::atomic<int64_t> next{0};
};

// Packs the task's row groups into s.panel: column q, slot r = row u stride + stride-1-r.
void pack_queries(const GroupRun &run, const Task &task, Scratch &s, int64_t cols) {
  const SelectProblem &p = *run.p;
  const bool bf16 = run.kernels->bf16;
  const int64_t d = p.head_dim, st = p.stride, kp = run.kp, elem = bf16 ? 2 : 4, h = run.g * (p.heads_q / p.heads_kv) + task.m;
  s.panel.assign(static_cast<size_t>(cols * kp * elem), 0);
  s.row.resize(static_cast<size_t>(kp * elem));
  s.n_u.assign(static_cast<size_t>(cols), st);
  s.block.assign(static_cast<size_t>(cols), -1);
  s.row0.assign(static_cast<size_t>(cols), 0);
  s.sums.assign(static_cast<size_t>(cols * d), 0.0f);
  int64_t q = 0;
  for (int64_t i = task.i0; i < task.i1; ++i) {
    const int64_t rows = std::min(p.block_q, p.len_q[run.b] - i * p.block_q);
    for (int64_t u = 0; u * st < rows; ++u, ++q) {
      const int64_t n_u = std::min(st, rows - u * st);
      s.n_u[q] = n_u;
      s.block[q] = i;
      s.row0[q] = i * p.block_q + u * st;
      std::fill(s.row.begin(), s.row.end(), 0);
      for (int64_t r = st - n_u; r < st; ++r) {
        copy_token(p, p.q, run.b, p.q_start[run.b], h, i * p.block_q + u * st + st - 1 - r, bf16,
                   s.row.data() + r * d * elem);
      }
      if (n_u < st) {
        for (int64_t x = (st - n_u) * d; x < st * d; ++x) s.sums[q * d + x % d] += element_at(s.row.data(), bf16, x);
      }
      const int64_t group = q / kGroupCols, lane = q % kGroupCols;
      if (bf16) {  // pairs along the reduction: [kp / 2][16] 32-bit words per group
        uint32_t *dst = reinterpret_cast<uint32_t *>(s.panel.data()) + group * kp * kGroupCols / 2 + lane;
        const uint32_t *src = reinterpret_cast<const uint32_t *>(s.row.data());
        for (int64_t x = 0; x < kp / 2; ++x) dst[x * kGroupCols] = src[x];
      } else {
        float *dst = reinterpret_cast<float *>(s.panel.data()) + group * kp * kGroupCols + lane;
        const float *src = reinterpret_cast<const float *>(s.row.data());
        for (int64_t x = 0; x < kp; ++x) dst[x * kGroupCols] = src[x];
      }
    }
  }
}

void run_task(GroupRun &run, const Task &task, Scratch &s) {
  const SelectProblem &p = *run.p;
  const CellKeys &keys = *run.keys;
  const CellKernels &kern = *run.kernels;
  const int64_t st = p.stride, d = p.head_dim, elem = kern.bf16 ? 2 : 4, nb = keys.valid_blocks;
  int64_t groups_real = 0;
  for (int64_t i = task.i0; i < task.i1; ++i) groups_real += ceil_div(std::min(p.block_q, p.len_q[run.b] - i * p.block_q), st);
  const int64_t cols = round_up(groups_real, kGroupCols);
  pack_queries(run, task, s, cols);
  const Visibility vis = Visibility::of(p, run.b);

  // coef[(n_t - 1) * cols + q]: the mean over pairs(n_t, n_u) = n_t + n_u - stride valid pairs,
  // times the scale; where no pair lies on the antidiagonal the GEMM output is replaced below.
  s.coef.resize(static_cast<size_t>(st * cols));
  for (int64_t n_t = 1; n_t <= st; ++n_t) {
    for (int64_t q = 0; q < cols; ++q) {
      const int64_t pairs = n_t + s.n_u[q] - st;
      s.coef[(n_t - 1) * cols + q] = pairs > 0 ? static_cast<float>(p.scale / static_cast<double>(pairs)) : 1.0f;
    }
  }
  s.max2.resize(static_cast<size_t>(nb * cols));
  s.sum.resize(static_cast<size_t>(nb * cols));
  for (int64_t j0 = 0; j0 < nb;) {
    int64_t j1 = j0 + 1;
    while (j1 < nb && keys.block_begin[j1 + 1] - keys.block_begin[j0] <= kKeyChunkCells) ++j1;
    const int64_t t0 = keys.block_begin[j0], n = keys.block_begin[j1] - t0, rows = round_up(n, kRowPad);
    if (!vis.all) {  // a chunk no row group of the task sees (causal: above the diagonal) is skipped
      bool seen = false;
      for (int64_t q = 0; q < groups_real && !seen; ++q) {
        seen = vis.any(s.row0[q], s.row0[q] + s.n_u[q], keys.first[t0], keys.first[t0 + n - 1] + keys.count[t0 + n - 1]);
      }
      if (!seen) {
        std::fill(&s.max2[j0 * cols], &s.max2[j1 * cols], -INFINITY);
        std::fill(&s.sum[j0 * cols], &s.sum[j1 * cols], 0.0f);
        j0 = j1;
        continue;
      }
    }
    s.c.resize(static_cast<size_t>(rows * cols));
    kern.gemm(keys.rows.data() + t0 * run.kp * elem, rows, run.kp, s.panel.data(), cols / kGroupCols, s.c.data());
    for (int64_t q = 0; q < cols; ++q) {  // the fallback: both groups partial and no valid antidiagonal pair
      if (s.n_u[q] == st) continue;
      for (int64_t t = t0; t < t0 + n; ++t) {
        if (keys.count[t] + s.n_u[q] > st) continue;
        double dot = 0.0;
        for (int64_t x = 0; x < d; ++x) dot += static_cast<double>(s.sums[q * d + x]) * keys.sums[t * d + x];
        s.c[(t - t0) * cols + q] = static_cast<float>(p.scale * dot / static_cast<double>(s.n_u[q] * keys.count[t]));
      }
    }
    if (!vis.all) {  // cells with no visible pair leave the row group's softmax
      for (int64_t q = 0; q < groups_real; ++q) {
        for (int64_t t = t0; t < t0 + n; ++t) {
          if (!vis.any(s.row0[q], s.row0[q] + s.n_u[q], keys.first[t], keys.first[t] + keys.count[t])) {
            s.c[(t - t0) * cols + q] = -INFINITY;
          }
        }
      }
    }
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t at = keys.block_begin[j];
      kern.block_softmax(s.c.data() + (at - t0) * cols, keys.block_begin[j + 1] - at, cols, &keys.count[at],
                         &keys.bias[at], s.coef.data(), &s.max2[j * cols], &s.sum[j * cols]);
    }
    j0 = j1;
  }

  // Each row group's softmax over all key cells, from the per-block partials, summed per block.
  for (int64_t q = 0; q < groups_real; ++q) {
    const int64_t i = s.block[q], rows = std::min(p.block_q, p.len_q[run.b] - i * p.block_q);
    double top = -INFINITY, total = 0.0;
    for (int64_t j = 0; j < nb; ++j) top = std::max(top, static_cast<double>(s.max2[j * cols + q]));
    if (top == -INFINITY) continue;  // the group sees no key: it adds nothing
    for (int64_t j = 0; j < nb; ++j) total += s.sum[j * cols + q] * std::exp2(s.max2[j * cols + q] - top);
    const double w = static_cast<double>(s.n_u[q]) / static_cast<double>(rows) / total;
    double *out = run.mass + (task.m * run.blocks_q + i) * nb;
    for (int64_t j = 0; j < nb; ++j) out[j] += w * s.sum[j * cols + q] * std::exp2(s.max2[j * cols + q] - top);
  }
}

void worker(void *context, int w) {
  GroupRun &run = *static_cast<GroupRun *>(context);
  Scratch &s = (*run.scratch)[w];
  const int64_t n = static_cast<int64_t>(run.tasks.size());
  cell_kernels_begin(*run.kernels);
  for (int64_t t = run.next.fetch_add(1); t < n; t = run.next.fetch_add(1)) run_task(run, run.tasks[t], s);
  cell_kernels_end(*run.kernels);
}

}  // namespace

void antidiagonal_group_mass(const SelectProblem &p, int64_t b, int64_t g, int workers, KernelPath path,
                             double *mass) {
  const CellKernels &kernels = cell_kernels_for(path, p.dtype == ElementType::kBFloat16);
  const int64_t kp = round_up(p.stride * p.head_dim, kKPad), group = p.heads_q / p.heads_kv;
  CellKeys keys;
  stage_keys(p, b, g, kernels.bf16, kp, keys);
  GroupRun run;
  run.p = &p;
  run.keys = &keys;
  run.kernels = &kernels;
  run.b = b;
  run.g = g;
  run.blocks_q = ceil_div(p.len_q[b], p.block_q);
  run.kp = kp;
  run.mass = mass;
  std::fill(mass, mass + group * run.blocks_q * keys.valid_blocks, 0.0);
  for (int64_t m = 0; m < group; ++m) {
    for (int64_t i0 = 0; i0 < run.blocks_q;) {
      int64_t i1 = i0, groups = 0;
      while (i1 < run.blocks_q && (i1 == i0 || groups + ceil_div(p.block_q, p.stride) <= kQueryChunkGroups)) {
        groups += ceil_div(std::min(p.block_q, p.len_q[b] - i1 * p.block_q), p.stride);
        ++i1;
      }
      run.tasks.push_back({m, i0, i1});
      i0 = i1;
    }
  }
  std::vector<Scratch> scratch(static_cast<size_t>(std::max(1, workers)));
  run.scratch = &scratch;
  parallel_run(static_cast<int>(std::min<int64_t>(std::max(1, workers), static_cast<int64_t>(run.tasks.size()))),
               worker, &run);
}

}  // namespace blitz::cpu::select

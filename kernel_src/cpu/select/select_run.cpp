// run_select: for each (batch, key head), every query head's block masses are estimated first
// (mean_pool: the key summary built once, then the query blocks shared out to the workers from an
// atomic counter, since partial and refined blocks cost different amounts; antidiagonal: all at
// once, antidiagonal.h), then each row's blocks are chosen (block_choice.h; with
// share_kv_groups, once per group on the mean of its heads' masses) among the blocks the
// attention's sparse_mode leaves visible to it.
#include <algorithm>
#include <atomic>
#include <vector>

#include "common/platform.h"
#include "kernel/thread_pool.h"
#include "select/antidiagonal.h"
#include "select/block_choice.h"
#include "select/block_scores.h"
#include "select/select_problem.h"

namespace blitz::cpu::select {
namespace {

struct PoolRun {
  const SelectProblem *p = nullptr;
  const KeySummary *keys = nullptr;
  int64_t b = 0, g = 0, blocks_q = 0;
  double *mass = nullptr;  // [group][blocks_q][valid_blocks]
  std::atomic<int64_t> next{0};
  std::vector<QueryScratch> *scratch = nullptr;
};

void pool_worker(void *context, int w) {
  PoolRun &run = *static_cast<PoolRun *>(context);
  QueryScratch &s = (*run.scratch)[w];
  const SelectProblem &p = *run.p;
  const int64_t group = p.heads_q / p.heads_kv, cols = run.keys->valid_blocks;
  for (int64_t i = run.next.fetch_add(1); i < run.blocks_q; i = run.next.fetch_add(1)) {
    for (int64_t m = 0; m < group; ++m) {
      query_block_mass(p, *run.keys, run.b, run.g * group + m, i, s, run.mass + (m * run.blocks_q + i) * cols);
    }
  }
}

uint16_t *sabi_row(const SelectProblem &p, int64_t b, int64_t h, int64_t i) {
  return p.sabi + ((b * p.heads_q + h) * p.rows + i) * p.cols;
}

void choose_group(const SelectProblem &p, int64_t b, int64_t g, int64_t blocks_q, int64_t cols, const double *mass,
                  ChoiceScratch &choice, std::vector<double> &group_mass, std::vector<uint8_t> &visible_row) {
  const int64_t group = p.heads_q / p.heads_kv;
  const Visibility vis = Visibility::of(p, b);
  for (int64_t i = 0; i < blocks_q; ++i) {
    const int64_t first_token = i * p.block_q, rows = std::min(p.block_q, p.len_q[b] - first_token);
    const uint8_t *visible = nullptr;
    if (!vis.all) {
      visible_row.resize(static_cast<size_t>(cols));
      for (int64_t j = 0; j < cols; ++j) {
        visible_row[j] = vis.any(first_token, first_token + rows, j * p.block_kv, std::min((j + 1) * p.block_kv, p.len_kv[b]));
      }
      visible = visible_row.data();
    }
    if (p.share_kv_groups) {
      group_mass.assign(static_cast<size_t>(cols), 0.0);
      for (int64_t m = 0; m < group; ++m) {
        for (int64_t j = 0; j < cols; ++j) group_mass[j] += mass[(m * blocks_q + i) * cols + j] / static_cast<double>(group);
      }
      uint16_t *first = sabi_row(p, b, g * group, i);
      choose_blocks(group_mass.data(), cols, first_token, rows, visible, p, choice, first);
      for (int64_t m = 1; m < group; ++m) std::copy(first, first + p.cols, sabi_row(p, b, g * group + m, i));
      continue;
    }
    for (int64_t m = 0; m < group; ++m) {
      choose_blocks(&mass[(m * blocks_q + i) * cols], cols, first_token, rows, visible, p, choice,
                    sabi_row(p, b, g * group + m, i));
    }
  }
}

}  // namespace

void run_select(const SelectProblem &p, int num_threads, KernelPath path) {
  std::fill(p.sabi, p.sabi + p.batch * p.heads_q * p.rows * p.cols, kSabiNoBlock);
  const int workers = std::max(1, num_threads);
  const int64_t group = p.heads_q / p.heads_kv;
  std::vector<QueryScratch> scratch(static_cast<size_t>(workers));
  std::vector<double> mass, group_mass;
  std::vector<uint8_t> visible_row;
  ChoiceScratch choice;
  KeySummary keys;
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t blocks_q = ceil_div(p.len_q[b], p.block_q), cols = ceil_div(p.len_kv[b], p.block_kv);
    if (blocks_q == 0 || cols == 0) continue;  // rows stay empty: nothing to attend
    mass.resize(static_cast<size_t>(group * blocks_q * cols));
    for (int64_t g = 0; g < p.heads_kv; ++g) {
      if (p.method == Method::kAntidiagonal) {
        antidiagonal_group_mass(p, b, g, workers, path, mass.data());
      } else {
        summarize_keys(p, b, g, keys);
        PoolRun run;
        run.p = &p;
        run.keys = &keys;
        run.b = b;
        run.g = g;
        run.blocks_q = blocks_q;
        run.mass = mass.data();
        run.scratch = &scratch;
        parallel_run(static_cast<int>(std::min<int64_t>(workers, blocks_q)), pool_worker, &run);
      }
      choose_group(p, b, g, blocks_q, cols, mass.data(), choice, group_mass, visible_row);
    }
  }
}

}  // namespace blitz::cpu::select

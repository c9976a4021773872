// run_select: for each (batch, key head), the key summary is built once (block_scores.h), then
// the query blocks are shared out to the workers: a task is one query block of every query head
// of the group (so a shared group pattern is one task), claimed from an atomic counter because
// partial blocks and refined blocks cost different amounts.
#include <algorithm>
#include <atomic>
#include <vector>

#include "common/platform.h"
#include "kernel/thread_pool.h"
#include "select/block_choice.h"
#include "select/block_scores.h"
#include "select/select_problem.h"

namespace blitz::cpu::select {
namespace {

struct WorkerScratch {
  QueryScratch query;
  ChoiceScratch choice;
  std::vector<double> mass;        // per query head of the group: valid_blocks each
  std::vector<double> group_mass;  // share_kv_groups: their mean
};

struct GroupRun {
  const SelectProblem *p = nullptr;
  const KeySummary *keys = nullptr;
  int64_t b = 0, g = 0, blocks_q = 0;
  CellDotsFn cell_dots = nullptr;
  std::atomic<int64_t> next{0};
  std::vector<WorkerScratch> *scratch = nullptr;
};

uint16_t *sabi_row(const SelectProblem &p, int64_t b, int64_t h, int64_t i) {
  return p.sabi + ((b * p.heads_q + h) * p.rows + i) * p.cols;
}

void run_block(GroupRun &run, WorkerScratch &s, int64_t i) {
  const SelectProblem &p = *run.p;
  const KeySummary &keys = *run.keys;
  const int64_t group = p.heads_q / p.heads_kv, cols = keys.valid_blocks;
  const int64_t first_token = i * p.block_q, rows = std::min(p.block_q, p.len_q[run.b] - first_token);
  s.mass.resize(static_cast<size_t>(group * cols));
  for (int64_t m = 0; m < group; ++m) {
    query_block_mass(p, keys, run.b, run.g * group + m, i, run.cell_dots, s.query, &s.mass[m * cols]);
  }
  if (p.share_kv_groups) {
    s.group_mass.assign(static_cast<size_t>(cols), 0.0);
    for (int64_t m = 0; m < group; ++m) {
      for (int64_t j = 0; j < cols; ++j) s.group_mass[j] += s.mass[m * cols + j] / static_cast<double>(group);
    }
    uint16_t *first = sabi_row(p, run.b, run.g * group, i);
    choose_blocks(s.group_mass.data(), cols, first_token, rows, p, s.choice, first);
    for (int64_t m = 1; m < group; ++m) std::copy(first, first + p.cols, sabi_row(p, run.b, run.g * group + m, i));
    return;
  }
  for (int64_t m = 0; m < group; ++m) {
    choose_blocks(&s.mass[m * cols], cols, first_token, rows, p, s.choice, sabi_row(p, run.b, run.g * group + m, i));
  }
}

void worker(void *context, int w) {
  GroupRun &run = *static_cast<GroupRun *>(context);
  WorkerScratch &s = (*run.scratch)[w];
  for (int64_t i = run.next.fetch_add(1); i < run.blocks_q; i = run.next.fetch_add(1)) run_block(run, s, i);
}

}  // namespace

void run_select(const SelectProblem &p, int num_threads, KernelPath path) {
  std::fill(p.sabi, p.sabi + p.batch * p.heads_q * p.rows * p.cols, kSabiNoBlock);
  const int workers = std::max(1, num_threads);
  std::vector<WorkerScratch> scratch(static_cast<size_t>(workers));
  KeySummary keys;
  const CellDotsFn cell_dots = cell_dots_for(path);
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t blocks_q = ceil_div(p.len_q[b], p.block_q);
    if (blocks_q == 0 || p.len_kv[b] == 0) continue;  // rows stay empty: nothing to attend
    for (int64_t g = 0; g < p.heads_kv; ++g) {
      summarize_keys(p, b, g, keys);
      GroupRun run;
      run.p = &p;
      run.keys = &keys;
      run.b = b;
      run.g = g;
      run.blocks_q = blocks_q;
      run.scratch = &scratch;
      run.cell_dots = cell_dots;
      parallel_run(static_cast<int>(std::min<int64_t>(workers, blocks_q)), worker, &run);
    }
  }
}

}  // namespace blitz::cpu::select

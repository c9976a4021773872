// run_attention and its helpers: workspace layout, task costs, the path choice, the parallel
// loop. The tile math lives in the path files (portable_path.cpp, tiles_*.cpp).
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "kernel/attention_plan.h"
#include "kernel/attention_problem.h"
#include "kernel/cpu_features.h"
#include "kernel/thread_pool.h"

namespace blitz::cpu {
namespace {

// Each worker's range of tasks (split_point: equal cost, contiguous, so a range walks the query
// blocks of one head and its K/V cache is reused) is cut into kGrainsPerRange grains of equal
// cost. A worker runs its own grains in order, then takes the grains other workers have not
// started. The machine is shared with other processes: a worker the OS deschedules for a few
// milliseconds used to hold up the whole call at the end (at sparsity 0.875 a call is ~17 ms),
// now the others finish its range. Unloaded, each worker runs its own range as before.
constexpr int64_t kGrainsPerRange = 8;

// The next grain of one worker's range not yet taken (by its owner or another worker).
struct alignas(64) GrainCounter {  // own cache line: the owners take grains concurrently
  std::atomic<int64_t> next;
};

// Workspace layout (labelled sum; see workspace_size):
//   alignment slack                     kScratchAlign (the caller's pointer may be unaligned)
//   task_prefix int64 [n_tasks + 1]     cost prefix sums for the split over threads
//   grain counters [num_threads]        GrainCounter, one per worker
//   per-thread scratch x num_threads    the largest any path this CPU runs needs for this
//                                       problem, so the settings may switch paths between the
//                                       two calls
const PathKernel &kernel_for(KernelPath path, const AttentionProblem &p);

size_t per_thread_bytes(const AttentionProblem &p) {
  // Only paths this CPU supports: each path's scratch_bytes is compiled for its ISA, and the
  // compiler may use that ISA in it (AVX-512's vpmaxsq here, SIGILL on a Zen 3).
  size_t bytes = 0;
  for (KernelPath path : {KernelPath::kPortable, KernelPath::kAvx2, KernelPath::kAvx512,
                          KernelPath::kAmx, KernelPath::kNeon, KernelPath::kNeonBf16}) {
    if (path_supported(path)) bytes = std::max(bytes, kernel_for(path, p).scratch_bytes(p));
  }
  return align_up(bytes);
}

size_t task_count(const AttentionProblem &p) {
  const int64_t q_blocks = p.block_q > 0 ? (p.seq_q + p.block_q - 1) / p.block_q : 0;
  return (size_t)(p.batch * p.heads_q * q_blocks);
}

struct RunContext {
  const AttentionPlan *plan;
  const PathKernel *kernel;
  GrainCounter *grains;  // [workers]
  char *scratch;
  size_t scratch_stride;
  int workers;
};

// Worker `worker`'s grains: its own range first, then every other range from the next worker on.
class GrainSource final : public TaskSource {
 public:
  GrainSource(const RunContext &ctx, int worker) : ctx_(ctx), worker_(worker) {}

  bool next(int64_t *begin, int64_t *end) override {
    while (visited_ < ctx_.workers) {
      const int64_t owner = (worker_ + visited_) % ctx_.workers;
      const int64_t g = ctx_.grains[owner].next.fetch_add(1, std::memory_order_relaxed);  // each grain once
      if (g >= kGrainsPerRange) {  // every grain of this range is taken
        ++visited_;
        continue;
      }
      // Grain boundaries are the split points of workers * kGrainsPerRange parts, so every
      // kGrainsPerRange-th one is a worker's own split point.
      const int64_t parts = ctx_.workers * kGrainsPerRange, part = owner * kGrainsPerRange + g;
      *begin = split_point(ctx_.plan->task_prefix, ctx_.plan->n_tasks, parts, part);
      *end = split_point(ctx_.plan->task_prefix, ctx_.plan->n_tasks, parts, part + 1);
      if (*begin < *end) return true;  // else an empty grain (a task costs more than a grain): the next
    }
    return false;
  }

 private:
  const RunContext &ctx_;
  const int worker_;
  int visited_ = 0;  // ranges done: 0 = still in its own
};

void worker_main(void *context, int worker) {
  const RunContext &ctx = *static_cast<const RunContext *>(context);
  GrainSource grains(ctx, worker);
  ctx.kernel->run_tasks(*ctx.plan, grains, ctx.scratch + ctx.scratch_stride * worker);
}

// Fills prefix[0..n_tasks] with the tasks' cost prefix sums (work_split.h).
void compute_task_prefix(const AttentionPlan &plan, int64_t *prefix) {
  const AttentionProblem &p = *plan.problem;
  prefix[0] = 0;
  int64_t t = 0;
  for (int64_t b = 0; b < p.batch; ++b) {
    const SequenceGeometry seq = plan.sequence(b);
    // A task's cost depends on the mask rule, never on the explicit mask's bytes (its tiles
    // all count as mixed), so head 0's view stands for every head here.
    const TokenMask mask = plan.token_mask(b, /*h=*/0, seq);
    for (int64_t h = 0; h < p.heads_q; ++h) {
      for (int64_t i = 0; i < plan.q_axis.count; ++i, ++t) {
        const int64_t tiles = task_tiles(plan.sabi, seq, mask, plan.q_axis, plan.kv_axis, b, h, i);
        prefix[t + 1] = prefix[t] + task_cost(tiles);
      }
    }
  }
}

// The kernel for `path` and this problem: AMX covers bf16 (other dtypes run AVX-512 there),
// AVX-512, AVX2 and NEON cover every dtype they were built for (neon_bf16: bf16, the others as
// neon), everything else runs portable.
const PathKernel &kernel_for(KernelPath path, const AttentionProblem &p) {
  if (path == KernelPath::kAmx) {
    if (const PathKernel *k = amx_kernel(p)) return *k;
  }
  if (path == KernelPath::kAvx512 || path == KernelPath::kAmx) {
    if (const PathKernel *k = avx512_kernel(p.dtype)) return *k;
  }
  if (path == KernelPath::kAvx2) {
    if (const PathKernel *k = avx2_kernel(p.dtype)) return *k;
  }
  if (path == KernelPath::kNeonBf16) {
    if (const PathKernel *k = neon_bf16_kernel(p.dtype)) return *k;
  }
  if (path == KernelPath::kNeon || path == KernelPath::kNeonBf16) {
    if (const PathKernel *k = neon_kernel(p.dtype)) return *k;
  }
  return portable_kernel();
}

}  // namespace

void write_zero_rows(const AttentionPlan &plan, const QueryBlockTask &task, int64_t r0, int64_t r1) {
  const AttentionProblem &p = *plan.problem;
  const size_t row_bytes = (size_t)p.head_dim * element_bytes(p.dtype);
  const int64_t es = (int64_t)element_bytes(p.dtype);
  for (int64_t r = r0; r < r1; ++r) {
    std::memset(task.out + r * task.out_stride_s * es, 0, row_bytes);  // 0 bits = +0 in every dtype
    if (task.lse != nullptr) task.lse[r] = -INFINITY;
  }
}

size_t workspace_size(const AttentionProblem &p, int num_threads) {
  // Shapes run_attention rejects (or has nothing to do for) need no scratch; this also keeps
  // the sums below from wrapping on negative sizes.
  if (p.block_q <= 0 || p.block_kv <= 0 || p.head_dim < 0 || p.batch <= 0 || p.heads_q <= 0 ||
      p.seq_q <= 0 || p.seq_kv < 0) {
    return kScratchAlign;
  }
  const size_t threads = (size_t)std::max(num_threads, 1);
  return kScratchAlign                                   // alignment slack
         + align_up((task_count(p) + 1) * sizeof(int64_t))  // task_prefix
         + align_up(threads * sizeof(GrainCounter))        // grain counters
         + threads * per_thread_bytes(p);                // per-thread scratch
}

int run_attention(const AttentionProblem &p, void *workspace, size_t workspace_bytes,
                  int num_threads, KernelPath requested, const char **error) {
  static const char *const kNoError = "";
  if (error != nullptr) *error = kNoError;
  auto fail = [&](const char *message) {
    if (error != nullptr) *error = message;
    return 1;
  };
  num_threads = std::max(num_threads, 1);
  const KernelPath path = resolve_path(requested);
  if (!path_supported(path)) return fail(path_requirement(path));
  if (p.block_q <= 0 || p.block_kv <= 0 || p.head_dim < 0) return fail("block sizes must be positive");
  if (p.heads_kv <= 0 || p.heads_q % p.heads_kv != 0) return fail("heads_q must be a multiple of heads_kv");
  if (p.batch <= 0 || p.heads_q <= 0 || p.seq_q <= 0) return 0;  // nothing to write
  if (workspace_bytes < workspace_size(p, num_threads) || (workspace == nullptr)) {
    return fail("workspace is smaller than workspace_size() asked for");
  }

  AttentionPlan plan = AttentionPlan::make(p);
  char *base = reinterpret_cast<char *>(align_up(reinterpret_cast<size_t>(workspace)));
  int64_t *prefix = reinterpret_cast<int64_t *>(base);
  compute_task_prefix(plan, prefix);
  plan.task_prefix = prefix;

  RunContext ctx;
  ctx.plan = &plan;
  ctx.kernel = &kernel_for(path, p);
  ctx.workers = (int)std::min<int64_t>(num_threads, std::max<int64_t>(plan.n_tasks, 1));
  char *after_prefix = base + align_up((size_t)(plan.n_tasks + 1) * sizeof(int64_t));
  ctx.grains = reinterpret_cast<GrainCounter *>(after_prefix);
  for (int w = 0; w < ctx.workers; ++w) new (&ctx.grains[w]) GrainCounter{{0}};  // the workspace holds garbage
  ctx.scratch = after_prefix + align_up((size_t)num_threads * sizeof(GrainCounter));
  ctx.scratch_stride = per_thread_bytes(p);
  parallel_run(ctx.workers, worker_main, &ctx);
  return 0;
}

int default_num_threads() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

}  // namespace blitz::cpu

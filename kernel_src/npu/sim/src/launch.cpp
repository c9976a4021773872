// run_mix_launch: one thread per core of a KERNEL_TYPE_MIX_AIC_1_2 launch.
#include <memory>
#include <mutex>
#include <thread>

#include "blitz_sim/core.h"
#include "blitz_sim/launch.h"

namespace blitz_sim {

LaunchReport run_mix_launch(uint32_t block_dim, const std::function<void()> &entry, LaunchMode mode)
{
  LaunchReport report;
  report.counting_only = mode == LaunchMode::kCountingOnly;
  gm_reset_written();
  if (block_dim == 0) {
    report.ok = false;
    report.error = "run_mix_launch: block_dim 0";
    return report;
  }
  LaunchShared shared;
  for (uint32_t i = 0; i < block_dim; ++i) shared.groups.emplace_back(new CubeGroup);
  std::vector<std::unique_ptr<CoreContext>> cores;
  for (uint32_t i = 0; i < block_dim; ++i) {  // cube cores
    std::unique_ptr<CoreContext> c(new CoreContext);
    c->type = CoreType::AIC;
    c->block_idx = i;
    c->group = i;
    cores.push_back(std::move(c));
  }
  for (uint32_t i = 0; i < 2 * block_dim; ++i) {  // vector cores 2g, 2g + 1 pair with cube core g
    std::unique_ptr<CoreContext> c(new CoreContext);
    c->type = CoreType::AIV;
    c->block_idx = i;
    c->sub_idx = i % 2;
    c->group = i / 2;
    cores.push_back(std::move(c));
  }
  for (auto &c : cores) {
    c->block_num = block_dim;
    c->launch = &shared;
    c->cube = shared.groups[c->group].get();
    c->counting_only = report.counting_only;
  }

  std::mutex error_mu;
  auto run_core = [&](CoreContext *ctx) {
    set_current(ctx);
    std::string error;
    try {
      entry();
      finish_core(*ctx);
    } catch (const std::exception &e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
    if (!error.empty()) {
      const std::string prefix = "core " + ctx->name() + ": ";
      if (error.compare(0, prefix.size(), prefix) != 0) error = prefix + error;
      {
        std::lock_guard<std::mutex> lock(error_mu);
        if (report.ok) {
          report.ok = false;
          report.error = error;
        }
      }
      shared.abort_all();
    }
    if (ctx->type == CoreType::AIV) {
      std::lock_guard<std::mutex> lock(ctx->cube->mu);
      ++ctx->cube->vectors_done;
      ctx->cube->cv.notify_all();
    }
    set_current(nullptr);
  };
  std::vector<std::thread> threads;
  threads.reserve(cores.size());
  for (auto &c : cores) threads.emplace_back(run_core, c.get());
  for (auto &t : threads) t.join();

  for (uint32_t i = 0; i < block_dim; ++i) {
    CoreCounters cc = shared.groups[i]->counters.snapshot();
    cc += cores[i]->counters.snapshot();  // the cube thread's own (REGIST_MATMUL_OBJ serves; it copies nothing)
    report.cube.push_back(cc);
  }
  for (uint32_t i = 0; i < 2 * block_dim; ++i) report.vector.push_back(cores[block_dim + i]->counters.snapshot());
  return report;
}

}  // namespace blitz_sim

// REGIST_MATMUL_OBJ's client / server meeting and the cube counters.
#include "blitz_sim/matmul.h"

#include <exception>

namespace blitz_sim {

constexpr int kMaxMatmulObjects = 4;  // REGIST_MATMUL_OBJ.md

KfcClient::KfcClient(AscendC::TPipe *pipe, void *workspace) : core_(&current())
{
  const char *api = "REGIST_MATMUL_OBJ";
  if (pipe == nullptr) fail(api, "null TPipe");
  if (core_->buffers != 0) fail(api, "must be called before TPipe::InitBuffer (REGIST_MATMUL_OBJ.md)");
  if (core_->matmul_registered) fail(api, "called twice on this core");
  check_gm(api, workspace, kSystemWorkspaceBytes);
  core_->matmul_registered = true;
}

void KfcClient::add(MatmulState *obj, const AscendC::tiling::TCubeTiling *tiling)
{
  if (static_cast<int>(objs_.size()) >= kMaxMatmulObjects) fail("REGIST_MATMUL_OBJ", "more than 4 Matmul objects");
  if (tiling == nullptr) fail("REGIST_MATMUL_OBJ", "null tiling");
  obj->tiling = tiling;
  obj->client = this;
  obj->index = static_cast<int>(objs_.size());
  obj->registered = true;
  objs_.push_back(obj);
}

void KfcClient::serve()
{
  CubeGroup &g = *core_->cube;
  std::unique_lock<std::mutex> lock(g.mu);
  g.cv.wait(lock, [&] { return g.clients_quit >= 2 || g.vectors_done >= 2 || core_->launch->aborted.load(); });
  if (g.clients_quit < 2 && !core_->launch->aborted.load()) {
    lock.unlock();
    fail("REGIST_MATMUL_OBJ", "a vector core ended without its Matmul client quitting (the cube server would wait forever)");
  }
}

KfcClient::~KfcClient() noexcept(false)
{
  if (core_->type != CoreType::AIV) return;
  {
    CubeGroup &g = *core_->cube;
    std::lock_guard<std::mutex> lock(g.mu);
    ++g.clients_quit;
    g.cv.notify_all();
  }
  if (std::uncaught_exceptions() > 0) return;
  for (MatmulState *o : objs_) {
    if (o->pending.active) fail("REGIST_MATMUL_OBJ (client quit)", "the kernel ended with an async IterateAll never waited");
  }
}

void add_cube_counters(uint64_t flops, uint64_t l1_bytes, uint64_t out_bytes)
{
  AtomicCounters &c = current().cube->counters;
  c.cube_flops += flops;
  c.matmul_calls += 1;
  c.gm_to_l1_bytes += l1_bytes;
  c.l0c_to_gm_bytes += out_bytes;
}

}  // namespace blitz_sim

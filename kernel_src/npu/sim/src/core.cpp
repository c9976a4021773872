// The model's per-core state, GM registry, pipe-ordering check and event flags.
#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>

#include "blitz_sim/core.h"
#include "blitz_sim/sync.h"
#include "blitz_sim/tensor.h"

namespace blitz_sim {

namespace {

thread_local CoreContext *tls_core = nullptr;

struct GmRange {
  GmRange(uintptr_t b, uintptr_t e, std::string n) : begin(b), end(e), name(std::move(n)) {}
  uintptr_t begin, end;
  std::string name;
  std::atomic<bool> written{false};  // a counting-only launch wrote it (gm_produced)
};
// Mutated only between launches (register_gm / clear_gm), read by the core threads (a deque:
// its elements never move, so their atomics stay put).
std::deque<GmRange> g_gm;
uint8_t *g_sys_workspace = nullptr;

}  // namespace

CoreContext::CoreContext()
    : ub_undefined(kTotalUbBytes / kUbBlock, 0), ub_storage(new uint8_t[kTotalUbBytes + kUbBlock]),
      ub_access(kTotalUbBytes / kUbBlock)
{
  const uintptr_t raw = reinterpret_cast<uintptr_t>(ub_storage.get());
  ub = ub_storage.get() + ((kUbBlock - raw % kUbBlock) % kUbBlock);
  std::memset(ub, 0xFF, kTotalUbBytes);  // uninitialised UB reads as NaN / garbage
}

std::string CoreContext::name() const { return msg(type == CoreType::AIC ? "aic " : "aiv ", block_idx); }

CoreContext *current_or_null() { return tls_core; }
CoreContext &current()
{
  if (tls_core == nullptr) throw ModelViolation("Ascend C API called outside a simulated core (no launch)");
  return *tls_core;
}
void set_current(CoreContext *ctx) { tls_core = ctx; }

void fail(const char *api, const std::string &rule)
{
  const std::string who = tls_core ? "core " + tls_core->name() + ": " : "";
  throw ModelViolation(who + api + ": " + rule);
}

// ---- GM ----
void register_gm(const void *base, size_t bytes, const char *name)
{
  const uintptr_t b = reinterpret_cast<uintptr_t>(base);
  g_gm.emplace_back(b, b + bytes, name ? name : "?");
}
void clear_gm()
{
  g_gm.clear();
  g_sys_workspace = nullptr;
}
void set_system_workspace(void *base) { g_sys_workspace = static_cast<uint8_t *>(base); }
uint8_t *system_workspace()
{
  if (g_sys_workspace == nullptr) fail("GetSysWorkSpacePtr", "no system workspace set (blitz_sim::set_system_workspace)");
  return g_sys_workspace;
}

bool gm_registered(const void *p, size_t bytes)
{
  const uintptr_t b = reinterpret_cast<uintptr_t>(p);
  for (const GmRange &r : g_gm) {
    if (b >= r.begin && b + bytes <= r.end && b + bytes >= b) return true;
  }
  return false;
}

void check_gm(const char *api, const void *p, size_t bytes)
{
  if (gm_registered(p, bytes)) return;
  const uintptr_t b = reinterpret_cast<uintptr_t>(p);
  std::string near;
  for (const GmRange &r : g_gm) {
    if (b + bytes > r.begin && b < r.end) {
      near = msg(" (overlaps '", r.name, "' [0, ", r.end - r.begin, ") at offset ", static_cast<int64_t>(b - r.begin), ")");
    }
  }
  fail(api, msg("global memory [", p, ", +", bytes, ") is outside every registered GM range", near));
}

// ---- counting-only mode ----
void ub_produced(uint32_t addr, uint32_t bytes)
{
  CoreContext &c = current();
  if (!c.counting_only || bytes == 0) return;
  const uint32_t first = addr / kUbBlock, last = std::min<uint32_t>((addr + bytes - 1) / kUbBlock,
                                                                      kTotalUbBytes / kUbBlock - 1);
  for (uint32_t blk = first; blk <= last; ++blk) c.ub_undefined[blk] = 1;
}

void ub_loaded(uint32_t addr, uint32_t bytes)
{
  CoreContext &c = current();
  if (!c.counting_only || bytes == 0) return;
  // Only blocks covered whole: the rest of a partly written block keeps what it held.
  const uint32_t first = (addr + kUbBlock - 1) / kUbBlock, end = std::min<uint32_t>((addr + bytes) / kUbBlock,
                                                                                     kTotalUbBytes / kUbBlock);
  for (uint32_t blk = first; blk < end; ++blk) c.ub_undefined[blk] = 0;
}

void ub_scalar_read(const char *api, uint32_t addr, uint32_t bytes)
{
  CoreContext &c = current();
  c.counters.scalar_reads += 1;
  if (!c.counting_only || bytes == 0) return;
  const uint32_t first = addr / kUbBlock, last = (addr + bytes - 1) / kUbBlock;
  for (uint32_t blk = first; blk <= last && blk < kTotalUbBytes / kUbBlock; ++blk) {
    if (!c.ub_undefined[blk]) continue;
    const char *writer = c.ub_access[blk].writer_api;
    throw CountingUndecidable(msg("core ", c.name(), ": ", api, ": counting-only launch: the scalar unit reads UB [",
                                  blk * kUbBlock, ", ", (blk + 1) * kUbBlock, "), data that ", *writer ? writer : "an API",
                                  " would have computed; the kernel's control flow depends on computed data here, so "
                                  "this call cannot be counted without computing it (run it numerically)"));
  }
}

void gm_produced(const void *p, size_t bytes)
{
  if (!current().counting_only || bytes == 0) return;
  const uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + bytes;
  for (GmRange &r : g_gm) {
    if (b < r.end && r.begin < e && !r.written.load(std::memory_order_relaxed)) r.written.store(true);
  }
}

bool gm_defined(const void *p, size_t bytes)
{
  if (!current().counting_only) return true;
  const uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + bytes;
  for (const GmRange &r : g_gm) {
    if (b < r.end && r.begin < e && r.written.load()) return false;
  }
  return true;
}

void gm_reset_written()
{
  for (GmRange &r : g_gm) r.written.store(false);
}

// ---- pipe ordering ----
uint64_t pipe_op(int pipe)
{
  CoreContext &c = current();
  return ++c.clock[pipe][pipe];
}

void ub_access(const char *api, int pipe, uint64_t index, uint32_t addr, uint32_t bytes, bool write)
{
  if (bytes == 0) return;
  CoreContext &c = current();
  if (!c.check_pipe_order) return;
  if (uint64_t(addr) + bytes > kTotalUbBytes) fail(api, msg("UB access [", addr, ", ", addr + bytes, ") past the UB"));
  const uint32_t first = addr / kUbBlock, last = (addr + bytes - 1) / kUbBlock;
  for (uint32_t blk = first; blk <= last; ++blk) {
    UbBlockAccess &a = c.ub_access[blk];
    // RAW / WAW against the last writer on another pipe.
    if (a.writer_pipe >= 0 && a.writer_pipe != pipe && c.clock[pipe][a.writer_pipe] < a.writer_index) {
      fail(api, msg("unsynchronised ", write ? "WAW" : "RAW", " on UB [", blk * kUbBlock, ", ", (blk + 1) * kUbBlock,
                    "): ", api, " on ", PipeName(pipe), " after ", a.writer_api, " on ", PipeName(a.writer_pipe),
                    " with no SetFlag/WaitFlag or queue between them (the kernel is built with --cce-auto-sync=off)"));
    }
    if (write) {
      for (int q = 0; q < kPipeCount; ++q) {
        if (q != pipe && a.read_index[q] != 0 && c.clock[pipe][q] < a.read_index[q]) {
          fail(api, msg("unsynchronised WAR on UB [", blk * kUbBlock, ", ", (blk + 1) * kUbBlock, "): ", api, " on ",
                        PipeName(pipe), " after ", a.read_api[q], " on ", PipeName(q),
                        " with no SetFlag/WaitFlag or queue between them (the kernel is built with --cce-auto-sync=off)"));
        }
      }
      a.writer_pipe = static_cast<int8_t>(pipe);
      a.writer_index = index;
      a.writer_api = api;
      for (int q = 0; q < kPipeCount; ++q) a.read_index[q] = 0;
    } else {
      a.read_index[pipe] = index;
      a.read_api[pipe] = api;
    }
  }
}

void gm_written(const char *, const void *p, size_t bytes, uint64_t index)
{
  CoreContext &c = current();
  const uintptr_t b = reinterpret_cast<uintptr_t>(p);
  // Drop writes the scalar unit already knows are done; then record this one.
  const uint64_t known = c.clock[kPipeS][kPipeMTE3];
  c.mte3_gm_writes.erase(std::remove_if(c.mte3_gm_writes.begin(), c.mte3_gm_writes.end(),
                                        [&](const CoreContext::GmWrite &w) { return w.index <= known; }),
                         c.mte3_gm_writes.end());
  c.mte3_gm_writes.push_back({b, b + bytes, index});
}

void check_matmul_reads_after_mte3(const char *api, const void *p, size_t bytes)
{
  CoreContext &c = current();
  if (!c.check_pipe_order) return;
  const uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + bytes;
  const uint64_t known = c.clock[kPipeS][kPipeMTE3];
  for (const CoreContext::GmWrite &w : c.mte3_gm_writes) {
    if (w.index > known && w.begin < e && b < w.end) {
      fail(api, "the matmul message (scalar unit) covers GM this core's MTE3 wrote with no MTE3 -> S "
                "SetFlag/WaitFlag between them (the kernel is built with --cce-auto-sync=off)");
    }
  }
}

// ---- flags ----
void flag_set(int event, int id, const char *api)
{
  CoreContext &c = current();
  if (id < 0 || id >= kEventIds) fail(api, msg(EventName(event), " event id ", id, " outside 0..7"));
  FlagState &f = c.flags[event][id];
  if (f.set) {
    fail(api, msg("SetFlag<", EventName(event), ">(", id, ") while the flag is already set by ", f.setter,
                  " (no WaitFlag between: undefined, SetFlag-WaitFlag(ISASI).md)"));
  }
  f.set = true;
  f.setter = api;
  c.counters.set_flags += 1;
  const int src = EventSrc(event);
  // The flag fires after every op issued so far on the source pipe, carrying what it knew.
  for (int q = 0; q < kPipeCount; ++q) f.clock[q] = c.clock[src][q];
}

void flag_wait(int event, int id, const char *api)
{
  CoreContext &c = current();
  if (id < 0 || id >= kEventIds) fail(api, msg(EventName(event), " event id ", id, " outside 0..7"));
  FlagState &f = c.flags[event][id];
  if (!f.set) {
    fail(api, msg("WaitFlag<", EventName(event), ">(", id, ") with no pending SetFlag: the core would hang"));
  }
  f.set = false;
  c.counters.wait_flags += 1;
  const int dst = EventDst(event);
  for (int q = 0; q < kPipeCount; ++q) c.clock[dst][q] = std::max(c.clock[dst][q], f.clock[q]);
}

void finish_core(CoreContext &ctx)
{
  for (int e = 0; e < kHardEventCount; ++e) {
    for (int id = 0; id < kEventIds; ++id) {
      if (ctx.flags[e][id].set && !((ctx.id_by_queue[e] >> id) & 1u)) {
        throw ModelViolation(msg("core ", ctx.name(), ": kernel end: flag ", EventName(e), " id ", id, " set by ",
                                 ctx.flags[e][id].setter, " was never waited"));
      }
    }
  }
}

// ---- views ----
void check_view(const char *api, const BufferSlot *slot, uint32_t generation)
{
  CoreContext *c = current_or_null();
  if (slot->core != c) fail(api, "LocalTensor of another core (or of no live TPipe)");
  if (slot->queued) {
    if (slot->state == BufferSlot::Free || slot->generation != generation) {
      fail(api, msg("LocalTensor at UB byte ", slot->addr, " used after FreeTensor"));
    }
  }
}

CoreScope::CoreScope(CoreType type, uint32_t block_idx, uint32_t block_num) : prev(current_or_null())
{
  ctx.type = type;
  ctx.block_idx = block_idx;
  ctx.block_num = block_num;
  ctx.sub_idx = type == CoreType::AIV ? block_idx % 2 : 0;
  ctx.group = type == CoreType::AIV ? block_idx / 2 : block_idx;
  shared.groups.emplace_back(new CubeGroup);
  ctx.launch = &shared;
  ctx.cube = shared.groups[0].get();
  set_current(&ctx);
}
CoreScope::~CoreScope() { set_current(prev); }

}  // namespace blitz_sim

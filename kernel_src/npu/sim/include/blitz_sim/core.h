// One simulated AI core: its role and indices, its unified buffer, its event flags, its pipe
// ordering state (the --cce-auto-sync=off check) and its counters. Every model API reaches the
// core it runs on through current(), a thread-local set by run_mix_launch (or by CoreScope in
// the model's self-tests).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "blitz_sim/launch.h"

namespace blitz_sim {

enum class CoreType { AIC, AIV };

// The pipes of an AI Vector core that the kernel's flags order (impl/basic_api/kernel_event.h).
enum Pipe : int { kPipeS = 0, kPipeV, kPipeMTE2, kPipeMTE3, kPipeCount };
inline const char *PipeName(int p)
{
  static const char *const names[] = {"S", "V", "MTE2", "MTE3"};
  return names[p];
}

constexpr int kEventIds = 8;        // QUE_MAX_EVENT (impl/basic_api/kernel_macros.h); SetFlag-WaitFlag.md
constexpr int kHardEventCount = 13; // the AIV events the model knows (blitz_sim/sync.h)
constexpr uint32_t kUbBlock = 32;   // one datablock (通用说明和约束.md, address alignment)

// Cube-side counters are bumped by the two vector clients of the cube core (the matmul runs on
// the client thread at WaitIterateAll, README), so they are atomic.
struct AtomicCounters {
#define BLITZ_SIM_ATOMIC_FIELD(name, doc) std::atomic<uint64_t> name{0};
  BLITZ_SIM_COUNTERS(BLITZ_SIM_ATOMIC_FIELD)
#undef BLITZ_SIM_ATOMIC_FIELD
  CoreCounters snapshot() const
  {
    CoreCounters c;
#define BLITZ_SIM_ATOMIC_LOAD(name, doc) c.name = name.load();
    BLITZ_SIM_COUNTERS(BLITZ_SIM_ATOMIC_LOAD)
#undef BLITZ_SIM_ATOMIC_LOAD
    return c;
  }
};

// The meeting point of one cube core and its two vector cores: REGIST_MATMUL_OBJ on the AIC
// serves until both AIV clients have quit (their KfcClient destructor), or the launch aborted.
struct CubeGroup {
  std::mutex mu;
  std::condition_variable cv;
  int clients_quit = 0;
  int vectors_done = 0;   // vector threads of this group that have finished (normally or not)
  AtomicCounters counters;  // the cube core's counters
};

struct LaunchShared {
  std::atomic<bool> aborted{false};
  std::vector<std::unique_ptr<CubeGroup>> groups;
  void abort_all()
  {
    aborted = true;
    for (auto &g : groups) {
      std::lock_guard<std::mutex> lock(g->mu);
      g->cv.notify_all();
    }
  }
};

// Per 32-byte UB block: the last writer and the latest reader per pipe (op indices, 0 = none).
struct UbBlockAccess {
  uint64_t writer_index = 0;
  int8_t writer_pipe = -1;
  const char *writer_api = "";
  uint64_t read_index[kPipeCount] = {0, 0, 0, 0};
  const char *read_api[kPipeCount] = {"", "", "", ""};
};

struct FlagState {
  bool set = false;
  uint64_t clock[kPipeCount] = {0, 0, 0, 0};  // the source pipe's knowledge at SetFlag
  const char *setter = "";                    // "SetFlag" or the queue API that set it
};

struct CoreContext {
  CoreType type = CoreType::AIV;
  uint32_t block_idx = 0;   // GetBlockIdx
  uint32_t block_num = 1;   // GetBlockNum
  uint32_t sub_idx = 0;     // GetSubBlockIdx
  uint32_t group = 0;       // the cube core this core belongs to
  LaunchShared *launch = nullptr;
  CubeGroup *cube = nullptr;

  AtomicCounters counters;

  // LaunchMode::kCountingOnly (launch.h): APIs check and count but compute nothing. Then
  // ub_undefined[blk] marks the 32 B UB blocks whose data the skipped arithmetic would have
  // written, so a scalar read of them can stop the launch instead of steering it by garbage.
  bool counting_only = false;
  std::vector<uint8_t> ub_undefined;

  // Unified buffer, 32-byte aligned, kTotalUbBytes. Filled with a poison pattern at start so an
  // uninitialised read gives NaN-like garbage rather than zeros.
  std::unique_ptr<uint8_t[]> ub_storage;
  uint8_t *ub = nullptr;

  // TPipe bookkeeping (one TPipe per kernel; TPipe.md).
  bool pipe_alive = false;
  uint32_t ub_used = 0;       // bytes handed out by InitBuffer, from offset 0
  uint32_t buffers = 0;       // InitBuffer'd buffers (QBUF_MAX_LEN 64)
  int allocated_per_pos[16] = {0};

  // Event flags and the ID pools AllocEventID / queues draw from (kernel_tpipe_impl.h).
  FlagState flags[kHardEventCount][kEventIds];
  uint8_t id_occupied[kHardEventCount] = {0};
  uint8_t id_by_queue[kHardEventCount] = {0};  // ids a queue holds (not reported at kernel end)

  // Pipe ordering: clock[p][q] = how far pipe p knows pipe q has progressed; clock[p][p] is p's
  // own op count.
  uint64_t clock[kPipeCount][kPipeCount] = {};
  std::vector<UbBlockAccess> ub_access;
  bool check_pipe_order = true;  // self-tests of single APIs switch it off; launches never do
  // GM ranges this core's MTE3 wrote, for the MTE3 -> S check before a Matmul message.
  struct GmWrite {
    uintptr_t begin, end;
    uint64_t index;
  };
  std::vector<GmWrite> mte3_gm_writes;

  bool matmul_registered = false;
  int matmul_objects = 0;

  CoreContext();
  std::string name() const;
};

CoreContext *current_or_null();
CoreContext &current();
void set_current(CoreContext *ctx);

// Throws ModelViolation "core <role> <idx>: <api>: <rule>".
[[noreturn]] void fail(const char *api, const std::string &rule);

// Builds a message from streamable parts.
template <typename... Args>
std::string msg(const Args &...args)
{
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// ---- global memory ----
// Checks [p, p + bytes) lies inside one registered range.
void check_gm(const char *api, const void *p, size_t bytes);
bool gm_registered(const void *p, size_t bytes);

// ---- pipe ordering (README "auto-sync off") ----
// Starts one op on pipe `pipe` and returns its index.
uint64_t pipe_op(int pipe);
// Records that the op `index` on `pipe` reads / writes UB bytes [addr, addr + bytes).
void ub_access(const char *api, int pipe, uint64_t index, uint32_t addr, uint32_t bytes, bool write);
// Records a GM write by this core's MTE3 (checked before a Matmul message reads GM).
void gm_written(const char *api, const void *p, size_t bytes, uint64_t index);
// SetFlag on the source pipe, WaitFlag on the destination pipe.
void flag_set(int event, int id, const char *api);
void flag_wait(int event, int id, const char *api);

// ---- counting-only mode (launch.h LaunchMode) ----
// True when APIs compute their results (numeric launch), false in a counting-only launch.
inline bool computes() { return !current().counting_only; }
// UB bytes [addr, addr + bytes) were written by an API that computed nothing (counting only).
void ub_produced(uint32_t addr, uint32_t bytes);
// UB bytes [addr, addr + bytes) received real data (a copy of GM nobody wrote): the blocks it
// covers whole hold defined data again.
void ub_loaded(uint32_t addr, uint32_t bytes);
// A scalar read of UB bytes [addr, addr + bytes): throws CountingUndecidable in a counting-only
// launch if any of them is undefined.
void ub_scalar_read(const char *api, uint32_t addr, uint32_t bytes);
// GM [p, p + bytes) was written by this launch (a UB -> GM copy or a Matmul result); in a
// counting-only launch that data is undefined, and so is every registered range it touches.
void gm_produced(const void *p, size_t bytes);
// Whether GM [p, p + bytes) holds defined data: always in a numeric launch; in a counting-only
// one, unless a range it touches was written by the launch.
bool gm_defined(const void *p, size_t bytes);
// Clears every range's written mark (run_mix_launch, at the start of a launch).
void gm_reset_written();
// Counter helpers.
inline void count_vec(uint64_t elems, uint64_t repeats)
{
  AtomicCounters &c = current().counters;
  c.vector_instrs += 1;
  c.vector_repeats += repeats;
  c.vector_elem_ops += elems;
}
// 256-byte repeats of a count-form instruction over count elements of elem_bytes each.
inline uint64_t repeats_of(uint64_t count, uint64_t elem_bytes) { return (count * elem_bytes + 255) / 256; }

// Test helper: runs the body as one core outside a launch (a self-test's "core").
struct CoreScope {
  explicit CoreScope(CoreType type = CoreType::AIV, uint32_t block_idx = 0, uint32_t block_num = 1);
  ~CoreScope();
  CoreScope(const CoreScope &) = delete;
  CoreScope &operator=(const CoreScope &) = delete;
  CoreContext ctx;
  LaunchShared shared;
  CoreContext *prev;
};

// End-of-kernel checks of a core (flags left set): throws ModelViolation.
void finish_core(CoreContext &ctx);

}  // namespace blitz_sim

// TPipe, TQue and TBuf (docs/zh/api/SIMD-API/基础API/资源管理/TPipe/InitBuffer.md,
// AllocEventID.md, ReleaseEventID.md, FetchEventID.md; TQue/AllocTensor.md, EnQue.md, DeQue.md,
// FreeTensor.md; TBuf/Get.md; behaviour details from impl/basic_api/kernel_tpipe_impl.h and
// kernel_tquebind_impl.h).
//
// InitBuffer rounds each buffer to 32 B and packs them from UB offset 0 in call order; the
// model rejects a total above the user UB (blitz_sim::kUserUbBytes) and more than 64 buffers.
// Queue discipline: AllocTensor with every buffer in use spins forever on the NPU (violation);
// EnQue beyond the depth, DeQue of an empty queue, FreeTensor of a tensor this queue did not
// hand out or that is already free, more than 8 buffers of one TPosition allocated at once
// (TQue简介: the NPU hangs) are violations. A queue's EnQue/DeQue set and wait the documented
// events from the same 8-id pools as AllocEventID (VECIN: EnQue MTE2_V, Free V_MTE2 waited by the
// next Alloc of that buffer; VECOUT: V_MTE3 and MTE3_V).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "blitz_sim/core.h"
#include "blitz_sim/sync.h"
#include "blitz_sim/tensor.h"

namespace blitz_sim {

constexpr uint32_t kMaxBuffers = 64;           // QBUF_MAX_LEN (kernel_macros.h); InitBuffer.md
constexpr int kMaxAllocatedPerPosition = 8;    // TQue简介 / AllocTensor.md

int alloc_event_id(int event, bool by_queue, const char *api);
void release_event_id(int event, int id, const char *api);
int fetch_event_id(int event, const char *api);

// The queue machinery shared by every TQue instantiation.
struct QueueCore {
  std::vector<std::unique_ptr<BufferSlot>> slots;
  std::deque<BufferSlot *> fifo;  // enqueued, oldest first; each with its enqueue event id
  std::deque<int> fifo_events;
  uint32_t next = 0;              // round-robin start (kernel_tquebind_impl.h)
  int depth = 0;
  AscendC::TPosition pos = AscendC::TPosition::VECIN;
  bool initialised = false;

  int enque_event() const;  // MTE2_V for VECIN, V_MTE3 for VECOUT
  int free_event() const;   // V_MTE2 for VECIN, MTE3_V for VECOUT
  BufferSlot *alloc(const char *api);
  void enque(const char *api, BufferSlot *slot, uint32_t addr, uint32_t generation);
  BufferSlot *deque(const char *api);
  void free(const char *api, BufferSlot *slot, uint32_t addr, uint32_t generation);
};

struct BufCore {
  std::unique_ptr<BufferSlot> slot;
};

}  // namespace blitz_sim

namespace AscendC {

template <TPosition pos, int32_t depth>
class TQue {
public:
  TQue()
  {
    core_.depth = depth;
    core_.pos = pos;
  }
  TQue(const TQue &) = delete;
  TQue &operator=(const TQue &) = delete;

  template <typename T>
  LocalTensor<T> AllocTensor()
  {
    blitz_sim::BufferSlot *s = core_.alloc("TQue::AllocTensor");
    return LocalTensor<T>(s, s->addr, s->bytes / static_cast<uint32_t>(sizeof(T)));
  }
  template <typename T>
  void EnQue(const LocalTensor<T> &tensor)
  {
    tensor.live("TQue::EnQue");
    core_.enque("TQue::EnQue", tensor.slot(), tensor.addr(), 0);
  }
  template <typename T>
  LocalTensor<T> DeQue()
  {
    blitz_sim::BufferSlot *s = core_.deque("TQue::DeQue");
    return LocalTensor<T>(s, s->addr, s->bytes / static_cast<uint32_t>(sizeof(T)));
  }
  template <typename T>
  void FreeTensor(LocalTensor<T> &tensor)
  {
    tensor.live("TQue::FreeTensor");
    core_.free("TQue::FreeTensor", tensor.slot(), tensor.addr(), 0);
  }
  blitz_sim::QueueCore &model() { return core_; }

private:
  blitz_sim::QueueCore core_;
};

template <TPosition pos>
class TBuf {
public:
  TBuf() = default;
  TBuf(const TBuf &) = delete;
  TBuf &operator=(const TBuf &) = delete;
  // TBuf/Get.md: the whole buffer, or its first len elements.
  template <typename T>
  LocalTensor<T> Get()
  {
    check();
    return LocalTensor<T>(core_.slot.get(), core_.slot->addr, core_.slot->bytes / static_cast<uint32_t>(sizeof(T)));
  }
  template <typename T>
  LocalTensor<T> Get(uint32_t len)
  {
    check();
    if (len * sizeof(T) > core_.slot->bytes) {
      blitz_sim::fail("TBuf::Get", blitz_sim::msg(len, " elements exceed the buffer's ", core_.slot->bytes, " bytes"));
    }
    return LocalTensor<T>(core_.slot.get(), core_.slot->addr, len);
  }
  blitz_sim::BufCore &model() { return core_; }

private:
  void check()
  {
    if (!core_.slot) blitz_sim::fail("TBuf::Get", "TBuf used before TPipe::InitBuffer");
  }
  blitz_sim::BufCore core_;
};

class TPipe {
public:
  TPipe();
  ~TPipe();
  TPipe(const TPipe &) = delete;
  TPipe &operator=(const TPipe &) = delete;

  template <TPosition pos, int32_t depth>
  bool InitBuffer(TQue<pos, depth> &que, uint8_t num, uint32_t len)
  {
    blitz_sim::QueueCore &q = que.model();
    if (q.initialised) blitz_sim::fail("TPipe::InitBuffer", "queue initialised twice");
    if (depth == 0) blitz_sim::fail("TPipe::InitBuffer", "TQue depth 0 (only for in-place APIs)");
    if (num == 0) blitz_sim::fail("TPipe::InitBuffer", "num 0 buffers");
    for (uint8_t i = 0; i < num; ++i) q.slots.push_back(carve(len, pos, /*queued=*/true));
    q.initialised = true;
    return true;
  }
  template <TPosition pos>
  bool InitBuffer(TBuf<pos> &buf, uint32_t len)
  {
    if (buf.model().slot) blitz_sim::fail("TPipe::InitBuffer", "TBuf initialised twice");
    buf.model().slot = carve(len, pos, /*queued=*/false);
    return true;
  }

  template <HardEvent evt>
  TEventID AllocEventID()
  {
    return static_cast<TEventID>(blitz_sim::alloc_event_id(static_cast<int>(evt), false, "TPipe::AllocEventID"));
  }
  template <HardEvent evt>
  void ReleaseEventID(TEventID id)
  {
    blitz_sim::release_event_id(static_cast<int>(evt), id, "TPipe::ReleaseEventID");
  }
  TEventID FetchEventID(HardEvent evt)
  {
    return static_cast<TEventID>(blitz_sim::fetch_event_id(static_cast<int>(evt), "TPipe::FetchEventID"));
  }
  template <HardEvent evt>
  TEventID FetchEventID()
  {
    return FetchEventID(evt);
  }

private:
  std::unique_ptr<blitz_sim::BufferSlot> carve(uint32_t len, TPosition pos, bool queued);
  blitz_sim::CoreContext *core_;
};

}  // namespace AscendC

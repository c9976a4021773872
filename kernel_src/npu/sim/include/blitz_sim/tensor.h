// GlobalTensor and LocalTensor (docs/zh/api/SIMD-API/基础API/数据结构/GlobalTensor/*.md,
// .../LocalTensor/*.md) with bounds checks: a GlobalTensor given a size by SetGlobalBuffer
// refuses accesses past it, and every GM access must fall in a registered range
// (blitz_sim::register_gm); a LocalTensor is a view [addr, addr + len) of one InitBuffer'd
// buffer of its core, and a queue buffer's view dies when the buffer is freed.
#pragma once

#include <cstdint>

#include "blitz_sim/core.h"
#include "blitz_sim/numeric.h"

namespace AscendC {

// TPosition (资源管理/TQue/TQue简介: logical positions). QuePosition is the same enum.
enum class TPosition : uint8_t { GM, A1, A2, B1, B2, C1, C2, CO1, CO2, VECIN, VECOUT, VECCALC, LCM = VECCALC, SPM, SHM, TSCM, MAX };
using QuePosition = TPosition;

}  // namespace AscendC

namespace blitz_sim {

// One InitBuffer'd buffer: UB bytes [addr, addr + bytes) of its core.
struct BufferSlot {
  CoreContext *core = nullptr;
  uint32_t addr = 0;
  uint32_t bytes = 0;
  AscendC::TPosition pos = AscendC::TPosition::VECCALC;
  bool queued = false;       // a TQue buffer (state below applies) or a TBuf (always usable)
  enum State { Free, Allocated, Enqueued, Dequeued } state = Free;
  uint32_t generation = 0;   // bumped by FreeTensor: older views are dead
  int free_event = -1;       // the queue's free event id held by this buffer (-1 none)
  int free_hard_event = -1;
};

// Checks that a view can be used: its buffer is alive (queue buffers: allocated, not freed since
// the view was taken) and it belongs to the calling core.
void check_view(const char *api, const BufferSlot *slot, uint32_t generation);

// LocalTensor/SetValue.md: "该接口仅在LocalTensor的TPosition为VECIN/VECCALC/VECOUT时支持" (only
// for tensors whose TPosition is VECIN, VECCALC or VECOUT).
inline void check_scalar_writable(const char *api, const BufferSlot *slot)
{
  using P = AscendC::TPosition;
  if (slot->pos != P::VECIN && slot->pos != P::VECCALC && slot->pos != P::VECOUT) {
    fail(api, msg("the tensor's TPosition ", int(slot->pos), " is not VECIN, VECCALC or VECOUT (SetValue.md)"));
  }
}

}  // namespace blitz_sim

namespace AscendC {

template <typename T>
class GlobalTensor {
public:
  using PrimType = T;
  GlobalTensor() = default;
  // SetGlobalBuffer.md: without a size the tensor is unbounded (the model still checks the GM
  // registry); with one, accesses past bufferSize elements are violations.
  void SetGlobalBuffer(T *buffer, uint64_t bufferSize)
  {
    base_ = buffer;
    size_ = bufferSize;
    sized_ = true;
  }
  void SetGlobalBuffer(T *buffer)
  {
    base_ = buffer;
    size_ = 0;
    sized_ = false;
  }
  // operator[] (GlobalTensor.md): the view starting offset elements later.
  GlobalTensor operator[](uint64_t offset) const
  {
    GlobalTensor t = *this;
    if (sized_) {
      if (offset > size_) {
        blitz_sim::fail("GlobalTensor::operator[]",
                        blitz_sim::msg("offset ", offset, " past the SetGlobalBuffer size ", size_));
      }
      t.size_ = size_ - offset;
    }
    t.base_ = base_ + offset;
    return t;
  }
  // GetValue.md: a scalar read through the S pipe.
  T GetValue(uint64_t offset) const
  {
    check("GlobalTensor::GetValue", offset, 1);
    blitz_sim::current().counters.scalar_reads += 1;
    // Counting only: a value this launch wrote was never computed; steering by it would make
    // the counts differ from a numeric run's.
    if (!blitz_sim::gm_defined(base_ + offset, sizeof(T))) {
      throw blitz_sim::CountingUndecidable(blitz_sim::msg(
          "core ", blitz_sim::current().name(), ": GlobalTensor::GetValue: counting-only launch: the scalar unit reads GM "
          "this launch wrote, data that was never computed (run this call numerically)"));
    }
    T v;
    std::memcpy(&v, base_ + offset, sizeof(T));
    return v;
  }
  T *GetPhyAddr() const { return base_; }
  uint64_t GetSize() const { return size_; }

  // Model-internal: checks elements [offset, offset + count) are accessible.
  void check(const char *api, uint64_t offset, uint64_t count) const
  {
    if (base_ == nullptr) blitz_sim::fail(api, "GlobalTensor used before SetGlobalBuffer (null address)");
    if (sized_ && offset + count > size_) {
      blitz_sim::fail(api, blitz_sim::msg("elements [", offset, ", ", offset + count,
                                          ") past the SetGlobalBuffer size ", size_));
    }
    blitz_sim::check_gm(api, base_ + offset, count * sizeof(T));
  }
  bool sized() const { return sized_; }

private:
  T *base_ = nullptr;
  uint64_t size_ = 0;
  bool sized_ = false;
};

template <typename T>
class LocalTensor {
public:
  using PrimType = T;
  LocalTensor() = default;
  // Model-internal constructor (TQue::AllocTensor / TBuf::Get).
  LocalTensor(blitz_sim::BufferSlot *slot, uint32_t addr, uint32_t len)
      : slot_(slot), generation_(slot->generation), addr_(addr), len_(len) {}

  // operator[] (LocalTensor.md): the view offset elements later, its length the rest.
  LocalTensor operator[](uint32_t offset) const
  {
    live("LocalTensor::operator[]");
    if (offset > len_) {
      blitz_sim::fail("LocalTensor::operator[]",
                      blitz_sim::msg("offset ", offset, " past the tensor's ", len_, " elements"));
    }
    LocalTensor t = *this;
    t.addr_ = addr_ + offset * static_cast<uint32_t>(sizeof(T));
    t.len_ = len_ - offset;
    return t;
  }
  // LocalTensor/GetValue.md: a scalar read on the S pipe (needs V/MTE2 -> S order).
  T GetValue(uint32_t offset) const
  {
    live("LocalTensor::GetValue");
    if (offset >= len_) {
      blitz_sim::fail("LocalTensor::GetValue", blitz_sim::msg("index ", offset, " >= length ", len_));
    }
    const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeS);
    blitz_sim::ub_access("LocalTensor::GetValue", blitz_sim::kPipeS, op, addr_ + offset * sizeof(T), sizeof(T), false);
    blitz_sim::ub_scalar_read("LocalTensor::GetValue", addr_ + static_cast<uint32_t>(offset * sizeof(T)), sizeof(T));
    T v;
    std::memcpy(&v, slot_->core->ub + addr_ + offset * sizeof(T), sizeof(T));
    return v;
  }
  // LocalTensor/SetValue.md: a scalar write on the S pipe (V/MTE3 need S -> V / S -> MTE3 order
  // before reading it); the page allows it only for VECIN / VECCALC / VECOUT tensors.
  template <typename T1>
  void SetValue(const uint32_t index, const T1 value) const
  {
    live("LocalTensor::SetValue");
    if (index >= len_) {
      blitz_sim::fail("LocalTensor::SetValue", blitz_sim::msg("index ", index, " >= length ", len_));
    }
    blitz_sim::check_scalar_writable("LocalTensor::SetValue", slot_);
    const uint64_t op = blitz_sim::pipe_op(blitz_sim::kPipeS);
    blitz_sim::ub_access("LocalTensor::SetValue", blitz_sim::kPipeS, op, addr_ + index * sizeof(T), sizeof(T), true);
    const T v = static_cast<T>(value);
    std::memcpy(slot_->core->ub + addr_ + index * sizeof(T), &v, sizeof(T));
  }
  uint32_t GetSize() const { return len_; }
  uint32_t GetLength() const { return len_ * sizeof(T); }

  // ---- model-internal ----
  void live(const char *api) const
  {
    if (slot_ == nullptr) blitz_sim::fail(api, "LocalTensor without a buffer (default-constructed)");
    blitz_sim::check_view(api, slot_, generation_);
  }
  // Checks element range [first, first + count) of the view and returns the UB byte address.
  uint32_t span(const char *api, uint64_t first, uint64_t count) const
  {
    live(api);
    if (first + count > len_) {
      blitz_sim::fail(api, blitz_sim::msg("elements [", first, ", ", first + count, ") outside the tensor's ",
                                          len_, " elements (UB byte ", addr_, ")"));
    }
    return addr_ + static_cast<uint32_t>(first * sizeof(T));
  }
  T *ptr() const { return reinterpret_cast<T *>(slot_->core->ub + addr_); }
  uint32_t addr() const { return addr_; }
  uint32_t len() const { return len_; }
  blitz_sim::BufferSlot *slot() const { return slot_; }

private:
  blitz_sim::BufferSlot *slot_ = nullptr;
  uint32_t generation_ = 0;
  uint32_t addr_ = 0;  // byte address in the core's UB
  uint32_t len_ = 0;   // elements
};

}  // namespace AscendC

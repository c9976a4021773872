// TPipe buffer carving, queue discipline and the event-id pools.
#include "blitz_sim/pipe.h"

namespace blitz_sim {

namespace {
const char *pos_name(AscendC::TPosition p)
{
  switch (p) {
    case AscendC::TPosition::VECIN: return "VECIN";
    case AscendC::TPosition::VECOUT: return "VECOUT";
    case AscendC::TPosition::VECCALC: return "VECCALC";
    default: return "other";
  }
}
}  // namespace

int alloc_event_id(int event, bool by_queue, const char *api)
{
  CoreContext &c = current();
  for (int id = 0; id < kEventIds; ++id) {
    if (!((c.id_occupied[event] >> id) & 1u)) {
      c.id_occupied[event] |= static_cast<uint8_t>(1u << id);
      if (by_queue) c.id_by_queue[event] |= static_cast<uint8_t>(1u << id);
      return id;
    }
  }
  fail(api, msg("no free ", EventName(event), " event id (all 8 held, queues included)"));
}

void release_event_id(int event, int id, const char *api)
{
  CoreContext &c = current();
  if (id < 0 || id >= kEventIds || !((c.id_occupied[event] >> id) & 1u)) {
    fail(api, msg(EventName(event), " event id ", id, " is not allocated"));
  }
  c.id_occupied[event] &= static_cast<uint8_t>(~(1u << id));
  c.id_by_queue[event] &= static_cast<uint8_t>(~(1u << id));
}

int fetch_event_id(int event, const char *api)
{
  CoreContext &c = current();
  for (int id = 0; id < kEventIds; ++id) {
    if (!((c.id_occupied[event] >> id) & 1u)) return id;
  }
  fail(api, msg("no free ", EventName(event), " event id to fetch"));
}

int QueueCore::enque_event() const
{
  if (pos == AscendC::TPosition::VECIN) return static_cast<int>(AscendC::HardEvent::MTE2_V);
  if (pos == AscendC::TPosition::VECOUT) return static_cast<int>(AscendC::HardEvent::V_MTE3);
  fail("TQue", msg("queue position ", pos_name(pos), " is not in the model (VECIN / VECOUT)"));
}
int QueueCore::free_event() const
{
  if (pos == AscendC::TPosition::VECIN) return static_cast<int>(AscendC::HardEvent::V_MTE2);
  if (pos == AscendC::TPosition::VECOUT) return static_cast<int>(AscendC::HardEvent::MTE3_V);
  fail("TQue", msg("queue position ", pos_name(pos), " is not in the model (VECIN / VECOUT)"));
}

BufferSlot *QueueCore::alloc(const char *api)
{
  if (!initialised) fail(api, "queue used before TPipe::InitBuffer");
  const uint32_t n = static_cast<uint32_t>(slots.size());
  for (uint32_t i = 0; i < n; ++i) {
    BufferSlot *s = slots[(next + i) % n].get();
    if (s->state != BufferSlot::Free) continue;
    next = (next + i + 1) % n;
    CoreContext &c = current();
    int &count = c.allocated_per_pos[static_cast<int>(pos)];
    if (count + 1 > kMaxAllocatedPerPosition) {
      fail(api, msg("a 9th ", pos_name(pos), " buffer allocated at once (at most 8 per TPosition; the NPU hangs)"));
    }
    ++count;
    if (s->free_event >= 0) {  // the previous FreeTensor's event: the next writer waits for it
      flag_wait(s->free_hard_event, s->free_event, "TQue::AllocTensor");
      release_event_id(s->free_hard_event, s->free_event, api);
      s->free_event = -1;
    }
    s->state = BufferSlot::Allocated;
    return s;
  }
  fail(api, msg("every one of the queue's ", n, " buffers is in use (the NPU spins forever)"));
}

static void check_owned(const char *api, const QueueCore &q, const BufferSlot *slot, uint32_t addr)
{
  bool owned = false;
  for (const auto &s : q.slots) owned = owned || s.get() == slot;
  if (!owned) fail(api, "tensor was not allocated from this queue");
  if (addr != slot->addr) fail(api, "tensor is a sub-view, not the buffer AllocTensor returned");
}

void QueueCore::enque(const char *api, BufferSlot *slot, uint32_t addr, uint32_t)
{
  check_owned(api, *this, slot, addr);
  if (slot->state != BufferSlot::Allocated) fail(api, "tensor is not in the allocated state (EnQue twice, or after DeQue)");
  if (static_cast<int>(fifo.size()) >= depth) fail(api, msg("EnQue past the queue depth ", depth));
  const int evt = enque_event();
  const int id = alloc_event_id(evt, true, api);
  flag_set(evt, id, "TQue::EnQue");
  slot->state = BufferSlot::Enqueued;
  fifo.push_back(slot);
  fifo_events.push_back(id);
}

BufferSlot *QueueCore::deque(const char *api)
{
  if (fifo.empty()) fail(api, "DeQue on an empty queue (the NPU would wait forever)");
  BufferSlot *s = fifo.front();
  const int id = fifo_events.front();
  fifo.pop_front();
  fifo_events.pop_front();
  const int evt = enque_event();
  flag_wait(evt, id, "TQue::DeQue");
  release_event_id(evt, id, api);
  s->state = BufferSlot::Dequeued;
  return s;
}

void QueueCore::free(const char *api, BufferSlot *slot, uint32_t addr, uint32_t)
{
  check_owned(api, *this, slot, addr);
  if (slot->state == BufferSlot::Free) fail(api, "double FreeTensor");
  if (slot->state == BufferSlot::Enqueued) fail(api, "FreeTensor of a tensor still in the queue (not DeQue'd)");
  const int evt = free_event();
  const int id = alloc_event_id(evt, true, api);
  flag_set(evt, id, "TQue::FreeTensor");
  slot->free_event = id;
  slot->free_hard_event = evt;
  slot->state = BufferSlot::Free;
  ++slot->generation;
  --current().allocated_per_pos[static_cast<int>(pos)];
}

}  // namespace blitz_sim

namespace AscendC {

TPipe::TPipe() : core_(&blitz_sim::current())
{
  if (core_->pipe_alive) blitz_sim::fail("TPipe", "a second live TPipe on this core");
  core_->pipe_alive = true;
  core_->ub_used = 0;
  core_->buffers = 0;
}

TPipe::~TPipe() { core_->pipe_alive = false; }

std::unique_ptr<blitz_sim::BufferSlot> TPipe::carve(uint32_t len, TPosition pos, bool queued)
{
  const char *api = "TPipe::InitBuffer";
  if (&blitz_sim::current() != core_) blitz_sim::fail(api, "TPipe of another core");
  if (core_->buffers + 1 > blitz_sim::kMaxBuffers) blitz_sim::fail(api, "more than 64 buffers (QBUF_MAX_LEN)");
  const uint32_t rounded = (len + blitz_sim::kUbBlock - 1) / blitz_sim::kUbBlock * blitz_sim::kUbBlock;
  if (uint64_t(core_->ub_used) + rounded > blitz_sim::kUserUbBytes) {
    blitz_sim::fail(api, blitz_sim::msg("buffer of ", len, " bytes at UB offset ", core_->ub_used, " ends at ",
                                        uint64_t(core_->ub_used) + rounded, " > the user UB of ", blitz_sim::kUserUbBytes,
                                        " bytes (192 KiB - 256 B - 8 KiB reserved)"));
  }
  std::unique_ptr<blitz_sim::BufferSlot> s(new blitz_sim::BufferSlot);
  s->core = core_;
  s->addr = core_->ub_used;
  s->bytes = rounded;
  s->pos = pos;
  s->queued = queued;
  s->state = queued ? blitz_sim::BufferSlot::Free : blitz_sim::BufferSlot::Allocated;
  core_->ub_used += rounded;
  ++core_->buffers;
  return s;
}

}  // namespace AscendC

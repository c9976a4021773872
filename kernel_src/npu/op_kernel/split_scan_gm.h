// The device side of the weighted task split when the host tiling never saw sabi's values
// (device_split in the tiling): kernel_src/common/split_scan.h walks the tasks and applies the
// one cost rule (work_split.h: task_key_blocks + count_in_range + task_cost, as the CPU device
// and the host tiling do); this file is its Source on a vector core: sabi chunks copied from
// global memory into two unified-buffer slots (DataCopyPad, the next load in flight while the
// scalar unit counts the current one) and the per-batch lengths read from global memory.
//
// Cost (S = Sq = Skv = 118806, H = 3, B = 1, bq = 128, bkv = 512, so 929 query blocks and 233
// key blocks; sabi width W <= 233): one pass reads B * H * 929 * W entries, at most 649,371
// entries = 1.30 MB. Pass 1 reads all of it, pass 2 stops at this core's end boundary, so a
// core reads at most 2.6 MB (all cores read the same bytes, mostly from L2) and its scalar unit
// checks at most 1.3 M entries, one GetValue + two compares each. Counting is scalar on
// purpose: sabi is uint16, and the vector Compare family takes half / float / int32 operands,
// so a vector count would need casts of indices up to 65534 (not exact in half) first; the
// scalar count is the rule itself. The scan runs once per launch, before the first task.
//
// Synchronisation, per load: S -> MTE2 before a slot is overwritten (the scalar unit read it two
// loads ago), MTE2 -> S before the scalar unit reads a slot (one event per slot, each set once
// by its load and waited once by its Acquire; split_scan.h acquires every load it starts).
#pragma once

#include "kernel_operator.h"
#include "platform.h"
#include "split_scan.h"
#include "blitz_tiling_params.h"
#include "batch_tokens_gm.h"

namespace blitz_npu {

class GmSplitSource {
public:
  // `space` holds 2 x chunk uint16 entries (the O accumulator's buffer, unused until the first
  // task); chunk is a multiple of 16, so the second slot starts on a 32-byte boundary.
  __aicore__ inline void Init(AscendC::TPipe *pipe, const BlitzTilingParams *p,
                              const AscendC::GlobalTensor<uint16_t> &sabi,
                              const AscendC::GlobalTensor<int64_t> &actualQ,
                              const AscendC::GlobalTensor<int64_t> &actualKv,
                              const AscendC::LocalTensor<uint16_t> &space)
  {
    pipe_ = pipe;
    p_ = p;
    sabi_ = sabi;
    actualQ_ = actualQ;
    actualKv_ = actualKv;
    slot_[0] = space;
    slot_[1] = space[p->scan_chunk];
    loaded_[0] = static_cast<event_t>(pipe_->AllocEventID<AscendC::HardEvent::MTE2_S>());
    loaded_[1] = static_cast<event_t>(pipe_->AllocEventID<AscendC::HardEvent::MTE2_S>());
    read_ = static_cast<event_t>(pipe_->AllocEventID<AscendC::HardEvent::S_MTE2>());
  }

  __aicore__ inline void Finish()
  {
    pipe_->ReleaseEventID<AscendC::HardEvent::MTE2_S>(loaded_[0]);
    pipe_->ReleaseEventID<AscendC::HardEvent::MTE2_S>(loaded_[1]);
    pipe_->ReleaseEventID<AscendC::HardEvent::S_MTE2>(read_);
  }

  // sabi[offset, offset + count) -> slot (count <= scan_chunk).
  __aicore__ inline void Prefetch(int slot, int64_t offset, int64_t count)
  {
    AscendC::SetFlag<AscendC::HardEvent::S_MTE2>(read_);
    AscendC::WaitFlag<AscendC::HardEvent::S_MTE2>(read_);
    // DataCopyExtParams{blockCount, blockLen (bytes), srcStride, dstStride, rsv}: one block;
    // DataCopyPad takes any byte length (rows of sabi are not 32-byte multiples).
    const AscendC::DataCopyExtParams copy(1, static_cast<uint32_t>(count * sizeof(uint16_t)), 0, 0, 0);
    AscendC::DataCopyPad(slot_[slot], sabi_[offset], copy, AscendC::DataCopyPadExtParams<uint16_t>{false, 0, 0, 0});
    AscendC::SetFlag<AscendC::HardEvent::MTE2_S>(loaded_[slot]);
  }

  __aicore__ inline AscendC::LocalTensor<uint16_t> Acquire(int slot)
  {
    AscendC::WaitFlag<AscendC::HardEvent::MTE2_S>(loaded_[slot]);
    return slot_[slot];
  }

  __aicore__ inline void Release(int /*slot*/) {}  // the next Prefetch's S -> MTE2 wait covers it

  // Batch b's lengths, as the task loop reads them (batch_tokens_gm.h; TND: cumulative ends).
  __aicore__ inline blitz::SequenceGeometry Sequence(int64_t b)
  {
    return ReadBatchTokens(p_, actualQ_, actualKv_, b).seq;
  }

private:
  AscendC::TPipe *pipe_ = nullptr;
  const BlitzTilingParams *p_ = nullptr;
  AscendC::GlobalTensor<uint16_t> sabi_;
  AscendC::GlobalTensor<int64_t> actualQ_, actualKv_;
  AscendC::LocalTensor<uint16_t> slot_[2];
  event_t loaded_[2];
  event_t read_;
};

// This worker's tasks [*begin, *end) of the weighted split, computed from sabi in global memory.
__aicore__ inline void DeviceTaskRange(AscendC::TPipe *pipe, const BlitzTilingParams *p,
                                       const AscendC::GlobalTensor<uint16_t> &sabi,
                                       const AscendC::GlobalTensor<int64_t> &actualQ,
                                       const AscendC::GlobalTensor<int64_t> &actualKv,
                                       const AscendC::LocalTensor<uint16_t> &space, int64_t worker,
                                       int64_t *begin, int64_t *end)
{
  blitz::SplitScanShape shape;
  shape.batch = p->batch;
  shape.heads = p->heads;
  shape.q_blocks = p->q_blocks;
  shape.sabi_batch = p->sabi_batch;
  shape.sabi_heads = p->sabi_heads;
  shape.width = p->sabi_width;
  shape.seq_q = p->seq_q;
  shape.seq_kv = p->seq_kv;
  shape.block_q = p->block_q;
  shape.block_kv = p->block_kv;
  shape.mask_mode = static_cast<int>(p->mask_mode);
  shape.pre_tokens = p->pre_tokens;
  shape.next_tokens = p->next_tokens;
  shape.chunk = p->scan_chunk;
  GmSplitSource source;
  source.Init(pipe, p, sabi, actualQ, actualKv, space);
  blitz::SplitScan<GmSplitSource> scan(shape, &source);
  scan.range(p->workers, worker, begin, end);
  source.Finish();
  // S -> V: the vector unit's first writes to `space` (the O accumulator) come after the
  // scalar unit's last reads of it.
  const event_t scanned = static_cast<event_t>(pipe->FetchEventID(AscendC::HardEvent::S_V));
  AscendC::SetFlag<AscendC::HardEvent::S_V>(scanned);
  AscendC::WaitFlag<AscendC::HardEvent::S_V>(scanned);
}

}  // namespace blitz_npu

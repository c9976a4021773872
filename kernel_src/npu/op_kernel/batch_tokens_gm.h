// One batch entry's lengths and first tokens, read from the actual-length tensors in global
// memory, for the task loop (blitz_attention_kernel.h) and the device split scan
// (split_scan_gm.h) alike. Padded layouts: common's rule (a list of one entry applies to every
// batch; absent = the full lengths), batch b starts at token 0 of its own stride_b. TND
// (p->packed): the lists are the CUMULATIVE ends, one per batch, so batch b is the tokens
// [end[b-1], end[b]) (the host tiling checked them non-decreasing, ending at T).
#pragma once

#include "kernel_operator.h"
#include "platform.h"
#include "tile_geometry.h"
#include "blitz_tiling_params.h"

namespace blitz_npu {

struct BatchTokens {
  blitz::SequenceGeometry seq;  // this batch's lengths, clipped to seq_q / seq_kv
  int64_t q_start;              // first query (and output, lse) token of the batch; 0 unless packed
  int64_t kv_start;             // first key / value token; 0 unless packed
};

// Element `b` of a per-batch list as the padded layouts read it, or 0 when the list is absent.
__aicore__ inline int64_t PaddedLength(const AscendC::GlobalTensor<int64_t> &list, int64_t count, int64_t b)
{
  return count > 0 ? list.GetValue(count == 1 ? 0 : b) : 0;
}

// Params: any tiling parameters with packed, actual_q_count, actual_kv_count, seq_q, seq_kv and
// block_kv (BlitzTilingParams, and BlitzSelectBlocks' SelectTilingParams, which reads the same lists).
template <typename Params>
__aicore__ inline BatchTokens ReadBatchTokens(const Params *p, const AscendC::GlobalTensor<int64_t> &actualQ,
                                              const AscendC::GlobalTensor<int64_t> &actualKv, int64_t b)
{
  BatchTokens t;
  t.q_start = 0;
  t.kv_start = 0;
  int64_t q = 0, kv = 0;
  if (p->packed) {
    t.q_start = b > 0 ? actualQ.GetValue(b - 1) : 0;
    t.kv_start = b > 0 ? actualKv.GetValue(b - 1) : 0;
    q = actualQ.GetValue(b) - t.q_start;
    kv = actualKv.GetValue(b) - t.kv_start;
  } else {
    q = PaddedLength(actualQ, p->actual_q_count, b);
    kv = PaddedLength(actualKv, p->actual_kv_count, b);
  }
  // One resolved value each: common's SequenceGeometry clips it to the tensor lengths.
  const bool hasQ = p->actual_q_count > 0, hasKv = p->actual_kv_count > 0;
  t.seq = blitz::SequenceGeometry::make(0, p->seq_q, p->seq_kv, p->block_kv, hasQ ? &q : nullptr, hasQ ? 1 : 0,
                                        hasKv ? &kv : nullptr, hasKv ? 1 : 0);
  return t;
}

}  // namespace blitz_npu

// Walking one sabi row that lives in global memory. kernel_src/common's SabiRowCursor reads a
// plain `const uint16_t *`, which the Ascend compiler cannot point at global memory (__gm__ is
// an address space there), so the kernel walks the row through a GlobalTensor with the same
// rules: broadcast size-1 batch/head dims, skip 0xFFFF, and treat any index >= the bound as
// "no block" (validation may be off: a bad index gives wrong zeros, never a bad read).
#pragma once

#include "kernel_operator.h"
#include "platform.h"

namespace blitz_npu {

class GmSabiRow {
public:
  // Row (b, h, q_block) of a sabi [batch, heads, rows, width]; dense (every block below the
  // bound) when the op got no sabi. `bound` = key blocks holding at least one valid key.
  __aicore__ inline void Init(const AscendC::GlobalTensor<uint16_t> &sabi, bool hasSabi,
                              int64_t sabiBatch, int64_t sabiHeads, int64_t sabiRows,
                              int64_t width, int64_t b, int64_t h, int64_t qBlock, int64_t bound)
  {
    sabi_ = sabi;
    dense_ = !hasSabi;
    bound_ = bound;
    pos_ = 0;
    width_ = width;
    const int64_t bb = sabiBatch == 1 ? 0 : b;
    const int64_t hh = sabiHeads == 1 ? 0 : h;
    if (!dense_ && (bb >= sabiBatch || hh >= sabiHeads || qBlock >= sabiRows)) {
      width_ = 0;  // the row does not exist: nothing selected
    }
    base_ = ((bb * sabiHeads + hh) * sabiRows + qBlock) * width;
  }

  // The next selected key block in row order; false at the end of the row.
  __aicore__ inline bool Next(int64_t &kvBlock)
  {
    if (dense_) {
      if (pos_ >= bound_) return false;
      kvBlock = pos_++;
      return true;
    }
    while (pos_ < width_) {
      const uint16_t v = sabi_.GetValue(base_ + pos_);
      ++pos_;
      if (v == blitz::kSabiNoBlock || static_cast<int64_t>(v) >= bound_) continue;
      kvBlock = static_cast<int64_t>(v);
      return true;
    }
    return false;
  }

private:
  AscendC::GlobalTensor<uint16_t> sabi_;
  int64_t base_ = 0;
  int64_t width_ = 0;
  int64_t pos_ = 0;
  int64_t bound_ = 0;
  bool dense_ = true;
};

}  // namespace blitz_npu

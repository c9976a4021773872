// The select entry point's body: the cube / vector pairing and the kernel run (kernel_entry.h's
// counterpart for BlitzSelectBlocks; the same fallbacks for type-checking without CANN).
#pragma once

#include "kernel_operator.h"
#include "matmul_include.h"

#include "select_kernel.h"

#include "entry_defaults.h"

namespace blitz_npu {

__aicore__ inline void RunBlitzSelectBlocks(GM_ADDR query, GM_ADDR key, GM_ADDR actualQ, GM_ADDR actualKv,
                                            GM_ADDR sabi, GM_ADDR workspace,
                                            BlitzSelectBlocksTilingData *tilingData)
{
  GM_ADDR user = AscendC::GetUserWorkspace(workspace);
  AscendC::TPipe pipe;
  SelectBlocksKernel<DTYPE_QUERY> op;
  // On the cube core this serves the logits matmul of its two vector cores and returns when
  // they have ended; the vector cores continue below as its clients.
  REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), op.scores, &tilingData->scores);
  op.Init(query, key, actualQ, actualKv, sabi, user, tilingData, &pipe);
  op.Process();
}

}  // namespace blitz_npu

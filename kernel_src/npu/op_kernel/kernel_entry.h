// The entry point's body: tiling data, the lse choice, the cube/vector pairing and the kernel run.
// KERNEL_TYPE_MIX_AIC_1_2: each launched block is one cube core and two vector cores.
#pragma once

#include "kernel_operator.h"
#include "matmul_include.h"

#include "blitz_attention_kernel.h"

#include "entry_defaults.h"

namespace blitz_npu {

// One kernel class per lse choice: the tiling's return_lse picks it, so a binary without lse
// writes never touches softmax_lse (which may be NULL: it is an OPTIONAL output).
template <bool kWithLse>
__aicore__ inline void RunWithLseChoice(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR mask, GM_ADDR sabi,
                                        GM_ADDR actualQ, GM_ADDR actualKv, GM_ADDR out, GM_ADDR lse,
                                        GM_ADDR user, BlitzSparseAttentionTilingData *tilingData)
{
  AscendC::TPipe pipe;
  BlitzAttentionKernel<DTYPE_QUERY, kWithLse> op;
  // On the cube core this starts the Matmul server for qk and pv and returns when the two
  // vector cores have ended their matmuls; the vector cores continue below as its clients.
  REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), op.qk, &tilingData->qk, op.pv, &tilingData->pv);
  op.Init(query, key, value, sabi, actualQ, actualKv, mask, out, lse, user, tilingData, &pipe);
  op.Process();
}

// The entry function (blitz_sparse_attention.cpp) registers and reads the tiling itself: the
// documented place of REGISTER_TILING_DEFAULT / GET_TILING_DATA_WITH_STRUCT is the __global__ body.
__aicore__ inline void RunBlitzSparseAttention(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR mask,
                                               GM_ADDR sabi, GM_ADDR actualQ, GM_ADDR actualKv, GM_ADDR out,
                                               GM_ADDR lse, GM_ADDR workspace,
                                               BlitzSparseAttentionTilingData *tilingData)
{
  GM_ADDR user = AscendC::GetUserWorkspace(workspace);
  if (tilingData->params.return_lse) {
    RunWithLseChoice</*kWithLse=*/true>(query, key, value, mask, sabi, actualQ, actualKv, out, lse, user, tilingData);
  } else {
    RunWithLseChoice</*kWithLse=*/false>(query, key, value, mask, sabi, actualQ, actualKv, out, nullptr, user,
                                         tilingData);
  }
}

}  // namespace blitz_npu

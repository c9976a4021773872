// Kernel entry of BlitzSparseAttentionV2: the original list plus the softmax_lse output
// (written when softmax_lse_flag is set; the tiling passes the flag as return_lse).
#include "kernel_entry.h"

extern "C" __global__ __aicore__ void blitz_sparse_attention_v2(
    GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR pseShift, GM_ADDR attenMask, GM_ADDR sabi,
    GM_ADDR actualSeqLengths, GM_ADDR actualSeqLengthsKv, GM_ADDR deqScale1, GM_ADDR quantScale1,
    GM_ADDR deqScale2, GM_ADDR quantScale2, GM_ADDR quantOffset2, GM_ADDR attentionOut,
    GM_ADDR softmaxLse, GM_ADDR workspace, GM_ADDR tiling)
{
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
  blitz_npu::RunBlitzSparseAttention</*kWithLse=*/true>(query, key, value, attenMask, sabi, actualSeqLengths,
                                                        actualSeqLengthsKv, attentionOut, softmaxLse,
                                                        workspace, tiling);
}

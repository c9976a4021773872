// Kernel entry of BlitzSparseAttention: the newest original op's inputs and outputs
// (attention_out, then the OPTIONAL softmax_lse). Inputs by index follow
// op_host/blitz_sparse_attention_def.cpp; pse_shift, atten_mask and the quantisation inputs are
// rejected by the tiling, so the kernel never reads them; atten_mask is read in sparse_mode 0/1
// only; softmax_lse only when the tiling's return_lse is set (softmax_lse_flag), so a NULL lse
// is never touched.
#include "kernel_entry.h"

extern "C" __global__ __aicore__ void blitz_sparse_attention(
    GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR pseShift, GM_ADDR attenMask, GM_ADDR sabi,
    GM_ADDR actualSeqLengths, GM_ADDR actualSeqLengthsKv, GM_ADDR deqScale1, GM_ADDR quantScale1,
    GM_ADDR deqScale2, GM_ADDR quantScale2, GM_ADDR quantOffset2, GM_ADDR attentionOut,
    GM_ADDR softmaxLse, GM_ADDR workspace, GM_ADDR tiling)
{
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
  REGISTER_TILING_DEFAULT(BlitzSparseAttentionTilingData);
  GET_TILING_DATA_WITH_STRUCT(BlitzSparseAttentionTilingData, tilingData, tiling);
  blitz_npu::RunBlitzSparseAttention(query, key, value, attenMask, sabi, actualSeqLengths, actualSeqLengthsKv,
                                     attentionOut, softmaxLse, workspace, &tilingData);
}

// Kernel entry of BlitzSelectBlocks (aclnn_gen/spec.py SELECT_OP): inputs by index as
// op_host/blitz_sparse_attention_def.cpp registers them (query, key, actual_seq_lengths,
// actual_seq_lengths_kv), then the sabi output, the workspace and the tiling.
#include "select_entry.h"

extern "C" __global__ __aicore__ void blitz_select_blocks(GM_ADDR query, GM_ADDR key, GM_ADDR actualSeqLengths,
                                                          GM_ADDR actualSeqLengthsKv, GM_ADDR sabi,
                                                          GM_ADDR workspace, GM_ADDR tiling)
{
  KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
  REGISTER_TILING_DEFAULT(BlitzSelectBlocksTilingData);
  GET_TILING_DATA_WITH_STRUCT(BlitzSelectBlocksTilingData, tilingData, tiling);
  blitz_npu::RunBlitzSelectBlocks(query, key, actualSeqLengths, actualSeqLengthsKv, sabi, workspace, &tilingData);
}

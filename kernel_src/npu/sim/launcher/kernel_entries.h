// The NPU kernel entry (op_kernel/blitz_sparse_attention.cpp) compiled twice against the
// execution model, once per DTYPE_QUERY (kernel_half.cpp, kernel_bf16.cpp), as opbuild builds
// one binary per dtype combination.
#pragma once

#include "kernel_operator.h"

namespace blitz_npu_sim {

using KernelEntry = void (*)(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR pseShift, GM_ADDR attenMask,
                             GM_ADDR sabi, GM_ADDR actualSeqLengths, GM_ADDR actualSeqLengthsKv, GM_ADDR deqScale1,
                             GM_ADDR quantScale1, GM_ADDR deqScale2, GM_ADDR quantScale2, GM_ADDR quantOffset2,
                             GM_ADDR attentionOut, GM_ADDR softmaxLse, GM_ADDR workspace, GM_ADDR tiling);

KernelEntry kernel_entry_half();
KernelEntry kernel_entry_bf16();

}  // namespace blitz_npu_sim

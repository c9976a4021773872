// The select kernel entry (op_kernel/blitz_select_blocks.cpp) compiled against the execution
// model once per DTYPE_QUERY (select_kernel_half.cpp, select_kernel_bf16.cpp), as kernel_entries.h
// does for the attention.
#pragma once

#include "kernel_operator.h"

namespace blitz_npu_sim {

using SelectKernelEntry = void (*)(GM_ADDR query, GM_ADDR key, GM_ADDR actualSeqLengths, GM_ADDR actualSeqLengthsKv,
                                   GM_ADDR sabi, GM_ADDR workspace, GM_ADDR tiling);

SelectKernelEntry select_kernel_entry_half();
SelectKernelEntry select_kernel_entry_bf16();

}  // namespace blitz_npu_sim

// The select kernel entry for DTYPE_QUERY = bfloat16_t (select_kernel_entries.h), built the way
// kernel_bf16.cpp builds the attention's: the kernel header at global scope, the entry file in a
// namespace of its own (select_entry.h's inline function reads DTYPE_QUERY), a per-dtype name.
#define DTYPE_QUERY bfloat16_t
#include "select_kernel.h"
#include "select_kernel_entries.h"

namespace blitz_npu_sim_select_bf16 {
namespace blitz_npu {
using namespace ::blitz_npu;  // the shared kernel templates, found as blitz_npu::...
}  // namespace blitz_npu
#define blitz_select_blocks blitz_select_blocks_bf16
#include "blitz_select_blocks.cpp"
#undef blitz_select_blocks
}  // namespace blitz_npu_sim_select_bf16

blitz_npu_sim::SelectKernelEntry blitz_npu_sim::select_kernel_entry_bf16() {
  return &blitz_npu_sim_select_bf16::blitz_select_blocks_bf16;
}

// The kernel entry for DTYPE_QUERY = half (see kernel_entries.h). The kernel's headers are
// included first, at global scope, so their templates are shared by both binaries; the entry
// file itself goes in a namespace of its own, because kernel_entry.h's inline functions read
// DTYPE_QUERY and would otherwise collide (one definition rule) with the other dtype's. The
// extern "C" entry gets a per-dtype name for the same reason. Nothing in the kernel changes.
#define DTYPE_QUERY half
#include "blitz_attention_kernel.h"
#include "kernel_entries.h"

namespace blitz_npu_sim_half {
namespace blitz_npu {
using namespace ::blitz_npu;  // the shared kernel templates, found as blitz_npu::...
}  // namespace blitz_npu
#define blitz_sparse_attention blitz_sparse_attention_half
#include "blitz_sparse_attention.cpp"
#undef blitz_sparse_attention
}  // namespace blitz_npu_sim_half

blitz_npu_sim::KernelEntry blitz_npu_sim::kernel_entry_half() { return &blitz_npu_sim_half::blitz_sparse_attention_half; }

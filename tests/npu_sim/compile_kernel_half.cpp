// Milestone check: the NPU kernel's sources compile, unchanged, against the execution model's
// headers (half build). The entry's body is instantiated by taking its address.
#define DTYPE_QUERY half
#include "kernel_entry.h"

void *blitz_sim_compile_check_half() { return reinterpret_cast<void *>(&blitz_npu::RunBlitzSparseAttention); }

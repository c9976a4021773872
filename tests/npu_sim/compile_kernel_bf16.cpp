// Milestone check: the NPU kernel's sources compile, unchanged, against the execution model's
// headers (bfloat16_t build). The entry's body is instantiated by taking its address.
#define DTYPE_QUERY bfloat16_t
#include "kernel_entry.h"

void *blitz_sim_compile_check_bf16() { return reinterpret_cast<void *>(&blitz_npu::RunBlitzSparseAttention); }

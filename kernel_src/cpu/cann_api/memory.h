// Device memory bookkeeping shared with blitzCpuLiveObjects, and the capacity a caller passes
// down (blitzCpuSetMemoryCapacity).
#pragma once

#include <cstdint>

namespace blitz::cpu::cann_api {

int64_t live_allocations();

// The device's capacity for every thread's next allocations: 0 (the default) is the machine's
// physical memory; a larger value than that is the physical memory too.
void set_memory_capacity(uint64_t bytes);

}  // namespace blitz::cpu::cann_api

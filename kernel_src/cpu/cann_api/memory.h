// Device memory bookkeeping shared with blitzCpuLiveObjects.
#pragma once

#include <cstdint>

namespace blitz::cpu::cann_api {

int64_t live_allocations();

}  // namespace blitz::cpu::cann_api

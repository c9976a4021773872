// What libblitz_npu_sim.so's two ops share beside the launcher (defined in sim_backend.cpp):
// how a checked aclTensor becomes the dense GM range the NPU reads, and the record of the last
// launch that blitzNpuSimLastReport returns.
#pragma once

#include <cstdint>
#include <string>

#include "launcher.h"
#include "cann_api/handles.h"

namespace blitz::cpu::cann_api::backend {

size_t element_bytes(aclDataType t);
// An ACL dtype as the NPU plans name it (kOther: one neither op takes).
blitz_npu::DataKind kind_of(aclDataType t);
// The tensor's first element and bytes, read as dense row-major storage (the NPU's strides come
// from the layout); a non-contiguous view is refused (StatusError) naming `name`.
blitz_npu_sim::GmTensor dense(const aclTensor *t, const char *name);
// Keeps a finished launch's report for blitzNpuSimLastReport; plan_fields are its JSON fields.
void record_launch(blitz_sim::LaunchReport report, uint32_t block_dim, std::string plan_fields);

}  // namespace blitz::cpu::cann_api::backend

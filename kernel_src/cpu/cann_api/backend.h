// The seam between the aclnn layer (cann_api/, shared by every host device library) and the
// kernel a library runs. Each device library links cann_api/*.cpp and exactly one backend .cpp
// that implements these three functions: libblitz_cpu.so the CPU kernel
// (kernel_src/cpu/backend/cpu_backend.cpp), libblitz_npu_sim.so the NPU op run through the
// Ascend C execution model (kernel_src/npu/sim/launcher/sim_backend.cpp).
#pragma once

#include <string>

#include "op_plan.h"
#include "stream.h"

namespace blitz::cpu::cann_api::backend {

// Called by GetWorkspaceSize after build_plan has checked every argument: sets
// plan.workspace_bytes and whatever the backend keeps in plan.backend_state. Throws StatusError
// to refuse a call the checked arguments allow but this kernel does not support.
void prepare(OpPlan &plan, const OpArgs &args);

// Runs a prepared, non-empty plan on the stream's worker thread with the caller's workspace.
TaskStatus run(const OpPlan &plan, void *workspace);

// One line for blitzCpuDeviceInfo: which kernel runs and how (with this thread's settings).
std::string describe();

// blitzCpuSetKernelSettings: the device settings the caller passes down (a kernel path name or
// NULL, a thread count or 0) for the calls this thread plans next. Throws StatusError
// (ACL_ERROR_INVALID_PARAM) for a value the backend does not know.
void configure(const char *path, int num_threads);

// How refusals name the device a limit belongs to (the spec's titles, common/op_refusals.h):
// a shared limit refused by the runtime's checks then reads as it does from Python.
const char *title();

}  // namespace blitz::cpu::cann_api::backend

// aclInit / aclFinalize / aclrtSetDevice / aclrtGetDevice / aclrtResetDevice, and the library's own exports: its
// ABI version, a one-line device description, the device settings a caller passes down (kernel path and
// threads, memory capacity), and live handle counts for leak tests.
#include <atomic>

#include "backend.h"
#include "errors.h"
#include "exports.h"
#include "handles.h"
#include "kernel/attention_problem.h"
#include "memory.h"
#include "stream.h"

namespace blitz::cpu::cann_api {
namespace {

// The CPU device has one device, id 0.
constexpr int32_t kDeviceCount = 1;

#ifdef BLITZ_SANITIZED
constexpr const char *kBuildNote = "; sanitizer build";
#else
constexpr const char *kBuildNote = "";
#endif

std::atomic<bool> initialized{false};
thread_local int32_t current_device = -1;  // CANN's device context is per thread

}  // namespace
}  // namespace blitz::cpu::cann_api

using namespace blitz::cpu::cann_api;

BLITZ_EXPORT aclError aclInit(const char *configPath) {
  (void)configPath;  // no configuration on the CPU device
  return guarded("aclInit", [&] {
    require(!initialized.exchange(true), ACL_ERROR_REPEAT_INITIALIZE, "aclInit was already called");
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError aclFinalize(void) {
  return guarded("aclFinalize", [&] {
    require(initialized.exchange(false), ACL_ERROR_UNINITIALIZE, "aclInit was not called");
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError aclrtSetDevice(int32_t deviceId) {
  return guarded("aclrtSetDevice", [&] {
    require(deviceId >= 0 && deviceId < kDeviceCount, ACL_ERROR_INVALID_DEVICE,
            "device " + std::to_string(deviceId) + " does not exist; the CPU device has only device 0");
    current_device = deviceId;
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError aclrtGetDevice(int32_t *deviceId) {
  return guarded("aclrtGetDevice", [&] {
    require(deviceId != nullptr, ACL_ERROR_INVALID_PARAM, "deviceId is NULL");
    require(current_device >= 0, ACL_ERROR_INVALID_DEVICE, "no device set on this thread (aclrtSetDevice)");
    *deviceId = current_device;
    return ACL_SUCCESS;
  });
}

// CANN's cleanup call (its examples end with aclrtResetDevice, then aclFinalize). The CPU device
// holds no per-device context beyond this thread's current device, which it clears.
BLITZ_EXPORT aclError aclrtResetDevice(int32_t deviceId) {
  return guarded("aclrtResetDevice", [&] {
    require(deviceId >= 0 && deviceId < kDeviceCount, ACL_ERROR_INVALID_DEVICE,
            "device " + std::to_string(deviceId) + " does not exist; the CPU device has only device 0");
    if (current_device == deviceId) current_device = -1;
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError blitzAclAbiVersion(int32_t *version) {
  return guarded("blitzAclAbiVersion", [&] {
    require(version != nullptr, ACL_ERROR_INVALID_PARAM, "version is NULL");
    *version = BLITZ_ACL_ABI_VERSION;
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError blitzCpuDeviceInfo(const char **info) {
  return guarded("blitzCpuDeviceInfo", [&] {
    require(info != nullptr, ACL_ERROR_INVALID_PARAM, "info is NULL");
    thread_local std::string text;  // rebuilt each call: the backend reports the current settings
    text = backend::describe() + kBuildNote;
    *info = text.c_str();
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError blitzCpuSetKernelSettings(const char *path, int32_t numThreads) {
  return guarded("blitzCpuSetKernelSettings", [&] {
    backend::configure(path, numThreads);
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError blitzCpuSetMemoryCapacity(uint64_t bytes) {
  return guarded("blitzCpuSetMemoryCapacity", [&] {
    set_memory_capacity(bytes);
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError blitzCpuLiveObjects(int64_t *tensors, int64_t *intArrays, int64_t *executors,
                                          int64_t *streams, int64_t *allocations) {
  return guarded("blitzCpuLiveObjects", [&] {
    if (tensors) *tensors = tensor_registry().size();
    if (intArrays) *intArrays = int_array_registry().size();
    if (executors) *executors = executor_registry().size();
    if (streams) *streams = live_streams();
    if (allocations) *allocations = live_allocations();
    return ACL_SUCCESS;
  });
}

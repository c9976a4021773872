// aclrtMalloc / aclrtFree / aclrtMemcpy. On the CPU device, device memory is host memory;
// allocations are tracked so a double or foreign free is an error, not heap corruption.
//
// Device capacity: like an NPU's HBM, the CPU device has a size. A request that would take the
// live total past it fails with ACL_ERROR_BAD_ALLOC (the binding raises a MemoryError), before
// the allocator is asked, so an absurd size never reaches malloc (which ASan would abort on).
// The capacity is the machine's physical memory, or the smaller one a caller passed down
// (blitzCpuSetMemoryCapacity: the binding passes BLITZ_ACL_CPU_MAX_ALLOC_BYTES at each call, and
// tests set it to make a workspace allocation fail). The library reads no environment for it: a
// C caller that never sets it gets the physical memory. The capacity is the device's, not a
// thread's: one value for the process, read at each aclrtMalloc.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "errors.h"
#include "exports.h"
#include "memory.h"

namespace blitz::cpu::cann_api {
namespace {

// Matches an AVX-512 register / cache line, so the kernel may use aligned loads on workspace.
constexpr size_t kAllocAlignment = 64;

std::atomic<uint64_t> capacity_set{0};  // blitzCpuSetMemoryCapacity; 0: none

struct Allocations {
  std::mutex mutex;
  std::unordered_map<void *, size_t> live;  // pointer -> requested size
  size_t live_bytes = 0;
};

size_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return SIZE_MAX;  // unknown: no ceiling beyond the allocator's
  return static_cast<size_t>(pages) * static_cast<size_t>(page);
}

// The device's capacity in bytes and where it comes from (for the error message).
size_t capacity_bytes(std::string *source) {
  static const size_t physical = physical_memory_bytes();
  const uint64_t cap = capacity_set.load(std::memory_order_relaxed);
  if (cap == 0 || cap >= physical) {
    *source = "the machine's physical memory";
    return physical;
  }
  *source = "the capacity set by blitzCpuSetMemoryCapacity";
  return static_cast<size_t>(cap);
}

Allocations &allocations() {
  static Allocations a;
  return a;
}

}  // namespace

void set_memory_capacity(uint64_t bytes) { capacity_set.store(bytes, std::memory_order_relaxed); }

int64_t live_allocations() {
  auto &a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  return static_cast<int64_t>(a.live.size());
}

}  // namespace blitz::cpu::cann_api

using namespace blitz::cpu::cann_api;

BLITZ_EXPORT aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy) {
  return guarded("aclrtMalloc", [&] {
    require(devPtr != nullptr, ACL_ERROR_INVALID_PARAM, "devPtr is NULL");
    *devPtr = nullptr;
    require(size > 0, ACL_ERROR_INVALID_PARAM, "size is 0");
    const int32_t raw_policy = raw_enum(&policy);
    require(raw_policy == ACL_MEM_MALLOC_HUGE_FIRST || raw_policy == ACL_MEM_MALLOC_HUGE_ONLY ||
                raw_policy == ACL_MEM_MALLOC_NORMAL_ONLY,
            ACL_ERROR_INVALID_PARAM, "policy " + std::to_string(raw_policy) + " is not an aclrtMemMallocPolicy");
    std::string source;
    const size_t capacity = capacity_bytes(&source);
    auto &a = allocations();
    {
      // Reserve first, so concurrent requests cannot pass the capacity together.
      std::lock_guard<std::mutex> lock(a.mutex);
      require(size <= capacity && a.live_bytes <= capacity - size, ACL_ERROR_BAD_ALLOC,
              "cannot allocate " + std::to_string(size) + " bytes: " + std::to_string(a.live_bytes) +
                  " bytes are in use and the device holds " + std::to_string(capacity) + " (" + source + ")");
      a.live_bytes += size;
    }
    auto unreserve = [&] {
      std::lock_guard<std::mutex> lock(a.mutex);
      a.live_bytes -= size;
    };
    const size_t rounded = (size + kAllocAlignment - 1) / kAllocAlignment * kAllocAlignment;
    void *p = size <= SIZE_MAX - kAllocAlignment ? std::aligned_alloc(kAllocAlignment, rounded) : nullptr;
    if (p == nullptr) {
      unreserve();
      fail(ACL_ERROR_BAD_ALLOC, "cannot allocate " + std::to_string(size) + " bytes: out of host memory");
    }
    try {
      std::lock_guard<std::mutex> lock(a.mutex);
      a.live.emplace(p, size);
    } catch (...) {
      std::free(p);
      unreserve();
      throw;
    }
    *devPtr = p;
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError aclrtFree(void *devPtr) {
  return guarded("aclrtFree", [&] {
    require(devPtr != nullptr, ACL_ERROR_INVALID_PARAM, "devPtr is NULL");
    auto &a = allocations();
    {
      std::lock_guard<std::mutex> lock(a.mutex);
      auto it = a.live.find(devPtr);
      require(it != a.live.end(), ACL_ERROR_INVALID_PARAM, "not memory from aclrtMalloc (or already freed)");
      a.live_bytes -= it->second;
      a.live.erase(it);
    }
    std::free(devPtr);
    return ACL_SUCCESS;
  });
}

BLITZ_EXPORT aclError aclrtMemcpy(void *dst, size_t destMax, const void *src, size_t count,
                                  aclrtMemcpyKind kind) {
  return guarded("aclrtMemcpy", [&] {
    const int32_t raw_kind = raw_enum(&kind);
    require(raw_kind >= ACL_MEMCPY_HOST_TO_HOST && raw_kind <= ACL_MEMCPY_DEFAULT, ACL_ERROR_INVALID_PARAM,
            "kind " + std::to_string(raw_kind) + " is not an aclrtMemcpyKind");
    require(count <= destMax, ACL_ERROR_INVALID_PARAM,
            "count " + std::to_string(count) + " exceeds destMax " + std::to_string(destMax));
    if (count == 0) return ACL_SUCCESS;
    require(dst != nullptr && src != nullptr, ACL_ERROR_INVALID_PARAM, "dst or src is NULL");
    std::memmove(dst, src, count);  // host and device memory are the same here
    return ACL_SUCCESS;
  });
}

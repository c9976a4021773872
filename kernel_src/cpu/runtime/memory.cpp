// aclrtMalloc / aclrtFree / aclrtMemcpy. On the CPU device, device memory is host memory;
// allocations are tracked so a double or foreign free is an error, not heap corruption.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "errors.h"
#include "exports.h"
#include "memory.h"

namespace blitz::cpu::runtime {
namespace {

// Matches an AVX-512 register / cache line, so the kernel may use aligned loads on workspace.
constexpr size_t kAllocAlignment = 64;

struct Allocations {
  std::mutex mutex;
  std::unordered_map<void *, size_t> live;  // pointer -> requested size
};

Allocations &allocations() {
  static Allocations a;
  return a;
}

}  // namespace

int64_t live_allocations() {
  auto &a = allocations();
  std::lock_guard<std::mutex> lock(a.mutex);
  return static_cast<int64_t>(a.live.size());
}

}  // namespace blitz::cpu::runtime

using namespace blitz::cpu::runtime;

BLITZ_EXPORT aclError aclrtMalloc(void **devPtr, size_t size, aclrtMemMallocPolicy policy) {
  return guarded("aclrtMalloc", [&] {
    require(devPtr != nullptr, ACL_ERROR_INVALID_PARAM, "devPtr is NULL");
    *devPtr = nullptr;
    require(size > 0, ACL_ERROR_INVALID_PARAM, "size is 0");
    const int32_t raw_policy = raw_enum(&policy);
    require(raw_policy == ACL_MEM_MALLOC_HUGE_FIRST || raw_policy == ACL_MEM_MALLOC_HUGE_ONLY ||
                raw_policy == ACL_MEM_MALLOC_NORMAL_ONLY,
            ACL_ERROR_INVALID_PARAM, "policy " + std::to_string(raw_policy) + " is not an aclrtMemMallocPolicy");
    require(size <= SIZE_MAX - kAllocAlignment, ACL_ERROR_BAD_ALLOC,
            "cannot allocate " + std::to_string(size) + " bytes");
    const size_t rounded = (size + kAllocAlignment - 1) / kAllocAlignment * kAllocAlignment;
    void *p = std::aligned_alloc(kAllocAlignment, rounded);
    require(p != nullptr, ACL_ERROR_BAD_ALLOC, "cannot allocate " + std::to_string(size) + " bytes");
    auto &a = allocations();
    try {
      std::lock_guard<std::mutex> lock(a.mutex);
      a.live.emplace(p, size);
    } catch (...) {
      std::free(p);
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
      require(a.live.erase(devPtr) == 1, ACL_ERROR_INVALID_PARAM,
              "not memory from aclrtMalloc (or already freed)");
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

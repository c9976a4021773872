// The objects behind CANN's opaque handles (aclTensor, aclIntArray, aclOpExecutor) and the
// registries of live handles. Every handle a caller passes in is looked up in its registry
// first, so a stale or foreign pointer gets ACLNN_ERR_PARAM_INVALID instead of a crash, and
// blitzCpuLiveObjects can report what is still alive (leak tests).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <vector>

#include "aclnnop/aclnn_blitz_sparse_attention.h"

namespace blitz::cpu::cann_api {
struct OpPlan;    // op_plan.h
class OpWork;  // op_work.h
}

// A strided view onto caller memory; dims, strides and offset in elements (CANN's convention).
struct aclTensor {
  std::vector<int64_t> view_dims;
  std::vector<int64_t> strides;
  std::vector<int64_t> storage_dims;
  aclDataType dtype = ACL_DT_UNDEFINED;
  aclFormat format = ACL_FORMAT_UNDEFINED;
  int64_t offset = 0;
  void *data = nullptr;  // start of storage; element 0 of the view is at data + offset
};

struct aclIntArray {
  std::vector<int64_t> values;
};

// A checked, ready-to-run call. The plan is shared so a queued run keeps it alive after the
// executor handle is freed (non-repeatable executors die in the run call, as in CANN).
// Exactly one of plan (BlitzSparseAttention) and work (another op of the library) is set.
struct aclOpExecutor {
  std::shared_ptr<const blitz::cpu::cann_api::OpPlan> plan;
  std::shared_ptr<const blitz::cpu::cann_api::OpWork> work;
  bool repeatable = false;
};

namespace blitz::cpu::cann_api {

// A set of live pointers of one kind, safe to use from any thread.
template <class T>
class Registry {
 public:
  void add(const T *p) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.insert(p);
  }
  // Removes p; false if it was not live.
  bool remove(const T *p) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.erase(p) == 1;
  }
  bool contains(const T *p) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.count(p) == 1;
  }
  int64_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int64_t>(live_.size());
  }

 private:
  mutable std::mutex mutex_;
  std::unordered_set<const T *> live_;
};

Registry<aclTensor> &tensor_registry();
Registry<aclIntArray> &int_array_registry();
Registry<aclOpExecutor> &executor_registry();

// Bytes per element of the dtypes the library handles; 0 for any other.
int64_t element_size(aclDataType dtype);
const char *dtype_name(aclDataType dtype);
const char *format_name(aclFormat format);

}  // namespace blitz::cpu::cann_api

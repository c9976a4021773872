// aclCreateTensor / aclDestroyTensor / aclCreateIntArray / aclDestroyIntArray: descriptors
// over caller memory. A descriptor is checked once here (known dtype and format, non-negative
// dims and strides, the view inside its storage), so the op's checks can trust its geometry.
#include <limits>

#include "errors.h"
#include "exports.h"
#include "handles.h"

namespace blitz::cpu::cann_api {

// CANN's descriptors hold at most 8 dims.
constexpr uint64_t kMaxDims = 8;

Registry<aclTensor> &tensor_registry() {
  static Registry<aclTensor> registry;
  return registry;
}
Registry<aclIntArray> &int_array_registry() {
  static Registry<aclIntArray> registry;
  return registry;
}

int64_t element_size(aclDataType dtype) {
  switch (dtype) {
    case ACL_FLOAT: case ACL_INT32: case ACL_UINT32: return 4;
    case ACL_FLOAT16: case ACL_BF16: case ACL_INT16: case ACL_UINT16: return 2;
    case ACL_INT8: case ACL_UINT8: case ACL_BOOL: return 1;
    case ACL_INT64: case ACL_UINT64: case ACL_DOUBLE: return 8;
    default: return 0;
  }
}

const char *dtype_name(aclDataType dtype) {
  switch (dtype) {
    case ACL_FLOAT: return "ACL_FLOAT";
    case ACL_FLOAT16: return "ACL_FLOAT16";
    case ACL_BF16: return "ACL_BF16";
    case ACL_INT8: return "ACL_INT8";
    case ACL_INT16: return "ACL_INT16";
    case ACL_INT32: return "ACL_INT32";
    case ACL_INT64: return "ACL_INT64";
    case ACL_UINT8: return "ACL_UINT8";
    case ACL_UINT16: return "ACL_UINT16";
    case ACL_UINT32: return "ACL_UINT32";
    case ACL_UINT64: return "ACL_UINT64";
    case ACL_DOUBLE: return "ACL_DOUBLE";
    case ACL_BOOL: return "ACL_BOOL";
    default: return "an unknown aclDataType";
  }
}

const char *format_name(aclFormat format) {
  switch (format) {
    case ACL_FORMAT_ND: return "ACL_FORMAT_ND";
    case ACL_FORMAT_NCHW: return "ACL_FORMAT_NCHW";
    case ACL_FORMAT_NHWC: return "ACL_FORMAT_NHWC";
    case ACL_FORMAT_NCL: return "ACL_FORMAT_NCL";
    default: return "an unknown aclFormat";
  }
}

namespace {

std::vector<int64_t> copy_dims(const int64_t *dims, uint64_t count, const char *what) {
  require(count <= kMaxDims, ACLNN_ERR_PARAM_INVALID,
          std::string(what) + " has " + std::to_string(count) + " entries; at most 8 are supported");
  require(count == 0 || dims != nullptr, ACLNN_ERR_PARAM_NULLPTR,
          std::string(what) + " is NULL but its length is " + std::to_string(count));
  std::vector<int64_t> out(dims, dims + count);
  for (int64_t d : out) {
    require(d >= 0, ACLNN_ERR_PARAM_INVALID,
            std::string(what) + " holds a negative value (" + std::to_string(d) + ")");
  }
  return out;
}

// Product of dims; fails instead of overflowing.
int64_t checked_numel(const std::vector<int64_t> &dims, const char *what) {
  int64_t n = 1;
  for (int64_t d : dims) {
    require(!__builtin_mul_overflow(n, d, &n), ACLNN_ERR_PARAM_INVALID,
            std::string(what) + " has more elements than fit in int64");
  }
  return n;
}

aclTensor *create_tensor(const int64_t *view_dims, uint64_t view_count, int32_t raw_dtype,
                         const int64_t *stride, int64_t offset, int32_t raw_format,
                         const int64_t *storage_dims, uint64_t storage_count, void *data) {
  auto t = std::make_unique<aclTensor>();
  t->view_dims = copy_dims(view_dims, view_count, "viewDims");
  t->strides = copy_dims(stride, view_count, "stride");
  t->storage_dims = copy_dims(storage_dims, storage_count, "storageDims");
  // Cast only values inside the enum's range (a cast from outside it is undefined behaviour).
  const bool dtype_known = raw_dtype >= ACL_FLOAT && raw_dtype <= ACL_BF16 &&
                           element_size(static_cast<aclDataType>(raw_dtype)) != 0;
  require(dtype_known, ACLNN_ERR_PARAM_INVALID,
          "dataType " + std::to_string(raw_dtype) + " is not an aclDataType this library handles");
  const auto dtype = static_cast<aclDataType>(raw_dtype);
  require(raw_format == ACL_FORMAT_ND || raw_format == ACL_FORMAT_NCHW || raw_format == ACL_FORMAT_NHWC ||
              raw_format == ACL_FORMAT_NCL,
          ACLNN_ERR_PARAM_INVALID, "format " + std::to_string(raw_format) + " is not a known aclFormat");
  const auto format = static_cast<aclFormat>(raw_format);
  require(offset >= 0, ACLNN_ERR_PARAM_INVALID, "offset " + std::to_string(offset) + " is negative");
  t->dtype = dtype;
  t->format = format;
  t->offset = offset;
  t->data = data;

  // The last element the view reaches must lie inside the storage.
  const int64_t view_numel = checked_numel(t->view_dims, "the view");
  const int64_t storage_numel = checked_numel(t->storage_dims, "the storage");
  if (view_numel > 0) {
    int64_t last = offset;
    for (size_t i = 0; i < t->view_dims.size(); ++i) {
      int64_t step = 0;
      require(!__builtin_mul_overflow(t->view_dims[i] - 1, t->strides[i], &step) &&
                  !__builtin_add_overflow(last, step, &last),
              ACLNN_ERR_PARAM_INVALID, "the view's extent overflows int64");
    }
    require(last < storage_numel, ACLNN_ERR_PARAM_INVALID,
            "the view reaches element " + std::to_string(last) + " but the storage holds " +
                std::to_string(storage_numel) + " elements");
    int64_t bytes = 0;
    require(!__builtin_mul_overflow(storage_numel, element_size(dtype), &bytes), ACLNN_ERR_PARAM_INVALID,
            "the storage's size in bytes overflows int64");
  }
  tensor_registry().add(t.get());
  return t.release();
}

}  // namespace
}  // namespace blitz::cpu::cann_api

using namespace blitz::cpu::cann_api;

BLITZ_EXPORT aclTensor *aclCreateTensor(const int64_t *viewDims, uint64_t viewDimsNum, aclDataType dataType,
                                        const int64_t *stride, int64_t offset, aclFormat format,
                                        const int64_t *storageDims, uint64_t storageDimsNum,
                                        void *tensorData) {
  aclTensor *out = nullptr;
  guarded("aclCreateTensor", [&] {
    out = create_tensor(viewDims, viewDimsNum, raw_enum(&dataType), stride, offset, raw_enum(&format),
                        storageDims, storageDimsNum, tensorData);
    return ACLNN_SUCCESS;
  });
  return out;
}

BLITZ_EXPORT aclnnStatus aclDestroyTensor(const aclTensor *tensor) {
  return guarded("aclDestroyTensor", [&] {
    if (tensor == nullptr) return ACLNN_SUCCESS;  // like free(NULL)
    require(tensor_registry().remove(tensor), ACLNN_ERR_PARAM_INVALID,
            "not a live aclTensor (never created here, or already destroyed)");
    delete tensor;
    return ACLNN_SUCCESS;
  });
}

BLITZ_EXPORT aclIntArray *aclCreateIntArray(const int64_t *value, uint64_t size) {
  aclIntArray *out = nullptr;
  guarded("aclCreateIntArray", [&] {
    require(size == 0 || value != nullptr, ACLNN_ERR_PARAM_NULLPTR,
            "value is NULL but size is " + std::to_string(size));
    // Guards a garbage size before it becomes a huge allocation.
    require(size <= (uint64_t{1} << 32), ACLNN_ERR_PARAM_INVALID,
            "size " + std::to_string(size) + " is implausibly large");
    auto a = std::make_unique<aclIntArray>();
    a->values.assign(value, value + size);
    int_array_registry().add(a.get());
    out = a.release();
    return ACLNN_SUCCESS;
  });
  return out;
}

BLITZ_EXPORT aclnnStatus aclDestroyIntArray(const aclIntArray *array) {
  return guarded("aclDestroyIntArray", [&] {
    if (array == nullptr) return ACLNN_SUCCESS;
    require(int_array_registry().remove(array), ACLNN_ERR_PARAM_INVALID,
            "not a live aclIntArray (never created here, or already destroyed)");
    delete array;
    return ACLNN_SUCCESS;
  });
}

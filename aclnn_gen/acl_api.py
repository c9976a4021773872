"""CANN's types, enum values, status codes and the runtime subset, as data.

Values are CANN's (shared/CANN_FACTS.md); each group names the CANN header it comes from so a
reader can check it. The CPU device library implements exactly these functions; the binding's
cffi declarations and the public header are rendered from the same tuples (render_c.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

from .spec import ABI_VERSION


@dataclass(frozen=True)
class Constant:
    name: str
    value: int


@dataclass(frozen=True)
class ConstantGroup:
    source: str  # the CANN header that defines these values
    constants: Tuple[Constant, ...]


@dataclass(frozen=True)
class Enum:
    name: str
    source: str
    members: Tuple[Constant, ...]


@dataclass(frozen=True)
class Function:
    ret: str
    name: str
    params: Tuple[Tuple[str, str], ...]  # (C type, name); a type ending in '*' binds to the name
    doc: str = ""


def _c(*pairs) -> Tuple[Constant, ...]:
    return tuple(Constant(n, v) for n, v in pairs)


OPAQUE_TYPES = ("aclTensor", "aclIntArray", "aclScalar", "aclOpExecutor")

SCALAR_TYPEDEFS = (  # (C type, typedef name, source)
    ("int", "aclError", "acl/acl_base.h"),
    ("int32_t", "aclnnStatus", "aclnn/acl_meta.h"),
    ("void *", "aclrtStream", "acl/acl_base.h"),
)

STATUS_CODES = (
    ConstantGroup("acl/acl_base.h", _c(
        ("ACL_SUCCESS", 0),
        ("ACL_ERROR_INVALID_PARAM", 100000),
        ("ACL_ERROR_UNINITIALIZE", 100001),
        ("ACL_ERROR_REPEAT_INITIALIZE", 100002),
        ("ACL_ERROR_BAD_ALLOC", 200000),
        ("ACL_ERROR_INVALID_DEVICE", 200002),
        ("ACL_ERROR_INTERNAL_ERROR", 500000),
        ("ACL_ERROR_RT_STREAM_SYNC_TIMEOUT", 507046),
    )),
    ConstantGroup("aclnn/acl_meta.h", _c(
        ("ACLNN_SUCCESS", 0),
        ("ACLNN_ERR_PARAM_NULLPTR", 161001),
        ("ACLNN_ERR_PARAM_INVALID", 161002),
        ("ACLNN_ERR_RUNTIME_ERROR", 361001),
        ("ACLNN_ERR_INNER", 561000),
    )),
)

ENUMS = (
    Enum("aclDataType", "acl/acl_base.h", _c(
        ("ACL_DT_UNDEFINED", -1), ("ACL_FLOAT", 0), ("ACL_FLOAT16", 1), ("ACL_INT8", 2),
        ("ACL_INT32", 3), ("ACL_UINT8", 4), ("ACL_INT16", 6), ("ACL_UINT16", 7),
        ("ACL_UINT32", 8), ("ACL_INT64", 9), ("ACL_UINT64", 10), ("ACL_DOUBLE", 11),
        ("ACL_BOOL", 12), ("ACL_BF16", 27),
    )),
    Enum("aclFormat", "acl/acl_base.h", _c(
        ("ACL_FORMAT_UNDEFINED", -1), ("ACL_FORMAT_NCHW", 0), ("ACL_FORMAT_NHWC", 1),
        ("ACL_FORMAT_ND", 2), ("ACL_FORMAT_NCL", 47),
    )),
    Enum("aclrtMemMallocPolicy", "acl/acl_rt.h", _c(
        ("ACL_MEM_MALLOC_HUGE_FIRST", 0), ("ACL_MEM_MALLOC_HUGE_ONLY", 1),
        ("ACL_MEM_MALLOC_NORMAL_ONLY", 2),
    )),
    Enum("aclrtMemcpyKind", "acl/acl_rt.h", _c(
        ("ACL_MEMCPY_HOST_TO_HOST", 0), ("ACL_MEMCPY_HOST_TO_DEVICE", 1),
        ("ACL_MEMCPY_DEVICE_TO_HOST", 2), ("ACL_MEMCPY_DEVICE_TO_DEVICE", 3),
        ("ACL_MEMCPY_DEFAULT", 4),
    )),
)

# Spec dtype names -> aclDataType member / OpDef (ge::) name.
DTYPES = {
    "float32": ("ACL_FLOAT", "DT_FLOAT"),
    "float16": ("ACL_FLOAT16", "DT_FLOAT16"),
    "bfloat16": ("ACL_BF16", "DT_BF16"),
    "int8": ("ACL_INT8", "DT_INT8"),
    "uint8": ("ACL_UINT8", "DT_UINT8"),
    "bool": ("ACL_BOOL", "DT_BOOL"),
    "uint16": ("ACL_UINT16", "DT_UINT16"),
    "int64": ("ACL_INT64", "DT_INT64"),
    "uint64": ("ACL_UINT64", "DT_UINT64"),
}
FORMATS = {"ND": ("ACL_FORMAT_ND", "FORMAT_ND")}

RUNTIME_FUNCTIONS = (  # acl/acl.h, acl/acl_rt.h (libascendcl)
    Function("aclError", "aclInit", (("const char *", "configPath"),),
             "once per process; configPath may be NULL"),
    Function("aclError", "aclFinalize", ()),
    Function("const char *", "aclGetRecentErrMsg", (),
             "message of this thread's most recent failure; valid until its next call"),
    Function("aclError", "aclrtSetDevice", (("int32_t", "deviceId"),)),
    Function("aclError", "aclrtGetDevice", (("int32_t *", "deviceId"),)),
    Function("aclError", "aclrtResetDevice", (("int32_t", "deviceId"),),
             "releases this process's resources on the device (the CPU device: checks the id)"),
    Function("aclError", "aclrtCreateStream", (("aclrtStream *", "stream"),)),
    Function("aclError", "aclrtDestroyStream", (("aclrtStream", "stream"),)),
    Function("aclError", "aclrtSynchronizeStream", (("aclrtStream", "stream"),),
             "waits for the stream's queued work; returns its first error"),
    Function("aclError", "aclrtSynchronizeStreamWithTimeout", (("aclrtStream", "stream"), ("int32_t", "timeout")),
             "as aclrtSynchronizeStream, giving up after timeout ms (-1: never) with "
             "ACL_ERROR_RT_STREAM_SYNC_TIMEOUT, the work still queued"),
    Function("aclError", "aclrtMalloc", (("void **", "devPtr"), ("size_t", "size"),
                                         ("aclrtMemMallocPolicy", "policy"))),
    Function("aclError", "aclrtFree", (("void *", "devPtr"),)),
    Function("aclError", "aclrtMemcpy", (("void *", "dst"), ("size_t", "destMax"),
                                         ("const void *", "src"), ("size_t", "count"),
                                         ("aclrtMemcpyKind", "kind"))),
)

OPBASE_FUNCTIONS = (  # aclnn/acl_meta.h (libnnopbase)
    Function("aclTensor *", "aclCreateTensor", (
        ("const int64_t *", "viewDims"), ("uint64_t", "viewDimsNum"), ("aclDataType", "dataType"),
        ("const int64_t *", "stride"), ("int64_t", "offset"), ("aclFormat", "format"),
        ("const int64_t *", "storageDims"), ("uint64_t", "storageDimsNum"),
        ("void *", "tensorData")),
        "strides and offset in elements; returns NULL on bad arguments (see aclGetRecentErrMsg)"),
    Function("aclnnStatus", "aclDestroyTensor", (("const aclTensor *", "tensor"),)),
    Function("aclIntArray *", "aclCreateIntArray", (("const int64_t *", "value"),
                                                    ("uint64_t", "size"))),
    Function("aclnnStatus", "aclDestroyIntArray", (("const aclIntArray *", "array"),)),
    Function("aclnnStatus", "aclSetAclOpExecutorRepeatable", (("aclOpExecutor *", "executor"),)),
    Function("aclnnStatus", "aclDestroyAclOpExecutor", (("aclOpExecutor *", "executor"),),
             "only for repeatable executors or ones never run"),
)

# The CPU device library's own exports (not CANN's): what the binding checks after loading.
BLITZ_CONSTANTS = ConstantGroup("blitz_acl (this project)", _c(("BLITZ_ACL_ABI_VERSION", ABI_VERSION),))

BLITZ_FUNCTIONS = (
    Function("aclError", "blitzAclAbiVersion", (("int32_t *", "version"),),
             "the BLITZ_ACL_ABI_VERSION the library was built with"),
    Function("aclError", "blitzCpuDeviceInfo", (("const char **", "info"),),
             "one line: the kernel path in use and the CPU features found"),
    Function("aclError", "blitzCpuSetKernelSettings", (("const char *", "path"), ("int32_t", "numThreads")),
             "the device settings for the calls this thread plans next: a kernel path name (NULL, \"\" or "
             "\"auto\": the fastest this CPU has) and a thread count (0: every CPU this process may run on); "
             "a thread that never calls it gets BLITZ_ACL_CPU_PATH / BLITZ_ACL_NUM_THREADS, read once"),
    Function("aclError", "blitzCpuSetMemoryCapacity", (("uint64_t", "bytes"),),
             "the device's memory capacity for every thread's next aclrtMalloc (an allocation past it fails "
             "with ACL_ERROR_BAD_ALLOC): 0 or more than the machine's physical memory means the physical "
             "memory, which a caller that never calls it gets; the library reads no environment for it"),
    Function("aclError", "blitzCpuLiveObjects", (
        ("int64_t *", "tensors"), ("int64_t *", "intArrays"), ("int64_t *", "executors"),
        ("int64_t *", "streams"), ("int64_t *", "allocations")),
        "live handle counts, for leak tests"),
)

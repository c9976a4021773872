/*
 * A C user of BlitzSparseAttention: runs the two-phase call through the public headers with
 * CANN's runtime calls (device buffers, a stream, host<->device copies), compares the result
 * with values the float64 Python reference wrote, and checks the library's refusals.
 *
 * Usage: blitz_c_abi_test CASE_FILE [float16]
 * CASE_FILE (little endian, written by tests/test_c_abi.py):
 *   int64 B, N, Nkv, Sq, Skv, D, R, W, bq, bkv, sparse_mode
 *   float32 query [B, N, Sq, D], key [B, Nkv, Skv, D], value [B, Nkv, Skv, D]   (BNSD)
 *     (with "float16": these three as IEEE half bits, and the output is read as float16: the
 *     NPU execution model's library, libblitz_npu_sim.so, takes fp16 / bf16 only)
 *   uint16  sabi [B, N, R, W]
 *   float32 expected out [B, N, Sq, D], expected lse [B, N, Sq]
 *   float64 atol
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl.h"
#include "aclnnop/aclnn_blitz_sparse_attention.h"
#include "blitz_acl/blitz_cpu.h"

enum { kHeaderFields = 11 };

#define CHECK(call)                                                                  \
  do {                                                                               \
    long status_ = (long)(call);                                                     \
    if (status_ != 0) {                                                              \
      fprintf(stderr, "%s:%d: %s returned %ld: %s\n", __FILE__, __LINE__, #call,     \
              status_, aclGetRecentErrMsg());                                        \
      exit(1);                                                                       \
    }                                                                                \
  } while (0)

static void *read_exact(FILE *f, size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (p == NULL || fread(p, 1, bytes, f) != bytes) {
    fprintf(stderr, "case file: short read (%zu bytes)\n", bytes);
    exit(1);
  }
  return p;
}

/* A contiguous ND tensor over device memory holding `bytes` copied from host. */
typedef struct {
  void *device;
  aclTensor *tensor;
} DeviceTensor;

static DeviceTensor device_tensor(const int64_t *dims, uint64_t rank, aclDataType dtype, size_t elem,
                                  const void *host) {
  DeviceTensor t;
  int64_t strides[8];
  int64_t numel = 1;
  for (uint64_t i = rank; i-- > 0;) {
    strides[i] = numel;
    numel *= dims[i];
  }
  size_t bytes = (size_t)numel * elem;
  CHECK(aclrtMalloc(&t.device, bytes, ACL_MEM_MALLOC_HUGE_FIRST));
  if (host != NULL) CHECK(aclrtMemcpy(t.device, bytes, host, bytes, ACL_MEMCPY_HOST_TO_DEVICE));
  t.tensor = aclCreateTensor(dims, rank, dtype, strides, 0, ACL_FORMAT_ND, dims, rank, t.device);
  if (t.tensor == NULL) {
    fprintf(stderr, "aclCreateTensor failed: %s\n", aclGetRecentErrMsg());
    exit(1);
  }
  return t;
}

static void free_device_tensor(DeviceTensor *t) {
  CHECK(aclDestroyTensor(t->tensor));
  CHECK(aclrtFree(t->device));
}

/* IEEE binary16 bits -> float (normals, subnormals, inf, NaN). */
static float half_to_float(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
  float magnitude;
  if (exponent == 0) magnitude = ldexpf((float)mantissa, -24);
  else if (exponent == 31) magnitude = mantissa ? NAN : INFINITY;
  else magnitude = ldexpf((float)(mantissa | 0x400), exponent - 25);
  return sign ? -magnitude : magnitude;
}

static double max_abs_diff(const float *a, const float *b, int64_t n) {
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (isinf(a[i]) && isinf(b[i]) && (a[i] < 0) == (b[i] < 0)) continue; /* -inf == -inf */
    double d = fabs((double)a[i] - (double)b[i]);
    if (!(d <= worst)) worst = d; /* NaN propagates as the worst */
  }
  return worst;
}

int main(int argc, char **argv) {
  if (argc != 2 && !(argc == 3 && strcmp(argv[2], "float16") == 0)) {
    fprintf(stderr, "usage: %s CASE_FILE [float16]\n", argv[0]);
    return 2;
  }
  const int fp16 = argc == 3;
  const aclDataType in_dtype = fp16 ? ACL_FLOAT16 : ACL_FLOAT;
  const size_t in_elem = fp16 ? sizeof(uint16_t) : sizeof(float);
  FILE *f = fopen(argv[1], "rb");
  if (f == NULL) {
    perror(argv[1]);
    return 2;
  }
  int64_t *h = read_exact(f, sizeof(int64_t) * kHeaderFields);
  const int64_t B = h[0], N = h[1], NKV = h[2], SQ = h[3], SKV = h[4], D = h[5], R = h[6], W = h[7];
  const int64_t block[2] = {h[8], h[9]};
  const int64_t sparse_mode = h[10];
  const int64_t q_numel = B * N * SQ * D, kv_numel = B * NKV * SKV * D, lse_numel = B * N * SQ;
  void *q = read_exact(f, in_elem * q_numel);
  void *k = read_exact(f, in_elem * kv_numel);
  void *v = read_exact(f, in_elem * kv_numel);
  uint16_t *sabi = read_exact(f, sizeof(uint16_t) * B * N * R * W);
  float *expected_out = read_exact(f, sizeof(float) * q_numel);
  float *expected_lse = read_exact(f, sizeof(float) * lse_numel);
  double *atol = read_exact(f, sizeof(double));
  fclose(f);

  int32_t abi = 0;
  CHECK(blitzAclAbiVersion(&abi));
  if (abi != BLITZ_ACL_ABI_VERSION) {
    fprintf(stderr, "library ABI %d, header ABI %d\n", abi, BLITZ_ACL_ABI_VERSION);
    return 1;
  }
  CHECK(aclInit(NULL));
  CHECK(aclrtSetDevice(0));
  aclrtStream stream = NULL;
  CHECK(aclrtCreateStream(&stream));

  const int64_t q_dims[4] = {B, N, SQ, D}, kv_dims[4] = {B, NKV, SKV, D};
  const int64_t sabi_dims[4] = {B, N, R, W}, lse_dims[3] = {B, N, SQ};
  DeviceTensor tq = device_tensor(q_dims, 4, in_dtype, in_elem, q);
  DeviceTensor tk = device_tensor(kv_dims, 4, in_dtype, in_elem, k);
  DeviceTensor tv = device_tensor(kv_dims, 4, in_dtype, in_elem, v);
  DeviceTensor tsabi = device_tensor(sabi_dims, 4, ACL_UINT16, sizeof(uint16_t), sabi);
  DeviceTensor tout = device_tensor(q_dims, 4, in_dtype, in_elem, NULL);
  DeviceTensor tlse = device_tensor(lse_dims, 3, ACL_FLOAT, sizeof(float), NULL);
  aclIntArray *block_shape = aclCreateIntArray(block, 2);
  char layout[] = "BNSD";
  const double scale = 1.0 / sqrt((double)D);

  /* A refusal first: a NULL query is ACLNN_ERR_PARAM_NULLPTR with a message. */
  uint64_t workspace_size = 0;
  aclOpExecutor *executor = NULL;
  aclnnStatus refused = aclnnBlitzSparseAttentionGetWorkspaceSize(
      NULL, tk.tensor, tv.tensor, NULL, NULL, tsabi.tensor, NULL, NULL, NULL, NULL, NULL, NULL, NULL, N,
      scale, 2147483647, 0, layout, NKV, sparse_mode, 1, true, block_shape, tout.tensor, tlse.tensor,
      &workspace_size, &executor);
  if (refused != ACLNN_ERR_PARAM_NULLPTR || strstr(aclGetRecentErrMsg(), "query is NULL") == NULL) {
    fprintf(stderr, "NULL query: status %d, message '%s'\n", (int)refused, aclGetRecentErrMsg());
    return 1;
  }

  CHECK(aclnnBlitzSparseAttentionGetWorkspaceSize(
      tq.tensor, tk.tensor, tv.tensor, NULL, NULL, tsabi.tensor, NULL, NULL, NULL, NULL, NULL, NULL, NULL, N,
      scale, 2147483647, 0, layout, NKV, sparse_mode, 1, true, block_shape, tout.tensor, tlse.tensor,
      &workspace_size, &executor));
  void *workspace = NULL;
  if (workspace_size > 0) CHECK(aclrtMalloc(&workspace, workspace_size, ACL_MEM_MALLOC_HUGE_FIRST));
  CHECK(aclnnBlitzSparseAttention(workspace, workspace_size, executor, stream));
  /* Descriptors may go right after the run call; the workspace only after the stream is done. */
  CHECK(aclDestroyIntArray(block_shape));
  CHECK(aclrtSynchronizeStream(stream));
  if (workspace != NULL) CHECK(aclrtFree(workspace));

  float *out = malloc(sizeof(float) * q_numel);
  float *lse = malloc(sizeof(float) * lse_numel);
  if (fp16) {
    uint16_t *bits = malloc(sizeof(uint16_t) * q_numel);
    CHECK(aclrtMemcpy(bits, sizeof(uint16_t) * q_numel, tout.device, sizeof(uint16_t) * q_numel,
                      ACL_MEMCPY_DEVICE_TO_HOST));
    for (int64_t i = 0; i < q_numel; ++i) out[i] = half_to_float(bits[i]);
    free(bits);
  } else {
    CHECK(aclrtMemcpy(out, sizeof(float) * q_numel, tout.device, sizeof(float) * q_numel,
                      ACL_MEMCPY_DEVICE_TO_HOST));
  }
  CHECK(aclrtMemcpy(lse, sizeof(float) * lse_numel, tlse.device, sizeof(float) * lse_numel,
                    ACL_MEMCPY_DEVICE_TO_HOST));
  const double out_err = max_abs_diff(out, expected_out, q_numel);
  const double lse_err = max_abs_diff(lse, expected_lse, lse_numel);

  free_device_tensor(&tq);
  free_device_tensor(&tk);
  free_device_tensor(&tv);
  free_device_tensor(&tsabi);
  free_device_tensor(&tout);
  free_device_tensor(&tlse);
  CHECK(aclrtDestroyStream(stream));
  CHECK(aclFinalize());

  int64_t live[5];
  CHECK(blitzCpuLiveObjects(&live[0], &live[1], &live[2], &live[3], &live[4]));
  const int leaked = live[0] || live[1] || live[2] || live[3] || live[4];
  printf("max |out - ref| = %.3g, max |lse - ref| = %.3g (atol %.3g), live objects %s\n", out_err,
         lse_err, *atol, leaked ? "LEAKED" : "0");
  const int ok = out_err <= *atol && lse_err <= *atol && !leaked;
  free(h), free(q), free(k), free(v), free(sabi), free(expected_out), free(expected_lse), free(atol);
  free(out), free(lse);
  return ok ? 0 : 1;
}

/*
 * BlitzSparseAttention called the way the original operator's documentation shows it
 * (ops-transformer experimental/attention/blitz_sparse_attention/docs/aclnnBlitzSparseAttention.md,
 * "调用示例"): include acl/acl.h and aclnnop/aclnn_blitz_sparse_attention.h; aclInit,
 * aclrtSetDevice, aclrtCreateStream; aclrtMalloc + aclrtMemcpy + aclCreateTensor per tensor; the
 * two-phase call with the newest 27-parameter list; aclrtSynchronizeStream; copy back; then the
 * documented cleanup (aclDestroyTensor, aclDestroyIntArray, aclrtFree, aclrtDestroyStream,
 * aclrtResetDevice, aclFinalize). Nothing here is specific to blitz_acl: built against CANN it
 * would only need CANN's include path and -lascendcl -lnnopbase -lcust_opapi instead of
 * -lblitz_cpu (the example's securec.h include is left out: it is unused there).
 *
 * Unlike the documentation's example it checks its result: out and lse against a double
 * reference computed here from the same fp16 inputs, with the sabi, the mask (bool, padded to a
 * key length that is a multiple of 32 as the docs recommend, so larger than Skv) and the actual
 * lengths. blockShape is NULL: the original's (128, 128).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl/acl.h"
#include "aclnnop/aclnn_blitz_sparse_attention.h"

#define CHECK_RET(cond, ...)      \
  do {                            \
    if (!(cond)) {                \
      printf(__VA_ARGS__);        \
      return 1;                   \
    }                             \
  } while (0)

enum { B = 2, N = 2, SQ = 200, SKV = 300, D = 64, BLOCK = 128 };
enum { R = (SQ + BLOCK - 1) / BLOCK, C = (SKV + BLOCK - 1) / BLOCK };
enum { SKV_MASK = (SKV + 31) / 32 * 32 }; /* mask keys padded to 32 (larger than SKV) */
static const int64_t kActualQ = 180;      /* one entry: every batch */
static const uint16_t kNoBlock = 0xFFFF;

/* IEEE half <-> float, round to nearest even (the host side of fp16 tensors). */
static uint16_t to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const int32_t exp = (int32_t)((x >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = x & 0x7FFFFFu;
  if (exp >= 31) return (uint16_t)(sign | 0x7C00u);
  if (exp <= 0) {
    if (exp < -10) return (uint16_t)sign;
    mant |= 0x800000u;
    const uint32_t shift = (uint32_t)(14 - exp);
    uint32_t h = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (h & 1))) ++h;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1FFFu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h;
  return (uint16_t)(sign | h);
}

static double from_half(uint16_t h) {
  const int exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  const double s = (h & 0x8000) ? -1.0 : 1.0;
  if (exp == 0) return s * ldexp(mant, -24);
  if (exp == 31) return mant ? NAN : s * INFINITY;
  return s * ldexp(mant + 1024, exp - 25);
}

/* The documentation's CreateAclTensor: device memory, a host->device copy, a contiguous ND tensor. */
static int CreateAclTensor(const void *host, size_t elemSize, const int64_t *shape, uint64_t rank,
                           void **deviceAddr, aclDataType dataType, aclTensor **tensor) {
  int64_t strides[8], numel = 1;
  for (uint64_t i = rank; i-- > 0;) {
    strides[i] = numel;
    numel *= shape[i];
  }
  const size_t size = (size_t)numel * elemSize;
  int ret = aclrtMalloc(deviceAddr, size, ACL_MEM_MALLOC_HUGE_FIRST);
  CHECK_RET(ret == ACL_SUCCESS, "aclrtMalloc failed. ERROR: %d\n", ret);
  ret = aclrtMemcpy(*deviceAddr, size, host, size, ACL_MEMCPY_HOST_TO_DEVICE);
  CHECK_RET(ret == ACL_SUCCESS, "aclrtMemcpy failed. ERROR: %d\n", ret);
  *tensor = aclCreateTensor(shape, rank, dataType, strides, 0, ACL_FORMAT_ND, shape, rank, *deviceAddr);
  CHECK_RET(*tensor != NULL, "aclCreateTensor failed: %s\n", aclGetRecentErrMsg());
  return 0;
}

static uint16_t q[B][N][SQ][D], k[B][N][SKV][D], v[B][N][SKV][D], out[B][N][SQ][D];
static uint16_t sabi[B][N][R][C];
static uint8_t mask[B][1][SQ][SKV_MASK];
static float lse[B][N][SQ];

/* Deterministic inputs: uniform values in [-1, 1) (a fixed LCG), a sabi that drops some
 * blocks and lists the rest unsorted, a mask that hides a band and the padding. */
static void make_inputs(void) {
  uint32_t state = 12345;
#define NEXT() ((state = state * 1664525u + 1013904223u), (float)(state >> 8) / 8388608.0f - 1.0f)
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < N; ++h) {
      for (int s = 0; s < SQ; ++s)
        for (int d = 0; d < D; ++d) q[b][h][s][d] = to_half(NEXT());
      for (int s = 0; s < SKV; ++s)
        for (int d = 0; d < D; ++d) k[b][h][s][d] = to_half(NEXT()), v[b][h][s][d] = to_half(NEXT());
      for (int r = 0; r < R; ++r) {
        int w = 0;
        for (int c = C - 1; c >= 0; --c)
          if ((b + h + r + c) % 3 != 0) sabi[b][h][r][w++] = (uint16_t)c;
        while (w < C) sabi[b][h][r][w++] = kNoBlock;
      }
    }
#undef NEXT
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < SQ; ++i)
      for (int j = 0; j < SKV_MASK; ++j) mask[b][0][i][j] = j >= SKV || (j - i + 7 * b) % 11 == 0;
}

/* Whether key j is computed for (b, h, i): its 128-block listed in i's sabi row, not masked,
 * and i, j inside the actual lengths. */
static int selected(int b, int h, int i, int j) {
  if (i >= kActualQ || mask[b][0][i][j]) return 0;
  for (int w = 0; w < C; ++w)
    if (sabi[b][h][i / BLOCK][w] == j / BLOCK) return 1;
  return 0;
}

/* max |out - ref| and max |lse - ref| over every element; rows past the q length must be 0. */
static void compare(double scale, double *outErr, double *lseErr) {
  *outErr = *lseErr = 0.0;
  static double p[SKV];
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < N; ++h)
      for (int i = 0; i < SQ; ++i) {
        double m = -INFINITY, l = 0.0;
        for (int j = 0; j < SKV; ++j) {
          p[j] = -INFINITY;
          if (!selected(b, h, i, j)) continue;
          double dot = 0.0;
          for (int d = 0; d < D; ++d) dot += from_half(q[b][h][i][d]) * from_half(k[b][h][j][d]);
          p[j] = dot * scale;
          if (p[j] > m) m = p[j];
        }
        for (int j = 0; j < SKV; ++j) l += p[j] == -INFINITY ? 0.0 : exp(p[j] - m);
        for (int d = 0; d < D; ++d) {
          double o = 0.0;
          for (int j = 0; j < SKV; ++j)
            if (p[j] != -INFINITY) o += exp(p[j] - m) * from_half(v[b][h][j][d]);
          const double ref = l > 0.0 ? o / l : 0.0;
          const double err = fabs(from_half(out[b][h][i][d]) - ref);
          if (!(err <= *outErr)) *outErr = err;
        }
        const double refLse = l > 0.0 ? m + log(l) : -INFINITY;
        const double got = lse[b][h][i];
        const double err = (isinf(refLse) && isinf(got) && got < 0) ? 0.0 : fabs(got - refLse);
        if (!(err <= *lseErr)) *lseErr = err;
      }
}

int main(void) {
  int32_t deviceId = 0;
  aclrtStream stream = NULL;
  int ret = aclInit(NULL);
  CHECK_RET(ret == ACL_SUCCESS, "aclInit failed. ERROR: %d\n", ret);
  ret = aclrtSetDevice(deviceId);
  CHECK_RET(ret == ACL_SUCCESS, "aclrtSetDevice failed. ERROR: %d\n", ret);
  ret = aclrtCreateStream(&stream);
  CHECK_RET(ret == ACL_SUCCESS, "aclrtCreateStream failed. ERROR: %d\n", ret);

  make_inputs();
  const int64_t qShape[4] = {B, N, SQ, D}, kvShape[4] = {B, N, SKV, D}, sabiShape[4] = {B, N, R, C};
  const int64_t maskShape[4] = {B, 1, SQ, SKV_MASK}, lseShape[3] = {B, N, SQ};
  void *qDev = NULL, *kDev = NULL, *vDev = NULL, *sabiDev = NULL, *maskDev = NULL, *outDev = NULL, *lseDev = NULL;
  aclTensor *qT = NULL, *kT = NULL, *vT = NULL, *sabiT = NULL, *maskT = NULL, *outT = NULL, *lseT = NULL;
  if (CreateAclTensor(q, 2, qShape, 4, &qDev, ACL_FLOAT16, &qT) || CreateAclTensor(k, 2, kvShape, 4, &kDev, ACL_FLOAT16, &kT) ||
      CreateAclTensor(v, 2, kvShape, 4, &vDev, ACL_FLOAT16, &vT) ||
      CreateAclTensor(sabi, 2, sabiShape, 4, &sabiDev, ACL_UINT16, &sabiT) ||
      CreateAclTensor(mask, 1, maskShape, 4, &maskDev, ACL_BOOL, &maskT) ||
      CreateAclTensor(out, 2, qShape, 4, &outDev, ACL_FLOAT16, &outT) ||
      CreateAclTensor(lse, 4, lseShape, 3, &lseDev, ACL_FLOAT, &lseT))
    return 1;
  aclIntArray *actualSeqLengths = aclCreateIntArray(&kActualQ, 1);

  const int64_t numHeads = N, numKeyValueHeads = N, preTokens = 2147483647, nextTokens = 2147483647;
  const int64_t sparseMode = 1, innerPrecise = 1; /* 1: the explicit mask */
  const double scaleValue = 1.0 / sqrt((double)D);
  char layout[] = "BNSD";
  uint64_t workspaceSize = 0;
  aclOpExecutor *executor = NULL;
  ret = aclnnBlitzSparseAttentionGetWorkspaceSize(
      qT, kT, vT, NULL, maskT, sabiT, actualSeqLengths, NULL, NULL, NULL, NULL, NULL, NULL, numHeads, scaleValue,
      preTokens, nextTokens, layout, numKeyValueHeads, sparseMode, innerPrecise, true, NULL, outT, lseT,
      &workspaceSize, &executor);
  CHECK_RET(ret == ACL_SUCCESS, "aclnnBlitzSparseAttentionGetWorkspaceSize failed. ERROR: %d (%s)\n", ret,
            aclGetRecentErrMsg());
  void *workspaceAddr = NULL;
  if (workspaceSize > 0) {
    ret = aclrtMalloc(&workspaceAddr, workspaceSize, ACL_MEM_MALLOC_HUGE_FIRST);
    CHECK_RET(ret == ACL_SUCCESS, "allocate workspace failed. ERROR: %d\n", ret);
  }
  ret = aclnnBlitzSparseAttention(workspaceAddr, workspaceSize, executor, stream);
  CHECK_RET(ret == ACL_SUCCESS, "aclnnBlitzSparseAttention failed. ERROR: %d\n", ret);
  ret = aclrtSynchronizeStream(stream);
  CHECK_RET(ret == ACL_SUCCESS, "aclrtSynchronizeStream failed. ERROR: %d\n", ret);

  ret = aclrtMemcpy(out, sizeof(out), outDev, sizeof(out), ACL_MEMCPY_DEVICE_TO_HOST);
  CHECK_RET(ret == ACL_SUCCESS, "copy result from device to host failed. ERROR: %d\n", ret);
  ret = aclrtMemcpy(lse, sizeof(lse), lseDev, sizeof(lse), ACL_MEMCPY_DEVICE_TO_HOST);
  CHECK_RET(ret == ACL_SUCCESS, "copy lse from device to host failed. ERROR: %d\n", ret);

  /* The documentation's cleanup, in its order. */
  aclDestroyTensor(qT), aclDestroyTensor(kT), aclDestroyTensor(vT), aclDestroyTensor(sabiT);
  aclDestroyTensor(maskT), aclDestroyTensor(outT), aclDestroyTensor(lseT);
  aclDestroyIntArray(actualSeqLengths);
  aclrtFree(qDev), aclrtFree(kDev), aclrtFree(vDev), aclrtFree(sabiDev), aclrtFree(maskDev);
  aclrtFree(outDev), aclrtFree(lseDev);
  if (workspaceAddr) aclrtFree(workspaceAddr);
  aclrtDestroyStream(stream);
  ret = aclrtResetDevice(deviceId);
  CHECK_RET(ret == ACL_SUCCESS, "aclrtResetDevice failed. ERROR: %d\n", ret);
  ret = aclFinalize();
  CHECK_RET(ret == ACL_SUCCESS, "aclFinalize failed. ERROR: %d\n", ret);

  double outErr, lseErr;
  compare(scaleValue, &outErr, &lseErr);
  /* fp16 inputs and output, P rounded to fp16 before P*V: ~1e-3 on these unit-range values. */
  const double outTol = 1e-2, lseTol = 1e-3;
  printf("max |out - ref| = %.3g (tol %.0e), max |lse - ref| = %.3g (tol %.0e)\n", outErr, outTol, lseErr, lseTol);
  return outErr <= outTol && lseErr <= lseTol ? 0 : 1;
}

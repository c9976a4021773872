// The Matmul client of a KERNEL_TYPE_MIX_AIC_1_2 kernel (docs/zh/api/SIMD-API/高阶API/矩阵计算/
// Matmul-Kernel侧接口/: Matmul使用说明.md, REGIST_MATMUL_OBJ.md, SetOrgShape.md, SetTail.md,
// SetTensorA.md, SetTensorB.md, IterateAll.md, WaitIterateAll.md, End.md).
//
// Design (README "cube and vector"): the Matmul object lives on the vector core (the client);
// an async IterateAll records the request, and WaitIterateAll performs it — reads A and B and
// writes C then, not at issue time — so a kernel that reads C before waiting, or overwrites an
// input before the wait, computes wrong numbers here as it may on the NPU. The FLOPs and the
// GM -> L1 / L0C -> GM bytes go to the paired cube core's counters. REGIST_MATMUL_OBJ on the
// cube core serves (blocks) until both of its vector cores' clients quit, then returns from the
// calling function, as the KFC server does (impl/adv_api/detail/kfc/kfc_register_obj.h).
//
// Shapes (SetOrgShape(M, N, Ka, Kb, Kc = 0), elements): A [M, K] with row stride Ka (M if
// transposed); B [K, N] with row stride N, or transposed [N, K] with row stride Kb; C row stride
// Kc, or N if Kc = 0, rounded up to 32 bytes for CubeFormat::ND_ALIGN (whose padding columns are
// "invalid data": the model writes NaN there). fp16/bf16 inputs, fp32 accumulation.
#pragma once

#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "blitz_sim/core.h"
#include "blitz_sim/pipe.h"
#include "blitz_sim/tensor.h"
#include "kernel_tiling/kernel_tiling.h"

enum class CubeFormat { ND = 0, NZ, ZN, ZZ, NN, ND_ALIGN, SCALAR, VECTOR };

struct MatmulConfig {
  int kind;  // 0 CFG_NORM, 1 CFG_MDL: both compute the same result; only the L1 loading differs
};
inline constexpr MatmulConfig CFG_NORM{0};
inline constexpr MatmulConfig CFG_MDL{1};

namespace blitz_sim {

class MatmulState;  // the untyped part of a client

// REGIST_MATMUL_OBJ's objects on the calling core; the client-side KFC object of the macro.
class KfcClient {
public:
  KfcClient(AscendC::TPipe *pipe, void *workspace);
  ~KfcClient() noexcept(false);
  KfcClient(const KfcClient &) = delete;
  KfcClient &operator=(const KfcClient &) = delete;
  void add(MatmulState *obj, const AscendC::tiling::TCubeTiling *tiling);
  void serve();  // AIC: blocks until both vector clients quit (or the launch aborted)
  const std::vector<MatmulState *> &objects() const { return objs_; }

private:
  std::vector<MatmulState *> objs_;
  CoreContext *core_;
};

class MatmulState {
public:
  const char *name = "Matmul";
  const AscendC::tiling::TCubeTiling *tiling = nullptr;
  KfcClient *client = nullptr;  // the REGIST_MATMUL_OBJ that registered it on this core
  int index = 0;                // its place in REGIST_MATMUL_OBJ's list
  bool registered = false;
  // End.md: "多个Matmul对象之间切换计算时，必须调用一次End函数" (switching computation between
  // Matmul objects requires one End call). Set by IterateAll, cleared by End; an IterateAll of
  // another object while this is set is a violation.
  bool needs_end = false;
  bool org_set = false;
  int32_t orgM = 0, orgN = 0, orgKa = 0, orgKb = 0, orgKc = 0;
  int32_t tailM = -1, tailN = -1, tailK = -1;
  const void *a = nullptr;
  const void *b = nullptr;
  bool a_set = false, b_set = false, transB = false;
  struct Pending {
    bool active = false;
    const void *a, *b;
    void *c;
    int32_t m, n, k, lda, ldb, ldc;
    bool transB;
  } pending;

  void check_registered(const char *api) const
  {
    if (!registered) fail(api, "Matmul object used without REGIST_MATMUL_OBJ on this core");
  }
};

// C[m, n] = sum_k A[m, k] B[k, n] in float (double accumulation would hide nothing the kernel
// cares about; float matches the cube's fp32 accumulator within summation-order differences).
template <typename AT, typename BT, typename CT>
void matmul_compute(const MatmulState::Pending &p, bool ndAlign)
{
  const AT *a = static_cast<const AT *>(p.a);
  const BT *b = static_cast<const BT *>(p.b);
  CT *c = static_cast<CT *>(p.c);
  for (int32_t i = 0; i < p.m; ++i) {
    for (int32_t j = 0; j < p.n; ++j) {
      float acc = 0.0f;
      for (int32_t kk = 0; kk < p.k; ++kk) {
        const float av = static_cast<float>(a[int64_t(i) * p.lda + kk]);
        const float bv = p.transB ? static_cast<float>(b[int64_t(j) * p.ldb + kk]) : static_cast<float>(b[int64_t(kk) * p.ldb + j]);
        acc += av * bv;
      }
      c[int64_t(i) * p.ldc + j] = static_cast<CT>(acc);
    }
    if (ndAlign) {
      const int32_t per32 = static_cast<int32_t>(32 / sizeof(CT));
      const int32_t padded = (p.n + per32 - 1) / per32 * per32;
      for (int32_t j = p.n; j < padded; ++j) c[int64_t(i) * p.ldc + j] = static_cast<CT>(std::numeric_limits<float>::quiet_NaN());
    }
  }
}

// Checks a matmul message from the scalar unit reading [p, p + bytes) of GM: this core's MTE3
// writes there must be ordered before it (MTE3 -> S).
void check_matmul_reads_after_mte3(const char *api, const void *p, size_t bytes);
void add_cube_counters(uint64_t flops, uint64_t l1_bytes, uint64_t out_bytes);

}  // namespace blitz_sim

namespace matmul {

// MatmulType<POSITION, FORMAT, TYPE, ISTRANS> (Matmul使用说明.md).
template <AscendC::TPosition POSITION, CubeFormat FORMAT, typename TYPE, bool ISTRANS = false>
struct MatmulType {
  static constexpr AscendC::TPosition pos = POSITION;
  static constexpr CubeFormat format = FORMAT;
  using T = TYPE;
  static constexpr bool isTrans = ISTRANS;
};

template <class A_TYPE, class B_TYPE, class C_TYPE, class BIAS_TYPE = C_TYPE, const auto &MM_CFG = CFG_NORM>
class Matmul : public blitz_sim::MatmulState {
public:
  using SrcAT = typename A_TYPE::T;
  using SrcBT = typename B_TYPE::T;
  using DstT = typename C_TYPE::T;
  static_assert(A_TYPE::pos == AscendC::TPosition::GM && B_TYPE::pos == AscendC::TPosition::GM &&
                    C_TYPE::pos == AscendC::TPosition::GM,
                "the model implements GM operands only");
  static_assert(A_TYPE::format == CubeFormat::ND && B_TYPE::format == CubeFormat::ND, "ND inputs only");
  static_assert(C_TYPE::format == CubeFormat::ND || C_TYPE::format == CubeFormat::ND_ALIGN, "ND / ND_ALIGN output");
  static_assert(!A_TYPE::isTrans, "the model implements A untransposed");
  static_assert(std::is_same<SrcAT, SrcBT>::value, "A and B share a dtype");
  static_assert(std::is_same<DstT, float>::value, "float C (fp32 accumulation)");

  Matmul() = default;

  // SetOrgShape.md: before SetTensorA / SetTensorB / SetSingleShape.
  void SetOrgShape(int orgM, int orgN, int orgKa, int orgKb, int orgKc = 0)
  {
    check_registered("Matmul::SetOrgShape");
    if (orgM <= 0 || orgN <= 0 || orgKa <= 0 || orgKb <= 0 || orgKc < 0) {
      blitz_sim::fail("Matmul::SetOrgShape", blitz_sim::msg("non-positive shape ", orgM, ",", orgN, ",", orgKa, ",", orgKb, ",", orgKc));
    }
    this->orgM = orgM;
    this->orgN = orgN;
    this->orgKa = orgKa;
    this->orgKb = orgKb;
    this->orgKc = orgKc;
    org_set = true;
  }
  // SetTail.md: -1 keeps the current value.
  void SetTail(int tailM = -1, int tailN = -1, int tailK = -1)
  {
    need_org("Matmul::SetTail");
    if (tailM != -1) this->tailM = tailM;
    if (tailN != -1) this->tailN = tailN;
    if (tailK != -1) this->tailK = tailK;
  }
  void SetTensorA(const AscendC::GlobalTensor<SrcAT> &gm, bool isTransposeA = false)
  {
    need_org("Matmul::SetTensorA");
    if (isTransposeA) blitz_sim::fail("Matmul::SetTensorA", "transposed A is not in the model");
    a = gm.GetPhyAddr();
    a_set = true;
  }
  void SetTensorB(const AscendC::GlobalTensor<SrcBT> &gm, bool isTransposeB = false)
  {
    need_org("Matmul::SetTensorB");
    if (isTransposeB && !B_TYPE::isTrans) {
      blitz_sim::fail("Matmul::SetTensorB", "isTransposeB with MatmulType isTrans=false gives wrong results (Matmul使用说明.md)");
    }
    b = gm.GetPhyAddr();
    b_set = true;
    transB = isTransposeB;
  }

  // IterateAll.md. sync=true computes at once; sync=false with waitIterateAll=true is completed
  // by WaitIterateAll. enAtomic 0 only.
  template <bool sync = true>
  void IterateAll(const AscendC::GlobalTensor<DstT> &gm, uint8_t enAtomic = 0, bool enSequentialWrite = false,
                  bool waitIterateAll = false, bool fakeMsg = false)
  {
    const char *api = "Matmul::IterateAll";
    need_org(api);
    if (!a_set || !b_set) blitz_sim::fail(api, "SetTensorA and SetTensorB must come first");
    if (enAtomic != 0 || enSequentialWrite || fakeMsg) blitz_sim::fail(api, "enAtomic / enSequentialWrite / fakeMsg not in the model");
    if (!sync && !waitIterateAll) blitz_sim::fail(api, "async IterateAll without waitIterateAll is not in the model");
    if (pending.active) {
      blitz_sim::fail(api, "a second IterateAll before WaitIterateAll of the previous one (the model allows one in flight)");
    }
    for (const blitz_sim::MatmulState *other : client->objects()) {
      if (other != this && other->needs_end) {
        blitz_sim::fail(api, blitz_sim::msg("object ", index, " computes after object ", other->index,
                                            " computed with no End() of object ", other->index,
                                            " between: switching computation between Matmul objects requires "
                                            "one End call (End.md)"));
      }
    }
    const int32_t m = tailM != -1 ? tailM : (tiling ? tiling->singleCoreM : 0);
    const int32_t n = tailN != -1 ? tailN : (tiling ? tiling->singleCoreN : 0);
    const int32_t k = tailK != -1 ? tailK : (tiling ? tiling->singleCoreK : 0);
    if (m <= 0 || n <= 0 || k <= 0) blitz_sim::fail(api, blitz_sim::msg("empty single shape ", m, "x", n, "x", k));
    Pending p;
    p.active = true;
    p.a = a;
    p.b = b;
    p.c = gm.GetPhyAddr();
    p.m = m;
    p.n = n;
    p.k = k;
    p.lda = orgKa;
    p.transB = transB;
    p.ldb = transB ? orgKb : orgN;
    int32_t ldc = orgKc != 0 ? orgKc : orgN;
    if (C_TYPE::format == CubeFormat::ND_ALIGN) {
      const int32_t per32 = static_cast<int32_t>(32 / sizeof(DstT));
      ldc = (ldc + per32 - 1) / per32 * per32;
    }
    p.ldc = ldc;
    if (k > orgKa) blitz_sim::fail(api, blitz_sim::msg("K ", k, " exceeds A's row stride Ka ", orgKa));
    if (transB ? k > orgKb : n > orgN) blitz_sim::fail(api, "the single shape exceeds B's row stride");
    if (n > ldc) blitz_sim::fail(api, blitz_sim::msg("N ", n, " exceeds C's row stride ", ldc));
    // The GM the cube will read and write (checked at issue: the message carries the addresses).
    const size_t aBytes = (size_t(m - 1) * p.lda + k) * sizeof(SrcAT);
    const size_t bBytes = (transB ? size_t(n - 1) * p.ldb + k : size_t(k - 1) * p.ldb + n) * sizeof(SrcBT);
    const int32_t cols = C_TYPE::format == CubeFormat::ND_ALIGN ? (n + int32_t(32 / sizeof(DstT)) - 1) / int32_t(32 / sizeof(DstT)) * int32_t(32 / sizeof(DstT)) : n;
    const size_t cBytes = (size_t(m - 1) * p.ldc + cols) * sizeof(DstT);
    blitz_sim::check_gm(api, p.a, aBytes);
    blitz_sim::check_gm(api, p.b, bBytes);
    blitz_sim::check_gm(api, p.c, cBytes);
    if (gm.sized() && gm.GetSize() * sizeof(DstT) < cBytes) blitz_sim::fail(api, "C's GlobalTensor is smaller than M x N (row stride)");
    blitz_sim::check_matmul_reads_after_mte3(api, p.a, aBytes);
    blitz_sim::check_matmul_reads_after_mte3(api, p.b, bBytes);
    blitz_sim::check_matmul_reads_after_mte3(api, p.c, cBytes);  // WAW with this core's copies
    pending = p;
    pending_c_bytes_ = cBytes;
    needs_end = true;
    if (sync) run();
  }

  // WaitIterateAll.md: completes the async IterateAll.
  void WaitIterateAll()
  {
    check_registered("Matmul::WaitIterateAll");
    if (!pending.active) blitz_sim::fail("Matmul::WaitIterateAll", "no async IterateAll in flight (it would hang)");
    run();
  }

  // End.md: releases the object's cube resources; nothing may be in flight.
  void End()
  {
    check_registered("Matmul::End");
    if (pending.active) blitz_sim::fail("Matmul::End", "an IterateAll is still in flight (not waited)");
    a_set = b_set = false;
    needs_end = false;
  }

private:
  void need_org(const char *api)
  {
    check_registered(api);
    if (!org_set) blitz_sim::fail(api, "SetOrgShape must come first (SetOrgShape.md)");
  }
  void run()
  {
    if (blitz_sim::computes()) {
      blitz_sim::matmul_compute<SrcAT, SrcBT, DstT>(pending, C_TYPE::format == CubeFormat::ND_ALIGN);
    }
    blitz_sim::gm_produced(pending.c, pending_c_bytes_);  // counting only: C now holds nothing computed
    const uint64_t m = pending.m, n = pending.n, k = pending.k;
    blitz_sim::add_cube_counters(2 * m * n * k, (m * k + k * n) * sizeof(SrcAT), m * n * sizeof(DstT));
    pending.active = false;
  }
  size_t pending_c_bytes_ = 0;
};

}  // namespace matmul

namespace blitz_sim {

inline void register_matmuls(KfcClient &) {}
template <class M, class... Rest>
inline void register_matmuls(KfcClient &client, M &obj, const AscendC::tiling::TCubeTiling *tiling, Rest &&...rest)
{
  client.add(&obj, tiling);
  register_matmuls(client, rest...);
}

}  // namespace blitz_sim

// REGIST_MATMUL_OBJ(tpipe, workspace, obj1, tiling1, ...): on the cube core, serve and return
// from the caller; on a vector core, register the clients (REGIST_MATMUL_OBJ.md).
#define REGIST_MATMUL_OBJ(tpipe, workspace, ...)                   \
  blitz_sim::KfcClient __kfcClient__((tpipe), (workspace));       \
  blitz_sim::register_matmuls(__kfcClient__, __VA_ARGS__);        \
  if (blitz_sim::current().type == blitz_sim::CoreType::AIC) {    \
    __kfcClient__.serve();                                         \
    return;                                                        \
  }

// Self-tests of the Ascend C execution model (kernel_src/npu/sim): each rule rejects what the
// hardware would reject, and each API computes what its doc page says, against values worked out
// by hand or a double computation here.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "kernel_operator.h"
#include "lib/matmul_intf.h"
#include "blitz_sim/launch.h"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                          \
  do {                                                                       \
    if (!(cond)) {                                                           \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                          \
    }                                                                        \
  } while (0)

// body must throw a ModelViolation whose message contains `needle`.
void expect_violation(const char *name, const std::function<void()> &body, const char *needle)
{
  try {
    body();
  } catch (const blitz_sim::ModelViolation &e) {
    if (std::string(e.what()).find(needle) == std::string::npos) {
      std::fprintf(stderr, "%s: violation without '%s': %s\n", name, needle, e.what());
      ++g_failures;
    }
    return;
  }
  std::fprintf(stderr, "%s: no violation (expected '%s')\n", name, needle);
  ++g_failures;
}

using namespace AscendC;

struct Gm {  // a registered GM allocation
  std::vector<uint8_t> bytes;
  explicit Gm(size_t n, const char *name = "gm") : bytes(n + 64)
  {
    blitz_sim::register_gm(data(), n, name);
  }
  uint8_t *data() { return bytes.data() + (32 - reinterpret_cast<uintptr_t>(bytes.data()) % 32) % 32; }
  template <typename T>
  T *as() { return reinterpret_cast<T *>(data()); }
};

void test_numeric()
{
  CHECK(half(1.0f).bits == 0x3C00);
  CHECK(half(65504.0f).bits == 0x7BFF);
  CHECK(half(65520.0f).bits == 0x7C00);                       // rounds up to inf (RNE)
  CHECK(half(1.0f + std::ldexp(1.0f, -11)).bits == 0x3C00);   // tie -> even
  CHECK(half(1.0f + 3 * std::ldexp(1.0f, -11)).bits == 0x3C02);  // tie -> even (up)
  CHECK(half(std::ldexp(1.0f, -24)).bits == 0x0001);          // smallest subnormal
  CHECK(static_cast<float>(half::from_bits(0x3555)) == 0.333251953125f);
  CHECK(bfloat16_t(1.0f).bits == 0x3F80);
  CHECK(bfloat16_t(1.0f + std::ldexp(1.0f, -8)).bits == 0x3F80);       // tie -> even
  CHECK(bfloat16_t(1.0f + 3 * std::ldexp(1.0f, -8)).bits == 0x3F82);   // tie -> even (up)
  CHECK(std::isnan(static_cast<float>(bfloat16_t(std::nanf("")))));
  CHECK(static_cast<float>(bfloat16_t::from_bits(0xC040)) == -3.0f);
}

// Cast float -> half in each documented round mode, on values between two halves.
void test_cast_rounding()
{
  Gm ws(blitz_sim::kSystemWorkspaceBytes);
  blitz_sim::CoreScope core;
  core.ctx.check_pipe_order = false;  // one API at a time: ordering is test_pipe_sync's
  TPipe pipe;
  TBuf<TPosition::VECCALC> fbuf, hbuf, bbuf, ubuf;
  pipe.InitBuffer(fbuf, 64 * 4);
  pipe.InitBuffer(hbuf, 64 * 2);
  pipe.InitBuffer(bbuf, 64 * 2);
  pipe.InitBuffer(ubuf, 256);
  LocalTensor<float> f = fbuf.Get<float>();
  LocalTensor<half> h = hbuf.Get<half>();
  const float tie = 1.0f + std::ldexp(1.0f, -11);          // halfway between 1 and 1 + 2^-10
  const float above = 1.0f + 3 * std::ldexp(1.0f, -12);    // 3/4 of the way
  const float vals[8] = {tie, -tie, above, -above, 1.0f + 3 * std::ldexp(1.0f, -11), 2.5f, -2.5f, 0.0f};
  for (int i = 0; i < 64; ++i) f.ptr()[i] = vals[i % 8];
  struct Case {
    RoundMode mode;
    uint16_t expect[4];  // tie, -tie, above, -above
  } cases[] = {
      {RoundMode::CAST_RINT, {0x3C00, 0xBC00, 0x3C01, 0xBC01}},
      {RoundMode::CAST_NONE, {0x3C00, 0xBC00, 0x3C01, 0xBC01}},
      {RoundMode::CAST_ROUND, {0x3C01, 0xBC01, 0x3C01, 0xBC01}},
      {RoundMode::CAST_FLOOR, {0x3C00, 0xBC01, 0x3C00, 0xBC01}},
      {RoundMode::CAST_CEIL, {0x3C01, 0xBC00, 0x3C01, 0xBC00}},
      {RoundMode::CAST_TRUNC, {0x3C00, 0xBC00, 0x3C00, 0xBC00}},
      {RoundMode::CAST_ODD, {0x3C01, 0xBC01, 0x3C01, 0xBC01}},
  };
  for (const Case &c : cases) {
    Cast(h, f, c.mode, 64);
    for (int i = 0; i < 4; ++i) CHECK(h.ptr()[i].bits == c.expect[i]);
  }
  Cast(h, f, RoundMode::CAST_RINT, 64);
  CHECK(h.ptr()[4].bits == 0x3C02);  // 1 + 3 * 2^-11: tie -> even (up)
  CHECK(static_cast<float>(h.ptr()[5]) == 2.5f);
  // Disallowed pairs on Atlas A2 (Cast.md table).
  LocalTensor<bfloat16_t> b = bbuf.Get<bfloat16_t>();
  expect_violation("cast f32->bf16 NONE", [&] { Cast(b, f, RoundMode::CAST_NONE, 64); }, "not an accepted round mode");
  expect_violation("cast f32->bf16 ODD", [&] { Cast(b, f, RoundMode::CAST_ODD, 64); }, "not an accepted round mode");
  LocalTensor<uint8_t> u = ubuf.Get<uint8_t>();
  expect_violation("cast u8->f16 RINT", [&] { Cast(h, u, RoundMode::CAST_RINT, 64); }, "not an accepted round mode");
  Cast(b, f, RoundMode::CAST_RINT, 64);
  CHECK(b.ptr()[0].bits == 0x3F80);
}

void test_ub_and_queues()
{
  blitz_sim::CoreScope core;
  core.ctx.check_pipe_order = false;  // one API at a time: ordering is test_pipe_sync's
  {
    TPipe pipe;
    TBuf<TPosition::VECCALC> a, b;
    pipe.InitBuffer(a, 100000);  // rounded to 100000 (already a multiple of 32)
    expect_violation("ub overflow", [&] { pipe.InitBuffer(b, 90000); }, "user UB of 188160");
  }
  {
    TPipe pipe;
    TBuf<TPosition::VECCALC> a, b;
    pipe.InitBuffer(a, 1);
    pipe.InitBuffer(b, 32);
    CHECK(b.Get<float>().addr() == 32);  // 1 byte rounded up to 32, packed from 0
  }
  {
    TPipe pipe;
    TQue<TPosition::VECIN, 1> q;
    pipe.InitBuffer(q, 2, 256);
    LocalTensor<float> t0 = q.AllocTensor<float>();
    LocalTensor<float> t1 = q.AllocTensor<float>();
    expect_violation("alloc none free", [&] { q.AllocTensor<float>(); }, "spins forever");
    q.EnQue(t0);
    expect_violation("enque past depth", [&] { q.EnQue(t1); }, "depth 1");
    LocalTensor<float> d = q.DeQue<float>();
    expect_violation("deque empty", [&] { q.DeQue<float>(); }, "empty queue");
    q.FreeTensor(d);
    expect_violation("double free", [&] { q.FreeTensor(d); }, "");
    expect_violation("use after free", [&] { d.GetValue(0); }, "after FreeTensor");
    LocalTensor<float> sub = t1[8];
    expect_violation("free a sub-view", [&] { q.FreeTensor(sub); }, "sub-view");
    q.FreeTensor(t1);
  }
  {
    TPipe pipe;
    TQue<TPosition::VECOUT, 1> qs[9];
    for (auto &q : qs) pipe.InitBuffer(q, 1, 32);
    for (int i = 0; i < 8; ++i) qs[i].AllocTensor<float>();
    expect_violation("9 buffers of one position", [&] { qs[8].AllocTensor<float>(); }, "at most 8 per TPosition");
  }
}

void test_events()
{
  blitz_sim::CoreScope core;
  core.ctx.check_pipe_order = false;  // one API at a time: ordering is test_pipe_sync's
  TPipe pipe;
  expect_violation("wait without set", [] { WaitFlag<HardEvent::V_S>(0); }, "would hang");
  SetFlag<HardEvent::V_S>(1);
  expect_violation("set twice", [] { SetFlag<HardEvent::V_S>(1); }, "already set");
  WaitFlag<HardEvent::V_S>(1);
  expect_violation("id out of range", [] { SetFlag<HardEvent::V_S>(8); }, "outside 0..7");
  std::vector<TEventID> ids;
  for (int i = 0; i < 8; ++i) ids.push_back(pipe.AllocEventID<HardEvent::MTE2_S>());
  CHECK(ids[0] == 0 && ids[7] == 7);
  expect_violation("alloc 9th id", [&] { pipe.AllocEventID<HardEvent::MTE2_S>(); }, "no free");
  pipe.ReleaseEventID<HardEvent::MTE2_S>(ids[3]);
  CHECK(pipe.FetchEventID(HardEvent::MTE2_S) == 3);
  SetFlag<HardEvent::S_V>(2);
  expect_violation("flag left set at kernel end", [&] { blitz_sim::finish_core(core.ctx); }, "never waited");
  WaitFlag<HardEvent::S_V>(2);
}

void test_copies()
{
  Gm gm(4096);
  blitz_sim::CoreScope core;
  core.ctx.check_pipe_order = false;  // one API at a time: ordering is test_pipe_sync's
  TPipe pipe;
  TBuf<TPosition::VECCALC> buf;
  pipe.InitBuffer(buf, 2048);
  GlobalTensor<float> g;
  g.SetGlobalBuffer(gm.as<float>(), 1024);
  for (int i = 0; i < 1024; ++i) gm.as<float>()[i] = static_cast<float>(i);
  LocalTensor<float> t = buf.Get<float>();
  expect_violation("misaligned DataCopy", [&] { DataCopy(t[1], g, 8); }, "not 32-byte aligned");
  expect_violation("DataCopy count", [&] { DataCopy(t, g, 12); }, "not a multiple of 32");
  expect_violation("GlobalTensor size", [&] { DataCopy(t, g[1020], 8); }, "past the SetGlobalBuffer size");
  GlobalTensor<float> unsized;
  unsized.SetGlobalBuffer(gm.as<float>() + 1020);
  expect_violation("GM out of range", [&] { DataCopy(t, unsized, 16); }, "outside every registered GM range");
  expect_violation("UB bounds", [&] { DataCopy(t[500], g, 16); }, "outside the tensor");
  // DataCopyPad GM -> UB: 3 rows of 5 floats, GM rows 7 apart (gap 2 floats), UB rows one block
  // apart plus one block of gap; unaligned without pads: dummy = the row's first element.
  DataCopyExtParams p(3, 5 * 4, 2 * 4, 1, 0);
  DataCopyPad(t, g, p, DataCopyPadExtParams<float>{false, 0, 0, 0.0f});
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 5; ++c) CHECK(t.ptr()[r * 16 + c] == static_cast<float>(r * 7 + c));
    for (int c = 5; c < 8; ++c) CHECK(t.ptr()[r * 16 + c] == static_cast<float>(r * 7));
  }
  // isPad with a right pad of 3 elements = value.
  DataCopyPad(t, g[100], DataCopyExtParams(1, 5 * 4, 0, 0, 0), DataCopyPadExtParams<float>{true, 0, 3, -7.0f});
  CHECK(t.ptr()[4] == 104.0f && t.ptr()[5] == -7.0f && t.ptr()[7] == -7.0f);
  expect_violation("pad > 32 B", [&] {
    DataCopyPad(t, g, DataCopyExtParams(1, 8, 0, 0, 0), DataCopyPadExtParams<float>{true, 0, 9, 0.0f});
  }, "exceed 32 bytes");
  expect_violation("blockLen not multiple of sizeof", [&] {
    DataCopyPad(t, g, DataCopyExtParams(1, 6, 0, 0, 0), DataCopyPadExtParams<float>{false, 0, 0, 0.0f});
  }, "multiple of sizeof");
  // UB -> GM: 2 rows of 3 floats from UB rows 2 blocks apart (srcStride 1 block), GM gap 1 float.
  for (int i = 0; i < 32; ++i) t.ptr()[i] = 1000.0f + i;
  DataCopyPad(g[200], t, DataCopyExtParams(2, 3 * 4, 1, 4, 0));
  CHECK(gm.as<float>()[200] == 1000.0f && gm.as<float>()[202] == 1002.0f);
  CHECK(gm.as<float>()[203] == 203.0f);  // the gap is untouched
  CHECK(gm.as<float>()[204] == 1016.0f && gm.as<float>()[206] == 1018.0f);
  // Each UB block is read as ceil32(blockLen): the last block must fit in the tensor.
  // Two 8-byte blocks fit the last 32 bytes as data, not as two 32-byte reads.
  LocalTensor<float> tail = t[512 - 8];
  expect_violation("UB->GM reads ceil32", [&] { DataCopyPad(g, tail, DataCopyExtParams(2, 8, 0, 0, 0)); },
                   "rounded up to 32");
}

void test_vector()
{
  blitz_sim::CoreScope core;
  core.ctx.check_pipe_order = false;  // one API at a time: ordering is test_pipe_sync's
  TPipe pipe;
  TBuf<TPosition::VECCALC> a, b, m, h;
  pipe.InitBuffer(a, 4096);
  pipe.InitBuffer(b, 4096);
  pipe.InitBuffer(m, 256);
  pipe.InitBuffer(h, 512);
  LocalTensor<float> x = a.Get<float>(), y = b.Get<float>();
  for (int i = 0; i < 1024; ++i) x.ptr()[i] = static_cast<float>(i);
  Muls(y, x, 2.0f, 1024);
  Adds(y, y, 1.0f, 1024);
  Add(y, y, x, 1024);
  CHECK(y.ptr()[10] == 31.0f && y.ptr()[1023] == 3070.0f);
  expect_violation("partial overlap", [&] { Adds(x[8], x, 1.0f, 256); }, "partly overlaps");
  expect_violation("unaligned operand", [&] { Adds(y, x[1], 1.0f, 64); }, "not 32-byte aligned");
  // Duplicate bit mask: bits 1 and 3 of each of 2 repeats (repeat stride 8 blocks).
  for (int i = 0; i < 1024; ++i) y.ptr()[i] = 0.0f;
  uint64_t bits[2] = {0xA, 0};
  Duplicate(y, 5.0f, bits, 2, 1, 8);
  CHECK(y.ptr()[0] == 0.0f && y.ptr()[1] == 5.0f && y.ptr()[2] == 0.0f && y.ptr()[3] == 5.0f);
  CHECK(y.ptr()[65] == 5.0f && y.ptr()[67] == 5.0f && y.ptr()[64] == 0.0f);
  // Mul repeat form: row broadcast (src1 block stride 0, repeat stride 1).
  LocalTensor<float> stat = b.Get<float>()[512];
  for (int r = 0; r < 2; ++r) for (int j = 0; j < 8; ++j) stat.ptr()[r * 8 + j] = static_cast<float>(r + 2);
  Mul(y, x, stat, 64, 2, BinaryRepeatParams(1, 1, 0, 8, 8, 1));
  CHECK(y.ptr()[5] == 10.0f && y.ptr()[64 + 5] == 3.0f * 69.0f);
  expect_violation("mask > 64 for b32", [&] { Mul(y, x, stat, 65, 1, BinaryRepeatParams()); }, "outside 1..64");
  // Compares: bit i = element i, little-endian bytes; count must span whole 256-byte repeats.
  LocalTensor<half> hv = h.Get<half>();
  for (int i = 0; i < 128; ++i) hv.ptr()[i] = half(i % 3 == 0 ? 0.0f : 1.0f);
  LocalTensor<uint8_t> mask = m.Get<uint8_t>();
  Compares(mask, hv, half(0.0f), CMPMODE::EQ, 128);
  CHECK(mask.ptr()[0] == 0x49 && mask.ptr()[1] == 0x92);  // elements 0,3,6 | 9,12,15
  expect_violation("Compares count", [&] { Compares(mask, hv, half(0.0f), CMPMODE::EQ, 64); }, "multiple of 256");
  // Select: dst = bit ? src0 : scalar.
  Select(y, mask, x, -1.0f, SELMODE::VSEL_TENSOR_SCALAR_MODE, 16);
  CHECK(y.ptr()[0] == 0.0f && y.ptr()[1] == -1.0f && y.ptr()[3] == 3.0f && y.ptr()[15] == 15.0f);
  // Log: no overlap.
  Log(y, x[64], 64);
  CHECK(std::fabs(y.ptr()[0] - std::log(64.0f)) < 1e-6f);
  expect_violation("Log overlap", [&] { Log(x, x, 64); }, "overlap");
}

void test_softmax()
{
  blitz_sim::CoreScope core;
  core.ctx.check_pipe_order = false;  // one API at a time: ordering is test_pipe_sync's
  TPipe pipe;
  const uint32_t rows = 3, cols = 16;
  TBuf<TPosition::VECCALC> s, mx, sm, em, tmp;
  pipe.InitBuffer(s, rows * cols * 4);
  pipe.InitBuffer(mx, rows * 32);
  pipe.InitBuffer(sm, rows * 32);
  pipe.InitBuffer(em, rows * 32);
  pipe.InitBuffer(tmp, blitz_sim::SoftmaxFlashV2MinTmpBytes(rows, cols, 4, 4, true));
  CHECK(blitz_sim::SoftmaxFlashV2MinTmpBytes(rows, cols, 4, 4, true) == 288);
  LocalTensor<float> x = s.Get<float>(), maxT = mx.Get<float>(), sumT = sm.Get<float>(), expMax = em.Get<float>();
  double in[2][rows][cols];
  for (uint32_t t = 0; t < 2; ++t)
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c) in[t][r][c] = std::sin(1.0 + t * 7 + r * 3 + c * 0.37) * (t + 2);
  tiling::SoftMaxTiling st;
  blitz_sim::SoftmaxFlashV2Tiling(rows, cols, 4, 4, 288, true, &st);
  const SoftMaxShapeInfo shape{rows, cols, rows, cols};
  for (uint32_t t = 0; t < 2; ++t) {
    for (uint32_t r = 0; r < rows; ++r)
      for (uint32_t c = 0; c < cols; ++c) x.ptr()[r * cols + c] = static_cast<float>(in[t][r][c]);
    if (t == 0) {
      SoftmaxFlashV2<float, false>(x, sumT, maxT, x, expMax, sumT, maxT, tmp.Get<uint8_t>(), st, shape);
    } else {
      SoftmaxFlashV2<float, true>(x, sumT, maxT, x, expMax, sumT, maxT, tmp.Get<uint8_t>(), st, shape);
    }
  }
  for (uint32_t r = 0; r < rows; ++r) {
    double m0 = -1e300, m1 = -1e300, s0 = 0, s1 = 0;
    for (uint32_t c = 0; c < cols; ++c) m0 = std::max(m0, in[0][r][c]), m1 = std::max(m1, in[1][r][c]);
    const double m = std::max(m0, m1);
    for (uint32_t c = 0; c < cols; ++c) s0 += std::exp(in[0][r][c] - m0), s1 += std::exp(in[1][r][c] - m);
    const double sum = std::exp(m0 - m) * s0 + s1;
    for (int j = 0; j < 8; ++j) {
      CHECK(std::fabs(maxT.ptr()[r * 8 + j] - m) < 1e-6);
      CHECK(std::fabs(sumT.ptr()[r * 8 + j] - sum) < 1e-5 * sum);
      CHECK(std::fabs(expMax.ptr()[r * 8 + j] - std::exp(m0 - m)) < 1e-6);
    }
    for (uint32_t c = 0; c < cols; ++c) CHECK(std::fabs(x.ptr()[r * cols + c] - std::exp(in[1][r][c] - m)) < 1e-6);
  }
  TBuf<TPosition::VECCALC> small;
  pipe.InitBuffer(small, 256);
  expect_violation("softmax tmp too small", [&] {
    SoftmaxFlashV2<float, false>(x, sumT, maxT, x, expMax, sumT, maxT, small.Get<uint8_t>(), st, shape);
  }, "GetSoftMaxFlashV2MinTmpSize");
  const SoftMaxShapeInfo odd{rows, 12, rows, 12};
  expect_violation("softmax srcK alignment", [&] {
    SoftmaxFlashV2<float, false>(x, sumT, maxT, x, expMax, sumT, maxT, tmp.Get<uint8_t>(), st, odd);
  }, "multiple of 32 bytes");
}

template <typename T>
void test_matmul()
{
  using A = matmul::MatmulType<TPosition::GM, CubeFormat::ND, T, false>;
  using Bt = matmul::MatmulType<TPosition::GM, CubeFormat::ND, T, true>;
  using C = matmul::MatmulType<TPosition::GM, CubeFormat::ND_ALIGN, float>;
  const int M = 3, N = 5, K = 7, lda = 9, ldb = 11, ldc = 8;  // ND_ALIGN: 5 floats -> row stride 8
  Gm ws(blitz_sim::kSystemWorkspaceBytes, "workspace");
  Gm ga(M * lda * sizeof(T)), gb(N * ldb * sizeof(T)), gc(M * ldc * 4);
  blitz_sim::set_system_workspace(ws.data());
  blitz_sim::CoreScope core;
  core.ctx.check_pipe_order = false;
  std::vector<double> av(M * lda), bv(N * ldb);
  for (int i = 0; i < M * lda; ++i) ga.as<T>()[i] = T(static_cast<float>((i * 37 % 17) - 8) / 8.0f), av[i] = static_cast<float>(ga.as<T>()[i]);
  for (int i = 0; i < N * ldb; ++i) gb.as<T>()[i] = T(static_cast<float>((i * 29 % 13) - 6) / 4.0f), bv[i] = static_cast<float>(gb.as<T>()[i]);
  for (int i = 0; i < M * ldc; ++i) gc.as<float>()[i] = 1234.0f;
  TPipe pipe;
  matmul::Matmul<A, Bt, C, C, CFG_MDL> mm;
  tiling::TCubeTiling tiling;
  GlobalTensor<T> gA, gB;
  GlobalTensor<float> gC;
  gA.SetGlobalBuffer(ga.as<T>());
  gB.SetGlobalBuffer(gb.as<T>());
  gC.SetGlobalBuffer(gc.as<float>());
  expect_violation("Matmul without REGIST", [&] { mm.SetOrgShape(M, N, lda, ldb, ldc); }, "without REGIST_MATMUL_OBJ");
  REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &tiling);
  expect_violation("SetTensorA before SetOrgShape", [&] { mm.SetTensorA(gA); }, "SetOrgShape must come first");
  mm.SetOrgShape(M, N, lda, ldb, 5);  // Kc 5 floats, ND_ALIGN rounds the row stride to 8
  mm.SetTail(M, N, K);
  mm.SetTensorA(gA);
  mm.SetTensorB(gB, true);
  mm.template IterateAll<false>(gC, 0, false, true);
  // Asynchronous: nothing is written until WaitIterateAll; a second issue is refused.
  CHECK(gc.as<float>()[0] == 1234.0f);
  expect_violation("two in flight", [&] { mm.template IterateAll<false>(gC, 0, false, true); }, "before WaitIterateAll");
  expect_violation("End in flight", [&] { mm.End(); }, "still in flight");
  mm.WaitIterateAll();
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      double ref = 0;
      for (int k = 0; k < K; ++k) ref += av[i * lda + k] * bv[j * ldb + k];
      CHECK(std::fabs(gc.as<float>()[i * ldc + j] - ref) < 1e-4);
    }
    for (int j = N; j < ldc; ++j) CHECK(std::isnan(gc.as<float>()[i * ldc + j]));  // ND_ALIGN padding: invalid
  }
  expect_violation("Wait with none in flight", [&] { mm.WaitIterateAll(); }, "no async IterateAll");
  mm.SetTail(M, N, lda + 1);
  expect_violation("K past A's row stride", [&] { mm.template IterateAll<true>(gC); }, "exceeds A's row stride");
  mm.SetTail(M, N, K);
  GlobalTensor<T> late;
  late.SetGlobalBuffer(ga.as<T>() + lda);
  mm.SetTensorA(late);
  expect_violation("A past its GM", [&] { mm.template IterateAll<true>(gC); }, "outside every registered GM range");
  mm.SetTensorA(gA);
  mm.End();
  blitz_sim::CoreCounters cube = core.ctx.cube->counters.snapshot();
  CHECK(cube.cube_flops == 2ull * M * N * K);
  CHECK(cube.gm_to_l1_bytes == uint64_t(M * K + K * N) * sizeof(T));
}

// End.md: "多个Matmul对象之间切换计算时，必须调用一次End函数" (switching computation between Matmul
// objects requires one End call): the second object may not compute until the first is ended;
// the same object may compute again without End.
void test_matmul_end()
{
  using A = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half, false>;
  using C = matmul::MatmulType<TPosition::GM, CubeFormat::ND, float>;
  Gm ws(blitz_sim::kSystemWorkspaceBytes, "workspace");
  Gm g(4096);
  blitz_sim::set_system_workspace(ws.data());
  blitz_sim::CoreScope core;
  core.ctx.check_pipe_order = false;
  TPipe pipe;
  matmul::Matmul<A, A, C> mm1, mm2;
  tiling::TCubeTiling tiling;
  REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm1, &tiling, mm2, &tiling);
  GlobalTensor<half> ga;
  GlobalTensor<float> gc;
  ga.SetGlobalBuffer(g.as<half>());
  gc.SetGlobalBuffer(g.as<float>() + 512);
  for (auto *m : {&mm1, &mm2}) {
    m->SetOrgShape(4, 8, 8, 8, 8);
    m->SetTail(4, 8, 8);
    m->SetTensorA(ga);
    m->SetTensorB(ga);
  }
  mm1.template IterateAll<true>(gc);
  mm1.template IterateAll<true>(gc);  // the same object again: no switch
  expect_violation("switch without End", [&] { mm2.template IterateAll<true>(gc); }, "requires one End call (End.md)");
  mm1.End();
  mm2.template IterateAll<true>(gc);
  mm1.SetTensorA(ga);
  mm1.SetTensorB(ga);
  expect_violation("switch back without End", [&] { mm1.template IterateAll<true>(gc); }, "End.md");
  mm2.End();
  mm1.template IterateAll<true>(gc);
  mm1.End();
}

// A missing pipe synchronisation (--cce-auto-sync=off): MTE2 writes a TBuf, V reads it with no
// flag between; the same through a queue (EnQue/DeQue) or an explicit MTE2 -> V flag passes.
void test_pipe_sync()
{
  Gm gm(4096);
  blitz_sim::CoreScope core;
  TPipe pipe;
  TBuf<TPosition::VECCALC> buf, out;
  TQue<TPosition::VECIN, 1> q;
  pipe.InitBuffer(buf, 1024);
  pipe.InitBuffer(out, 1024);
  pipe.InitBuffer(q, 1, 1024);
  GlobalTensor<float> g;
  g.SetGlobalBuffer(gm.as<float>(), 1024);
  LocalTensor<float> t = buf.Get<float>(), o = out.Get<float>();
  DataCopy(t, g, 64);
  expect_violation("RAW without sync", [&] { Adds(o, t, 1.0f, 64); }, "unsynchronised RAW");
  SetFlag<HardEvent::MTE2_V>(0);
  WaitFlag<HardEvent::MTE2_V>(0);
  Adds(o, t, 1.0f, 64);
  expect_violation("WAR without sync", [&] { DataCopy(t, g, 64); }, "unsynchronised WAR");
  LocalTensor<float> qt = q.AllocTensor<float>();
  DataCopy(qt, g, 64);
  q.EnQue(qt);
  qt = q.DeQue<float>();
  Adds(o, qt, 1.0f, 64);
  q.FreeTensor(qt);
  qt = q.AllocTensor<float>();  // waits the V -> MTE2 free event: the next copy may overwrite
  DataCopy(qt, g, 64);
  q.EnQue(qt);
  qt = q.DeQue<float>();
  q.FreeTensor(qt);
  // Scalar read of a vector result needs V -> S.
  expect_violation("V->S missing", [&] { o.GetValue(0); }, "unsynchronised RAW");
  SetFlag<HardEvent::V_S>(0);
  WaitFlag<HardEvent::V_S>(0);
  CHECK(o.GetValue(1) == 1.0f);  // GM holds zeros: 0 + 1
  // SetValue (SetValue.md): a scalar write on S; a vector read of it needs S -> V, and an index
  // past the view is refused.
  o.SetValue(2, 5.0f);
  CHECK(o.GetValue(2) == 5.0f);
  expect_violation("SetValue past the view", [&] { o[252].SetValue(4, 1.0f); }, "index 4 >= length 4");
  expect_violation("S->V missing", [&] { Adds(t, o, 1.0f, 64); }, "unsynchronised RAW");
  SetFlag<HardEvent::S_V>(0);
  WaitFlag<HardEvent::S_V>(0);
  Adds(t, o, 1.0f, 64);
}

// run_mix_launch: roles and indices per GetBlockIdx.md & co, and a vector core's violation
// reported without the cube server deadlocking.
void test_launch()
{
  Gm ws(blitz_sim::kSystemWorkspaceBytes, "workspace");
  blitz_sim::set_system_workspace(ws.data());
  std::vector<int64_t> seen(3 * 2, -1);
  std::atomic<int> aic{0};
  auto entry = [&] {
    TPipe pipe;
    using A = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half, false>;
    using C = matmul::MatmulType<TPosition::GM, CubeFormat::ND, float>;
    matmul::Matmul<A, A, C> mm;
    tiling::TCubeTiling tiling;
    if (ASCEND_IS_AIC) ++aic;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &tiling);
    seen[GetBlockIdx()] = GetSubBlockIdx() + 10 * GetTaskRatio() + 100 * GetBlockNum();
  };
  blitz_sim::LaunchReport r = blitz_sim::run_mix_launch(3, entry);
  CHECK(r.ok);
  CHECK(aic.load() == 3);
  for (int i = 0; i < 6; ++i) CHECK(seen[i] == (i % 2) + 20 + 300);
  CHECK(r.cube.size() == 3 && r.vector.size() == 6);
  auto bad = [&] {
    TPipe pipe;
    using A = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half, false>;
    using C = matmul::MatmulType<TPosition::GM, CubeFormat::ND, float>;
    matmul::Matmul<A, A, C> mm;
    tiling::TCubeTiling tiling;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &tiling);
    if (GetBlockIdx() == 3) WaitFlag<HardEvent::V_S>(0);
  };
  r = blitz_sim::run_mix_launch(2, bad);
  CHECK(!r.ok);
  CHECK(r.error.find("core aiv 3: WaitFlag") == 0);
  // A vector core that never reaches REGIST_MATMUL_OBJ: the cube server is released and says so.
  auto skip = [&] {
    if (ASCEND_IS_AIV && GetBlockIdx() == 1) return;
    TPipe pipe;
    using A = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half, false>;
    using C = matmul::MatmulType<TPosition::GM, CubeFormat::ND, float>;
    matmul::Matmul<A, A, C> mm;
    tiling::TCubeTiling tiling;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &tiling);
  };
  r = blitz_sim::run_mix_launch(1, skip);
  CHECK(!r.ok);
  CHECK(r.error.find("core aic 0") == 0);
}

}  // namespace

int main()
{
  test_numeric();
  test_cast_rounding();
  test_ub_and_queues();
  test_events();
  test_copies();
  test_vector();
  test_softmax();
  test_matmul<half>();
  test_matmul<bfloat16_t>();
  test_matmul_end();
  test_pipe_sync();
  test_launch();
  blitz_sim::clear_gm();
  if (g_failures) std::fprintf(stderr, "%d failure(s)\n", g_failures);
  else std::printf("test_model: all passed\n");
  return g_failures ? 1 : 0;
}

// The execution model's counting-only mode (blitz_sim::LaunchMode::kCountingOnly) is honest:
//   1. a launch counts exactly what the same launch counts when it computes, per core, while its
//      outputs stay as they were (control flow that reads inputs still follows them);
//   2. every rule is still checked: alignment, UB capacity, GM bounds, events, pipe order,
//      Matmul shapes and End;
//   3. a scalar read of data the skipped arithmetic would have produced stops the launch
//      (CountingUndecidable) instead of steering the kernel by garbage.
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "kernel_operator.h"
#include "lib/matmul_intf.h"
#include "blitz_sim/launch.h"

namespace {

int g_failures = 0;

#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                                 \
    }                                                                               \
  } while (0)

// body must throw E whose message contains `needle`.
template <typename E>
void expect_throw(const char *name, const std::function<void()> &body, const char *needle)
{
  try {
    body();
  } catch (const E &e) {
    if (std::string(e.what()).find(needle) == std::string::npos) {
      std::fprintf(stderr, "%s: exception without '%s': %s\n", name, needle, e.what());
      ++g_failures;
    }
    return;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "%s: unexpected exception type: %s\n", name, e.what());
    ++g_failures;
    return;
  }
  std::fprintf(stderr, "%s: nothing thrown (expected '%s')\n", name, needle);
  ++g_failures;
}
const auto expect_violation = expect_throw<blitz_sim::ModelViolation>;
const auto expect_undecidable = expect_throw<blitz_sim::CountingUndecidable>;

using namespace AscendC;

struct Gm {  // a registered GM allocation
  std::vector<uint8_t> bytes;
  explicit Gm(size_t n, const char *name = "gm") : bytes(n + 64) { blitz_sim::register_gm(data(), n, name); }
  uint8_t *data() { return bytes.data() + (32 - reinterpret_cast<uintptr_t>(bytes.data()) % 32) % 32; }
  template <typename T>
  T *as() { return reinterpret_cast<T *>(data()); }
};

using AType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half, false>;
using BType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, half, true>;
using CType = matmul::MatmulType<TPosition::GM, CubeFormat::ND, float>;
using Mm = matmul::Matmul<AType, BType, CType, CType, CFG_MDL>;

constexpr int kM = 4, kN = 8, kK = 16;  // each vector core's matmul C[kM, kN] = A B^T
constexpr int kRow = 64;                // floats each vector core copies, scales and writes

// A small kernel with every kind of work the NPU kernel does: a Matmul, queued copies, vector
// instructions of both forms, explicit flags, and a loop whose trip count the scalar unit reads
// from the input x (core i: x[i * kRow] = i + 1 rounds of Muls).
struct Program {
  Gm ws{blitz_sim::kSystemWorkspaceBytes, "workspace"};
  Gm a{kM * kK * sizeof(half), "a"}, b{kN * kK * sizeof(half), "b"};
  Gm x{4 * kRow * sizeof(float), "x"};
  Gm c{4 * kM * kN * sizeof(float), "c"}, y{4 * kRow * sizeof(float), "y"};
  tiling::TCubeTiling tiling{};

  Program()
  {
    for (int i = 0; i < kM * kK; ++i) a.as<half>()[i] = half(static_cast<float>(i % 5) - 2.0f);
    for (int i = 0; i < kN * kK; ++i) b.as<half>()[i] = half(static_cast<float>(i % 3) - 1.0f);
    for (int i = 0; i < 4 * kRow; ++i) x.as<float>()[i] = i % kRow == 0 ? static_cast<float>(i / kRow + 1) : 0.5f;
    reset_outputs();
  }
  void reset_outputs()
  {
    for (int i = 0; i < 4 * kM * kN; ++i) c.as<float>()[i] = -1.0f;  // sentinels
    for (int i = 0; i < 4 * kRow; ++i) y.as<float>()[i] = -1.0f;
  }

  void entry()
  {
    TPipe pipe;
    Mm mm;
    REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &tiling);
    const int64_t core = GetBlockIdx();
    TQue<TPosition::VECIN, 1> qin;
    TQue<TPosition::VECOUT, 1> qout;
    pipe.InitBuffer(qin, 1, kRow * sizeof(float));
    pipe.InitBuffer(qout, 1, kRow * sizeof(float));
    GlobalTensor<half> ga, gb;
    GlobalTensor<float> gc, gx, gy;
    ga.SetGlobalBuffer(a.as<half>());
    gb.SetGlobalBuffer(b.as<half>());
    gc.SetGlobalBuffer(c.as<float>() + core * kM * kN, kM * kN);
    gx.SetGlobalBuffer(x.as<float>() + core * kRow, kRow);
    gy.SetGlobalBuffer(y.as<float>() + core * kRow, kRow);

    mm.SetOrgShape(kM, kN, kK, kK, kN);
    mm.SetTail(kM, kN, kK);
    mm.SetTensorA(ga);
    mm.SetTensorB(gb, true);
    mm.template IterateAll<false>(gc, 0, false, true);
    mm.WaitIterateAll();
    mm.End();

    LocalTensor<float> in = qin.AllocTensor<float>();
    DataCopy(in, gx, kRow);
    qin.EnQue(in);
    in = qin.DeQue<float>();
    SetFlag<HardEvent::MTE2_S>(0);  // MTE2 -> S: the scalar unit reads the copied trip count
    WaitFlag<HardEvent::MTE2_S>(0);
    const int rounds = static_cast<int>(in.GetValue(0));
    LocalTensor<float> out = qout.AllocTensor<float>();
    Adds(out, in, 0.0f, kRow);
    for (int r = 0; r < rounds; ++r) Muls(out, out, 2.0f, kRow);
    uint64_t bits[2] = {0x0Full, 0};
    Duplicate(out[8], 7.0f, bits, 1, 1, 8);  // bit-mask form: elements 8..11
    qout.EnQue(out);
    out = qout.DeQue<float>();
    DataCopy(gy, out, kRow);
    qout.FreeTensor(out);
    qin.FreeTensor(in);
  }
};

void test_counts_equal()
{
  Program prog;
  blitz_sim::set_system_workspace(prog.ws.data());
  const std::function<void()> entry = [&] { prog.entry(); };
  const blitz_sim::LaunchReport numeric = blitz_sim::run_mix_launch(2, entry, blitz_sim::LaunchMode::kNumeric);
  CHECK(numeric.ok && !numeric.counting_only);
  if (!numeric.ok) std::fprintf(stderr, "numeric: %s\n", numeric.error.c_str());
  // The numeric run computed: core 2 doubled 0.5 three times, and wrote the matmul.
  CHECK(prog.y.as<float>()[2 * kRow + 1] == 4.0f && prog.y.as<float>()[2 * kRow + 8] == 7.0f);
  CHECK(prog.c.as<float>()[0] != -1.0f);

  prog.reset_outputs();
  const blitz_sim::LaunchReport counting = blitz_sim::run_mix_launch(2, entry, blitz_sim::LaunchMode::kCountingOnly);
  CHECK(counting.ok && counting.counting_only);
  if (!counting.ok) std::fprintf(stderr, "counting: %s\n", counting.error.c_str());
  // Nothing computed reached GM.
  for (int i = 0; i < 4 * kRow; ++i) CHECK(prog.y.as<float>()[i] == -1.0f);
  for (int i = 0; i < 4 * kM * kN; ++i) CHECK(prog.c.as<float>()[i] == -1.0f);
  // Exactly the same counts, core by core; the trip counts differ per core, so control flow that
  // reads inputs was followed.
  CHECK(numeric.cube.size() == counting.cube.size() && numeric.vector.size() == counting.vector.size());
  for (size_t i = 0; i < numeric.cube.size() && i < counting.cube.size(); ++i) CHECK(numeric.cube[i] == counting.cube[i]);
  for (size_t i = 0; i < numeric.vector.size() && i < counting.vector.size(); ++i) {
    CHECK(numeric.vector[i] == counting.vector[i]);
  }
  CHECK(numeric.vector.size() == 4 && numeric.vector[0].vector_instrs + 3 == numeric.vector[3].vector_instrs);
  CHECK(numeric.cube[0].matmul_calls == 2 && numeric.cube[0].cube_flops == 2ull * 2 * kM * kN * kK);
  CHECK(numeric.vector[0].gm_to_ub_copies == 1 && numeric.vector[0].ub_to_gm_copies == 1);
  CHECK(numeric.vector[0].scalar_reads == 1 && numeric.vector[0].set_flags >= 3);
  const std::string json = blitz_sim::report_json(counting, 2);
  CHECK(json.find("\"counting_only\":true") != std::string::npos);
  CHECK(json.find("\"matmul_calls\":2") != std::string::npos);
}

// Every rule still fires in a counting-only core.
void test_checks_still_fire()
{
  Gm gm(4096, "input"), ws(blitz_sim::kSystemWorkspaceBytes, "workspace");
  blitz_sim::set_system_workspace(ws.data());
  blitz_sim::CoreScope core;
  core.ctx.counting_only = true;
  CHECK(!blitz_sim::computes());
  TPipe pipe;
  Mm mm, other;
  tiling::TCubeTiling tiling{};
  REGIST_MATMUL_OBJ(&pipe, GetSysWorkSpacePtr(), mm, &tiling, other, &tiling);
  TBuf<TPosition::VECCALC> buf, big;
  pipe.InitBuffer(buf, 2048);
  expect_violation("UB over capacity", [&] { pipe.InitBuffer(big, 188160); }, "user UB of 188160");
  GlobalTensor<float> g;
  g.SetGlobalBuffer(gm.as<float>(), 1024);
  LocalTensor<float> t = buf.Get<float>();
  expect_violation("misaligned DataCopy", [&] { DataCopy(t[1], g, 8); }, "not 32-byte aligned");
  expect_violation("DataCopy count", [&] { DataCopy(t, g, 12); }, "not a multiple of 32");
  expect_violation("GM past its size", [&] { DataCopy(t, g[1020], 8); }, "past the SetGlobalBuffer size");
  expect_violation("pad > 32 B", [&] {
    DataCopyPad(t, g, DataCopyExtParams(1, 8, 0, 0, 0), DataCopyPadExtParams<float>{true, 0, 9, 0.0f});
  }, "exceed 32 bytes");
  expect_violation("vector misaligned", [&] { Muls(t[1], t[1], 2.0f, 8); }, "not 32-byte aligned");
  expect_violation("vector past the tensor", [&] { Adds(t, t, 1.0f, 1000); }, "outside the tensor");
  expect_violation("wait without set", [] { WaitFlag<HardEvent::V_S>(0); }, "would hang");
  DataCopy(t, g, 64);
  expect_violation("RAW without sync", [&] { Adds(t[64], t, 1.0f, 64); }, "unsynchronised RAW");
  // Matmul shapes and the End rule (End.md).
  GlobalTensor<half> ga;
  GlobalTensor<float> gc;
  ga.SetGlobalBuffer(reinterpret_cast<half *>(gm.data()));
  gc.SetGlobalBuffer(gm.as<float>() + 512);
  for (Mm *m : {&mm, &other}) {
    m->SetOrgShape(kM, kN, kK, kK, kN);
    m->SetTensorA(ga);
    m->SetTensorB(ga, true);
  }
  mm.SetTail(kM, kN, kK + 1);
  expect_violation("K past A's row stride", [&] { mm.template IterateAll<true>(gc); }, "exceeds A's row stride");
  mm.SetTail(kM, kN, kK);
  mm.template IterateAll<true>(gc);
  other.SetTail(kM, kN, kK);
  expect_violation("switch without End", [&] { other.template IterateAll<true>(gc); }, "End.md");
  mm.End();
  other.template IterateAll<true>(gc);
  other.End();
  CHECK(core.ctx.cube->counters.matmul_calls.load() == 2);
}

// Scalar reads: of copied input data they see the data; of anything computed they stop.
void test_undecidable_reads()
{
  Gm in(1024, "input"), out(1024, "output");
  for (int i = 0; i < 256; ++i) in.as<float>()[i] = static_cast<float>(i);
  blitz_sim::CoreScope core;
  core.ctx.counting_only = true;
  core.ctx.check_pipe_order = false;  // the reads, not their ordering, are under test
  TPipe pipe;
  TBuf<TPosition::VECCALC> buf;
  pipe.InitBuffer(buf, 1024);
  GlobalTensor<float> gi, go;
  gi.SetGlobalBuffer(in.as<float>(), 256);
  go.SetGlobalBuffer(out.as<float>(), 256);
  LocalTensor<float> t = buf.Get<float>();
  DataCopy(t, gi, 64);
  CHECK(t.GetValue(5) == 5.0f);  // input bytes are moved, so input-driven control flow runs
  CHECK(gi.GetValue(7) == 7.0f);
  Muls(t, t, 2.0f, 64);
  expect_undecidable("read of a skipped result", [&] { t.GetValue(5); }, "counting-only launch");
  DataCopy(t, gi, 64);  // real data again
  CHECK(t.GetValue(5) == 5.0f);
  out.as<float>()[3] = 42.0f;
  DataCopy(go, t, 64);  // writes nothing in GM, marks it as never computed
  CHECK(out.as<float>()[3] == 42.0f);
  expect_undecidable("GM read of a skipped write", [&] { go.GetValue(3); }, "counting-only launch");
  DataCopy(t[64], go, 64);  // nothing is moved from it either
  expect_undecidable("UB copy of a skipped write", [&] { t.GetValue(64 + 3); }, "counting-only launch");
}

}  // namespace

int main()
{
  test_counts_equal();
  blitz_sim::clear_gm();
  test_checks_still_fire();
  blitz_sim::clear_gm();
  test_undecidable_reads();
  blitz_sim::clear_gm();
  if (g_failures) std::fprintf(stderr, "%d failure(s)\n", g_failures);
  else std::printf("test_counting: all passed\n");
  return g_failures ? 1 : 0;
}

// The CPU kernel against a naive dense attention in double precision written here from
// DESIGN.md's rules (explicit block-mask expansion, no code shared with the kernel), on every
// path this CPU can run.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "backend/kernel_settings.h"
#include "kernel/attention_problem.h"
#include "test_util.h"

using blitz::cpu::AttentionProblem;
using blitz::cpu::ElementType;
using blitz::cpu::KernelPath;

namespace {

// ---- element storage, independent of the kernel's conversions ----
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return (uint16_t)(u >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// The compiler's IEEE half (round to nearest even): g++ 12 has _Float16 in C++ on x86 only,
// and __fp16 (the same binary16, Arm's storage type) on AArch64.
#if defined(__aarch64__)
using Half = __fp16;
#else
using Half = _Float16;
#endif
uint16_t to_fp16(float f) {
  Half h = (Half)f;
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}
float from_fp16(uint16_t u) {
  Half h;
  std::memcpy(&h, &u, 2);
  return (float)h;
}

struct Buffer {  // a tensor's storage in one dtype, readable as double
  ElementType type;
  std::vector<float> f32;
  std::vector<uint16_t> h16;
  explicit Buffer(ElementType t, size_t n) : type(t) {
    if (t == ElementType::kFloat32) f32.assign(n, 0.f); else h16.assign(n, 0);
  }
  void *data() { return type == ElementType::kFloat32 ? (void *)f32.data() : (void *)h16.data(); }
  void set(size_t i, float v) {
    if (type == ElementType::kFloat32) f32[i] = v;
    else h16[i] = type == ElementType::kBFloat16 ? to_bf16(v) : to_fp16(v);
  }
  double get(size_t i) const {
    if (type == ElementType::kFloat32) return f32[i];
    return type == ElementType::kBFloat16 ? from_bf16(h16[i]) : from_fp16(h16[i]);
  }
  void poison() {  // a value the kernel must overwrite
    for (size_t i = 0; i < (type == ElementType::kFloat32 ? f32.size() : h16.size()); ++i) set(i, 777.f);
  }
};

struct Case {
  std::string name;
  ElementType dtype = ElementType::kFloat32;
  int64_t B = 1, H = 2, Hkv = 2, Sq = 100, Skv = 130, D = 16;
  int64_t bq = 64, bkv = 64;
  bool bsnd = false;         // q/k/v/out as [B, S, N, D] instead of [B, N, S, D]
  bool out_bsnd = false;     // BNSD in, BSND out
  int64_t sabi_b = 1, sabi_h = 1;  // 0 = dense (no sabi)
  double keep = 0.6;         // share of sabi entries that name a block
  std::vector<uint16_t> row_blocks;  // if set: every sabi row lists exactly these, in this order
  std::vector<std::vector<uint16_t>> row_cycle;  // if set: sabi row r lists row_cycle[r % size]
  bool junk = true;          // sprinkle out-of-range indices into sabi rows
  std::vector<int64_t> aq, akv;
  int mode = 0;
  int64_t pre = 2147483647, next = 2147483647;
  bool explicit_mask = false, mask_per_batch = false;
  bool lse = true;
  double scale_factor = 1.0;  // times 1/sqrt(D)
};

struct Inputs {
  Buffer q, k, v, out;
  std::vector<uint16_t> sabi;
  int64_t sabi_rows = 0, sabi_width = 0;
  std::vector<uint8_t> mask;
  std::vector<float> lse;
  Inputs(const Case &c)
      : q(c.dtype, c.B * c.H * c.Sq * c.D), k(c.dtype, c.B * c.Hkv * c.Skv * c.D),
        v(c.dtype, c.B * c.Hkv * c.Skv * c.D), out(c.dtype, c.B * c.H * c.Sq * c.D) {}
};

// Element offset of (b, h, s, d) in a [B, N, S, D] or [B, S, N, D] buffer.
int64_t offset(bool bsnd, int64_t N, int64_t S, int64_t D, int64_t b, int64_t h, int64_t s, int64_t d) {
  return bsnd ? ((b * S + s) * N + h) * D + d : ((b * N + h) * S + s) * D + d;
}

Inputs make_inputs(const Case &c, unsigned seed) {
  Inputs in(c);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  for (int64_t i = 0; i < c.B * c.H * c.Sq * c.D; ++i) in.q.set(i, normal(rng));
  for (int64_t i = 0; i < c.B * c.Hkv * c.Skv * c.D; ++i) in.k.set(i, normal(rng));
  for (int64_t i = 0; i < c.B * c.Hkv * c.Skv * c.D; ++i) in.v.set(i, normal(rng));
  in.out.poison();
  if (c.sabi_b > 0) {
    const int64_t kv_blocks = (c.Skv + c.bkv - 1) / c.bkv;
    in.sabi_rows = (c.Sq + c.bq - 1) / c.bq;
    in.sabi_width = kv_blocks + 2;  // room for -1 and junk between valid entries
    in.sabi.assign(c.sabi_b * c.sabi_h * in.sabi_rows * in.sabi_width, 0xFFFF);
    for (int64_t r = 0; r < c.sabi_b * c.sabi_h * in.sabi_rows; ++r) {
      uint16_t *row = &in.sabi[r * in.sabi_width];
      std::vector<uint16_t> blocks;
      if (!c.row_blocks.empty()) {
        std::copy(c.row_blocks.begin(), c.row_blocks.end(), row);
        continue;
      }
      if (!c.row_cycle.empty()) {
        const std::vector<uint16_t> &listed = c.row_cycle[r % c.row_cycle.size()];
        std::copy(listed.begin(), listed.end(), row);
        continue;
      }
      for (int64_t kb = 0; kb < kv_blocks; ++kb)
        if (std::uniform_real_distribution<double>(0, 1)(rng) < c.keep) blocks.push_back((uint16_t)kb);
      std::shuffle(blocks.begin(), blocks.end(), rng);  // any order is allowed
      for (size_t i = 0; i < blocks.size(); ++i) row[i] = blocks[i];
      std::shuffle(row, row + in.sabi_width, rng);      // -1 anywhere
      if (c.junk) {
        for (int64_t w = 0; w < in.sabi_width; ++w)
          if (row[w] == 0xFFFF && rng() % 2) row[w] = (uint16_t)(kv_blocks + rng() % 5000);
      }
    }
  }
  if (c.explicit_mask) {
    const int64_t mb = c.mask_per_batch ? c.B : 1;
    in.mask.resize(mb * c.Sq * c.Skv);
    for (auto &m : in.mask) m = rng() % 4 == 0;
  }
  if (c.lse) in.lse.assign(c.B * c.H * c.Sq, 12345.f);
  return in;
}

AttentionProblem make_problem(const Case &c, Inputs &in) {
  AttentionProblem p;
  p.dtype = c.dtype;
  p.batch = c.B; p.heads_q = c.H; p.heads_kv = c.Hkv; p.seq_q = c.Sq; p.seq_kv = c.Skv; p.head_dim = c.D;
  auto view = [&](void *data, bool bsnd, int64_t N, int64_t S) {
    blitz::cpu::TensorView t;
    t.data = data;
    t.stride_b = N * S * c.D;
    t.stride_h = bsnd ? c.D : S * c.D;
    t.stride_s = bsnd ? N * c.D : c.D;
    return t;
  };
  p.q = view(in.q.data(), c.bsnd, c.H, c.Sq);
  p.k = view(in.k.data(), c.bsnd, c.Hkv, c.Skv);
  p.v = view(in.v.data(), c.bsnd, c.Hkv, c.Skv);
  p.out = view(in.out.data(), c.bsnd || c.out_bsnd, c.H, c.Sq);
  p.lse = c.lse ? in.lse.data() : nullptr;
  if (c.sabi_b > 0) {
    p.sabi = in.sabi.data();
    p.sabi_batch = c.sabi_b; p.sabi_heads = c.sabi_h; p.sabi_rows = in.sabi_rows; p.sabi_width = in.sabi_width;
  }
  p.block_q = c.bq; p.block_kv = c.bkv;
  p.scale = (float)(c.scale_factor / std::sqrt((double)c.D));
  if (!c.aq.empty()) { p.actual_seq_q = c.aq.data(); p.actual_seq_q_count = (int64_t)c.aq.size(); }
  if (!c.akv.empty()) { p.actual_seq_kv = c.akv.data(); p.actual_seq_kv_count = (int64_t)c.akv.size(); }
  p.sparse_mode = c.mode; p.pre_tokens = c.pre; p.next_tokens = c.next;
  if (c.explicit_mask) {
    p.mask = in.mask.data();
    p.mask_stride_b = c.mask_per_batch ? c.Sq * c.Skv : 0;
    p.mask_stride_q = c.Skv;
  }
  return p;
}

int64_t actual(const std::vector<int64_t> &lens, int64_t b, int64_t full) {
  if (lens.empty()) return full;
  return std::min(full, lens[lens.size() == 1 ? 0 : b]);
}

// Dense attention in double over the allowed set: sabi blocks x length bounds x token mask.
void reference(const Case &c, const Inputs &in, std::vector<double> &out, std::vector<double> &lse) {
  out.assign(c.B * c.H * c.Sq * c.D, 0.0);
  lse.assign(c.B * c.H * c.Sq, -INFINITY);
  const double scale = (double)(float)(c.scale_factor / std::sqrt((double)c.D));
  const int64_t kv_blocks = (c.Skv + c.bkv - 1) / c.bkv;
  std::vector<double> s(c.Skv);
  std::vector<char> selected(kv_blocks);
  for (int64_t b = 0; b < c.B; ++b) {
    const int64_t ql = actual(c.aq, b, c.Sq), kl = actual(c.akv, b, c.Skv), o = kl - ql;
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t hk = h / (c.H / c.Hkv);
      for (int64_t i = 0; i < ql; ++i) {
        std::fill(selected.begin(), selected.end(), c.sabi_b == 0);
        if (c.sabi_b > 0) {
          const int64_t sb = c.sabi_b == 1 ? 0 : b, sh = c.sabi_h == 1 ? 0 : h;
          const uint16_t *row = &in.sabi[((sb * c.sabi_h + sh) * in.sabi_rows + i / c.bq) * in.sabi_width];
          for (int64_t w = 0; w < in.sabi_width; ++w)
            if (row[w] < kv_blocks) selected[row[w]] = 1;
        }
        double m = -INFINITY;
        for (int64_t j = 0; j < c.Skv; ++j) {
          bool ok = selected[j / c.bkv] && j < kl;
          if (c.mode == 2) ok = ok && j <= i;
          if (c.mode == 3) ok = ok && j <= i + o;
          if (c.mode == 4) ok = ok && j >= i + o - c.pre && j <= i + o + c.next;
          if (c.mode <= 1 && c.explicit_mask)
            ok = ok && in.mask[(c.mask_per_batch ? b : 0) * c.Sq * c.Skv + i * c.Skv + j] == 0;
          s[j] = -INFINITY;
          if (!ok) continue;
          double dot = 0;
          for (int64_t d = 0; d < c.D; ++d)
            dot += in.q.get(offset(c.bsnd, c.H, c.Sq, c.D, b, h, i, d)) *
                   in.k.get(offset(c.bsnd, c.Hkv, c.Skv, c.D, b, hk, j, d));
          s[j] = dot * scale;
          m = std::max(m, s[j]);
        }
        if (m == -INFINITY) continue;
        double denom = 0;
        for (int64_t j = 0; j < c.Skv; ++j) denom += s[j] == -INFINITY ? 0 : std::exp(s[j] - m);
        for (int64_t j = 0; j < c.Skv; ++j) {
          if (s[j] == -INFINITY) continue;
          const double w = std::exp(s[j] - m) / denom;
          for (int64_t d = 0; d < c.D; ++d)
            out[((b * c.H + h) * c.Sq + i) * c.D + d] += w * in.v.get(offset(c.bsnd, c.Hkv, c.Skv, c.D, b, hk, j, d));
        }
        lse[(b * c.H + h) * c.Sq + i] = m + std::log(denom);
      }
    }
  }
}

double tolerance(ElementType t) {
  return t == ElementType::kFloat32 ? 1e-4 : t == ElementType::kFloat16 ? 4e-3 : 2.5e-2;
}

const char *path_label(KernelPath path) {
  switch (path) {
    case KernelPath::kPortable: return "portable";
    case KernelPath::kAvx2: return "avx2";
    case KernelPath::kAvx512: return "avx512";
    case KernelPath::kAmx: return "amx";
    case KernelPath::kNeon: return "neon";
    case KernelPath::kNeonBf16: return "neon_bf16";
    case KernelPath::kAuto: return "auto";
  }
  return "?";
}

// A case's double reference. Its inputs (seed kCaseSeed) are the same for every path and thread
// count, so callers that run a case several times compute it once (under qemu the reference,
// not the kernel, is most of the run).
struct Expected {
  std::vector<double> out, lse;
};
constexpr unsigned kCaseSeed = 1234;

Expected expected_for(const Case &c) {
  const Inputs in = make_inputs(c, kCaseSeed);
  Expected e;
  reference(c, in, e.out, e.lse);
  return e;
}

void run_case(const Case &c, KernelPath path, int threads, const Expected &expected) {
  Inputs in = make_inputs(c, kCaseSeed);
  AttentionProblem p = make_problem(c, in);
  std::vector<unsigned char> ws(blitz::cpu::workspace_size(p, threads) + 1);
  const char *err = nullptr;
  // +1 offset: the kernel must cope with an unaligned workspace pointer.
  const int rc = blitz::cpu::run_attention(p, ws.data() + 1, ws.size() - 1, threads, path, &err);
  const std::string where = c.name + " path=" + path_label(path) + " threads=" + std::to_string(threads);
  CHECK_MSG(rc == 0, where + ": " + (err ? err : ""));
  if (rc != 0) return;
  const std::vector<double> &ref = expected.out, &ref_lse = expected.lse;
  const bool out_bsnd = c.bsnd || c.out_bsnd;
  double worst = 0;
  std::string first_bad;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.Sq; ++i) {
        for (int64_t d = 0; d < c.D; ++d) {
          const double got = in.out.get(offset(out_bsnd, c.H, c.Sq, c.D, b, h, i, d));
          const double err_abs = std::fabs(got - ref[((b * c.H + h) * c.Sq + i) * c.D + d]);
          if (!(err_abs <= worst)) {
            worst = std::isnan(err_abs) ? INFINITY : err_abs;
            if (worst > tolerance(c.dtype) && first_bad.empty())
              first_bad = " first bad (b,h,row)=(" + std::to_string(b) + "," + std::to_string(h) + "," + std::to_string(i) + ")";
          }
        }
        if (c.lse) {
          const double want = ref_lse[(b * c.H + h) * c.Sq + i];
          const double got = in.lse[(b * c.H + h) * c.Sq + i];
          if (want == -INFINITY) CHECK_MSG(got == -INFINITY, where + " lse should be -inf");
          else CHECK_MSG(std::fabs(got - want) < 1e-3 * (1 + std::fabs(want)), where + " lse");
        }
      }
  CHECK_MSG(worst <= tolerance(c.dtype), where + " max abs err " + std::to_string(worst) + first_bad);
}

// Every path the kernel has, in isa_summary's order.
constexpr KernelPath kEveryPath[] = {KernelPath::kPortable, KernelPath::kAvx2, KernelPath::kAvx512,
                                     KernelPath::kAmx,      KernelPath::kNeon, KernelPath::kNeonBf16};

// Every path this CPU can run, slowest first (within each ISA).
std::vector<KernelPath> paths() {
  std::vector<KernelPath> p{KernelPath::kPortable};
  for (KernelPath q : kEveryPath) {
    if (q == KernelPath::kPortable) continue;
    AttentionProblem probe;  // nothing to compute: only the path check runs
    probe.heads_kv = 1;
    if (blitz::cpu::run_attention(probe, nullptr, 0, 1, q, nullptr) == 0) p.push_back(q);
  }
  return p;
}

// Which paths this run covers, printed so a green run on an AVX2-only machine is not taken for
// coverage of AVX-512; and the library's own list (isa_summary's paths=) must agree with it.
TEST(kernel_paths_tested_here) {
  std::string tested, missing;
  for (KernelPath q : kEveryPath) {
    const auto runnable = paths();
    std::string &list = std::find(runnable.begin(), runnable.end(), q) != runnable.end() ? tested : missing;
    list += std::string(list.empty() ? "" : ",") + path_label(q);
  }
  std::printf("CPU kernel paths tested: %s; not available here: %s\n", tested.c_str(),
              missing.empty() ? "none" : missing.c_str());
  std::printf("CPU: %s\n", blitz::cpu::isa_summary());
  CHECK_MSG(std::strstr(blitz::cpu::isa_summary(), ("paths=" + tested).c_str()) != nullptr,
            std::string("isa_summary lists other paths: ") + blitz::cpu::isa_summary());
}

void run_case(const Case &c, KernelPath path, int threads) { run_case(c, path, threads, expected_for(c)); }

void run_everywhere(const Case &c) {
  const Expected expected = expected_for(c);
  for (KernelPath path : paths())
    for (int threads : {1, 3}) run_case(c, path, threads, expected);
}

std::vector<Case> cases_for(ElementType t) {
  std::vector<Case> cs;
  auto add = [&](Case c) { c.dtype = t; cs.push_back(c); };
  Case c;
  c.name = "sabi_bnsd"; add(c);
  c = Case(); c.name = "dense_no_sabi"; c.sabi_b = 0; add(c);
  c = Case(); c.name = "gqa_bsnd_batch2"; c.B = 2; c.H = 4; c.Hkv = 2; c.bsnd = true; c.sabi_b = 2; c.sabi_h = 4; add(c);
  c = Case(); c.name = "mqa_out_bsnd"; c.H = 3; c.Hkv = 1; c.out_bsnd = true; c.sabi_h = 3; add(c);
  c = Case(); c.name = "actual_lengths"; c.B = 3; c.sabi_b = 3; c.aq = {100, 37, 0}; c.akv = {1, 130, 70}; add(c);
  c = Case(); c.name = "causal_top_left"; c.mode = 2; c.Sq = 150; c.Skv = 120; c.keep = 0.8; add(c);
  c = Case(); c.name = "causal_bottom_right_lengths"; c.mode = 3; c.B = 2; c.aq = {90, 150}; c.akv = {130}; c.Sq = 150; add(c);
  c = Case(); c.name = "band"; c.mode = 4; c.pre = 20; c.next = 5; c.Sq = 130; c.Skv = 200; c.keep = 0.9; add(c);
  c = Case(); c.name = "band_empty_rows"; c.mode = 4; c.pre = -3; c.next = -1; c.sabi_b = 0; add(c);
  c = Case(); c.name = "explicit_mask"; c.mode = 1; c.explicit_mask = true; c.B = 2; c.mask_per_batch = true; add(c);
  c = Case(); c.name = "explicit_mask_broadcast"; c.explicit_mask = true; c.B = 2; add(c);
  c = Case(); c.name = "empty_sabi"; c.keep = 0.0; add(c);
  c = Case(); c.name = "skv_zero"; c.Skv = 0; c.sabi_b = 0; add(c);
  c = Case(); c.name = "default_tiles_unaligned"; c.bq = 128; c.bkv = 512; c.Sq = 300; c.Skv = 1100; c.D = 64; c.H = 1; c.Hkv = 1; add(c);
  c = Case(); c.name = "d128_tail"; c.bq = 128; c.bkv = 512; c.Sq = 129; c.Skv = 513; c.D = 128; c.H = 1; c.Hkv = 1; c.keep = 1.0; add(c);
  c = Case(); c.name = "odd_head_dim"; c.D = 40; c.bkv = 128; c.Skv = 300; add(c);
  c = Case(); c.name = "head_dim_not_even"; c.D = 33; add(c);
  c = Case(); c.name = "negative_scale"; c.scale_factor = -1.5; add(c);
  c = Case(); c.name = "band_extreme_tokens"; c.mode = 4; c.pre = -(int64_t(1) << 62); c.next = int64_t(1) << 62; c.keep = 1.0; add(c);
  c = Case(); c.name = "band_wide_negative_next"; c.mode = 4; c.pre = 200; c.next = -40; c.keep = 1.0; add(c);
  return cs;
}

}  // namespace

TEST(kernel_fp32_vs_double_reference) {
  for (const Case &c : cases_for(ElementType::kFloat32)) run_everywhere(c);
}
// Key blocks of 4 MiB packed (fp32, D = 512, 1024 keys) overflow the AVX-512 path's per-thread
// K/V cache (32 MiB): slots are evicted and repacked between the two query blocks.
// Under emulation (tests/aarch64/run_emulated.sh sets BLITZ_ACL_EMULATED) the two K/V cache tests
// take minutes (tens of MiB of K/V and their double reference, every instruction translated): the
// cache code is the same on every path and runs natively on x86; say so instead of running them.
bool skipped_under_emulation(const char *test) {
  const char *emulator = std::getenv("BLITZ_ACL_EMULATED");
  if (emulator == nullptr) return false;
  std::printf("%s: SKIPPED under emulation (%s): too slow there; the same cache code runs natively\n", test,
              emulator);
  return true;
}

TEST(kernel_kv_cache_eviction) {
  if (skipped_under_emulation("kernel_kv_cache_eviction")) return;
  Case c;
  c.name = "kv_cache_eviction";
  c.H = c.Hkv = 1;
  c.D = 512;
  c.Sq = 128;
  c.bq = 64;
  c.bkv = 1024;
  c.Skv = 12 * 1024 - 7;
  c.keep = 0.7;
  const Expected expected = expected_for(c);
  for (KernelPath path : paths()) run_case(c, path, 1, expected);
}
// bf16 blocks of 2 MiB packed (D = 512, 1024 keys): 16 cache slots, so blocks 0 and 16 share one.
// Rows that go 0 -> 16 make the amx path's pipeline drain before repacking the slot whose V the
// previous chunk's PV still needs; 16 -> 1 -> 15 -> 3 and the return to slot 0 repack in between.
// bq = 64 has two 32-row chunks per tile, bq = 32 one.
TEST(kernel_kv_cache_slot_shared_by_consecutive_tiles) {
  if (skipped_under_emulation("kernel_kv_cache_slot_shared_by_consecutive_tiles")) return;
  for (int64_t bq : {64, 32}) {
    Case c;
    c.name = "kv_slot_shared_bq" + std::to_string(bq);
    c.dtype = ElementType::kBFloat16;
    c.H = c.Hkv = 1;
    c.D = 512;
    c.Sq = 2 * bq - 5;
    c.bq = bq;
    c.bkv = 1024;
    c.Skv = 17 * 1024 - 7;
    c.row_blocks = {0, 16, 1, 15, 3};
    for (KernelPath path : paths()) run_case(c, path, 1);
  }
}

// Tasks in sequence on one thread, and ranges cut at different tasks (1, 2, 3 and 8 threads;
// with more threads than cores, workers take grains of each other's ranges: attention.cpp). Rows with 0, 1, 2 and many tiles in a
// cycle that does not divide the rows, so neighbouring tasks differ; with bq = 32 a tile is one
// amx chunk, with bq = 128 four. GQA and two batch entries make consecutive tasks read the same
// key block of another key head: the same per-thread K/V slot under another tag (the amx
// pipeline must drain before repacking it). Fails if a tile is dropped or given to the wrong
// task, a grain is skipped, or a task finalized early or not at all (outputs start poisoned).
TEST(kernel_tasks_in_sequence) {
  Case base;
  base.dtype = ElementType::kBFloat16;
  base.B = 2;
  base.H = 4;
  base.Hkv = 2;
  base.D = 64;
  base.bkv = 64;
  base.Skv = 6 * 64 - 9;
  base.sabi_b = 2;
  base.sabi_h = 4;
  base.row_cycle = {{}, {3}, {0, 5}, {1, 2, 3, 4, 5, 0}, {2}, {}, {5, 4}};
  std::vector<Case> cs;
  for (int64_t bq : {32, 128}) {
    Case c = base;
    c.bq = bq;
    c.Sq = 5 * bq - 7;
    c.name = "tasks_in_sequence_bq" + std::to_string(bq);
    cs.push_back(c);
    c.name += "_causal_lengths";
    c.mode = 3;
    c.aq = {c.Sq - 40, c.Sq};
    c.akv = {c.Skv, 150};
    cs.push_back(c);
  }
  for (const Case &c : cs) {
    const Expected expected = expected_for(c);
    for (KernelPath path : paths())
      for (int threads : {1, 2, 3, 8}) run_case(c, path, threads, expected);
  }
}

TEST(kernel_fp16_vs_double_reference) {
  for (const Case &c : cases_for(ElementType::kFloat16)) run_everywhere(c);
}
TEST(kernel_bf16_vs_double_reference) {
  for (const Case &c : cases_for(ElementType::kBFloat16)) run_everywhere(c);
}

TEST(kernel_rows_past_q_length_are_zero) {
  Case c;
  c.name = "rows_past_q";
  c.aq = {10};
  Inputs in = make_inputs(c, 5);
  AttentionProblem p = make_problem(c, in);
  for (KernelPath path : paths()) {
    in.out.poison();
    std::vector<unsigned char> ws(blitz::cpu::workspace_size(p, 2));
    CHECK(blitz::cpu::run_attention(p, ws.data(), ws.size(), 2, path, nullptr) == 0);
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 10; i < c.Sq; ++i) {
        for (int64_t d = 0; d < c.D; ++d) CHECK(in.out.get(offset(false, c.H, c.Sq, c.D, 0, h, i, d)) == 0.0);
        CHECK(in.lse[h * c.Sq + i] == -INFINITY);
      }
  }
}

// A child made by fork() after the pool has threads must still run (fresh pool, no deadlock).
TEST(kernel_runs_after_fork) {
  // qemu-user 7.2 (Debian 12) aborts in the child of a multi-threaded guest's fork() (its own
  // assertions: qemu_plugin_vcpu_init_hook, cpu_exec's cpu == current_cpu); not our pool's
  // doing. tests/aarch64/run_emulated.sh sets this variable, under emulation only.
  if (const char *emulator = std::getenv("BLITZ_ACL_EMULATED")) {
    std::printf("kernel_runs_after_fork: SKIPPED under emulation (%s): qemu-user 7.2 aborts in a "
                "multi-threaded guest's forked child (qemu's own assertion), not a kernel failure\n",
                emulator);
    return;
  }
  Case c;
  c.name = "after_fork";
  run_case(c, paths().back(), 2);  // the parent's pool now has a worker thread
  const pid_t child = fork();
  if (child == 0) {
    alarm(60);  // a deadlock ends as SIGALRM, a failure below
    Inputs in = make_inputs(c, 9);
    AttentionProblem p = make_problem(c, in);
    std::vector<unsigned char> ws(blitz::cpu::workspace_size(p, 2));
    _exit(blitz::cpu::run_attention(p, ws.data(), ws.size(), 2, KernelPath::kAuto, nullptr) == 0 ? 0 : 1);
  }
  int status = 0;
  CHECK(child > 0 && waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

TEST(kernel_small_workspace_is_an_error) {
  Case c;
  Inputs in = make_inputs(c, 6);
  AttentionProblem p = make_problem(c, in);
  std::vector<unsigned char> ws(blitz::cpu::workspace_size(p, 2));
  const char *err = nullptr;
  CHECK(blitz::cpu::run_attention(p, ws.data(), ws.size() - 64, 2, KernelPath::kPortable, &err) != 0);
  CHECK(err != nullptr && std::strlen(err) > 0);
}

// The path and thread count come down from the caller's settings (backend/kernel_settings.h:
// blitzCpuSetKernelSettings for the calling thread, which the binding fills from
// BLITZ_ACL_CPU_PATH / BLITZ_ACL_NUM_THREADS); the kernel itself ignores the environment.
TEST(kernel_path_passed_down) {
  using blitz::cpu::KernelSettings;
  KernelSettings s;
  std::string why;
  CHECK(blitz::cpu::parse_kernel_settings("portable", 0, "path", &s, &why) && s.path == KernelPath::kPortable);
  CHECK(s.num_threads == blitz::cpu::default_num_threads());  // 0 threads: the default
  CHECK(blitz::cpu::resolve_path(s.path) == KernelPath::kPortable);
  CHECK(blitz::cpu::resolve_path(KernelPath::kAvx512) == KernelPath::kAvx512);  // an explicit argument wins
  CHECK(blitz::cpu::parse_kernel_settings("avx2", 3, "path", &s, &why) && s.path == KernelPath::kAvx2);
  CHECK(s.num_threads == 3);
  CHECK(blitz::cpu::parse_kernel_settings("neon", 0, "path", &s, &why) && s.path == KernelPath::kNeon);
  CHECK(blitz::cpu::parse_kernel_settings("neon_bf16", 0, "path", &s, &why) && s.path == KernelPath::kNeonBf16);
  for (const char *automatic : {(const char *)nullptr, "", "auto"}) {
    CHECK(blitz::cpu::parse_kernel_settings(automatic, 0, "path", &s, &why) && s.path == KernelPath::kAuto);
  }
  // An unknown name is refused, naming every path, never silently replaced by another.
  CHECK(!blitz::cpu::parse_kernel_settings("fastest", 0, "BLITZ_ACL_CPU_PATH", &s, &why));
  CHECK_MSG(why.find("BLITZ_ACL_CPU_PATH must be one of portable|avx2|avx512|amx|neon|neon_bf16") == 0 &&
                why.find("'fastest'") != std::string::npos, why);
  // Per calling thread: what this thread set, another thread does not see.
  blitz::cpu::set_thread_kernel_settings({KernelPath::kPortable, 2});
  CHECK(blitz::cpu::current_kernel_settings(&s, &why) && s.path == KernelPath::kPortable && s.num_threads == 2);
  bool other_saw_portable = true;
  std::thread([&] {
    KernelSettings t;
    std::string e;
    blitz::cpu::set_thread_kernel_settings({KernelPath::kAuto, 1});
    other_saw_portable = blitz::cpu::current_kernel_settings(&t, &e) && t.path == KernelPath::kPortable;
  }).join();
  CHECK(!other_saw_portable);
  CHECK(blitz::cpu::current_kernel_settings(&s, &why) && s.path == KernelPath::kPortable);
  // The kernel reads no environment: a set variable changes nothing below the settings.
  const int threads_before = blitz::cpu::default_num_threads();
  setenv("BLITZ_ACL_CPU_PATH", "portable", 1);
  setenv("BLITZ_ACL_NUM_THREADS", "7", 1);
  Case c;
  Inputs in = make_inputs(c, 7);
  AttentionProblem p = make_problem(c, in);
  std::vector<unsigned char> ws(blitz::cpu::workspace_size(p, 1));
  const char *err = nullptr;
  CHECK(blitz::cpu::run_attention(p, ws.data(), ws.size(), 1, KernelPath::kAuto, &err) == 0);
  const auto runnable = paths();
  // kAuto picks the fastest path this CPU has: amx where present, else avx512, else avx2.
  CHECK(blitz::cpu::resolve_path(KernelPath::kAuto) == runnable.back());
  if (std::find(runnable.begin(), runnable.end(), KernelPath::kAmx) == runnable.end()) {
    err = nullptr;  // forcing a path this CPU lacks is an error with a message, never a SIGILL
    CHECK(blitz::cpu::run_attention(p, ws.data(), ws.size(), 1, KernelPath::kAmx, &err) != 0);
    CHECK(err != nullptr && std::strstr(err, "AMX") != nullptr);
  }
  for (KernelPath q : kEveryPath) {  // every path this CPU lacks: an error naming the path
    if (std::find(runnable.begin(), runnable.end(), q) != runnable.end()) continue;
    err = nullptr;
    CHECK_MSG(blitz::cpu::run_attention(p, ws.data(), ws.size(), 1, q, &err) != 0, path_label(q));
    CHECK_MSG(err != nullptr && std::strstr(err, path_label(q)) != nullptr, std::string(path_label(q)) + ": " + (err ? err : ""));
  }
  CHECK(std::strstr(blitz::cpu::isa_summary(), "best=") != nullptr);
  CHECK(blitz::cpu::default_num_threads() >= 1 && blitz::cpu::default_num_threads() == threads_before);
  unsetenv("BLITZ_ACL_CPU_PATH");
  unsetenv("BLITZ_ACL_NUM_THREADS");
}

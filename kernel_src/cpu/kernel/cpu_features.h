// Run-time CPU feature detection for the kernel's path choice: on x86-64 CPUID + the OS's XSAVE
// state, on aarch64 the kernel's hwcaps (getauxval) and MIDR_EL1.
#pragma once

#include "kernel/attention_problem.h"

namespace blitz::cpu {

struct CpuFeatures {
  bool avx512f = false, avx512bw = false, avx512dq = false, avx512vl = false;
  bool avx512_bf16 = false, f16c = false, fma = false, avx2 = false;
  bool os_ymm = false;       // the OS saves xmm / ymm state (XCR0 bits 1, 2)
  bool os_zmm = false;       // ... and zmm / opmask state (XCR0 bits 5-7)
  bool amx_tile = false, amx_bf16 = false;
  bool os_amx = false;       // XCR0 tile bits (17, 18) and, on Linux, permission granted
  char vendor[24] = {0};     // x86: the CPUID vendor string; aarch64: MIDR_EL1's implementer
  // aarch64 (Linux hwcaps): Advanced SIMD, its fp16 arithmetic, dot product, BF16 (BFDOT,
  // BFMMLA, BFCVT), I8MM, SVE / SVE2; midr = MIDR_EL1 (0 where the kernel does not expose it).
  bool asimd = false, asimdhp = false, asimddp = false, bf16 = false, i8mm = false, sve = false, sve2 = false;
  unsigned long long midr = 0;

  // The AVX-512 path: F/BW/DQ/VL, BF16 for dpbf16, F16C + FMA for fp16 / fp32.
  bool has_avx512_path() const {
    return avx512f && avx512bw && avx512dq && avx512vl && avx512_bf16 && f16c && fma && os_zmm;
  }
  // The AVX2 path: AVX2 integer ops, FMA for every product, F16C for fp16 in and out.
  bool has_avx2_path() const { return avx2 && fma && f16c && os_ymm; }
  bool has_amx_path() const { return has_avx512_path() && amx_tile && amx_bf16 && os_amx; }
  // The NEON path: Advanced SIMD (every Linux aarch64 CPU has it; fp32 FMA, fp16 <-> fp32).
  bool has_neon_path() const { return asimd; }
  // The NEON BF16 path: BFDOT for bf16 products (FEAT_BF16: Neoverse V1 / N2, Kunpeng 920B, ...).
  bool has_neon_bf16_path() const { return asimd && bf16; }
};

// Detected once (thread-safe), then cached.
const CpuFeatures &cpu_features();

// The path kAuto picks: amx, else avx512, else avx2 (x86-64); neon_bf16, else neon (aarch64);
// else portable.
KernelPath best_path();

// Whether `path` can run on this CPU (kPortable always can).
bool path_supported(KernelPath path);

const char *path_name(KernelPath path);

// The path a settings name names (backend/kernel_settings.h) (every name path_name gives but "auto"); false for
// an unknown name.
bool path_from_name(const char *name, KernelPath *path);

// Why `path` cannot run here, for the error of a forced path this CPU lacks.
const char *path_requirement(KernelPath path);

// Every forcible path name, "portable|avx2|...", for messages.
const char *path_names();

// The paths this CPU can run, fastest last, as "portable,avx2,avx512" (isa_summary's
// paths= field, which tests read to run every one of them).
const char *supported_paths();

}  // namespace blitz::cpu

#include "kernel/cpu_features.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define BLITZ_X86 1
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace blitz::cpu {
namespace {

#if defined(BLITZ_X86)
// CPUID bit positions (Intel SDM vol. 2A, CPUID; AMD APM vol. 3 appendix E).
constexpr unsigned kLeaf1EcxFma = 1u << 12, kLeaf1EcxOsxsave = 1u << 27, kLeaf1EcxF16c = 1u << 29;
constexpr unsigned kLeaf7EbxAvx2 = 1u << 5;
constexpr unsigned kLeaf7EbxAvx512f = 1u << 16, kLeaf7EbxAvx512dq = 1u << 17;
constexpr unsigned kLeaf7EbxAvx512bw = 1u << 30, kLeaf7EbxAvx512vl = 1u << 31;
constexpr unsigned kLeaf7EdxAmxBf16 = 1u << 22, kLeaf7EdxAmxTile = 1u << 24;
constexpr unsigned kLeaf7Sub1EaxAvx512Bf16 = 1u << 5;
// XCR0: SSE|AVX state (bits 1, 2), opmask + zmm state (5, 6, 7), AMX TILECFG + TILEDATA (17, 18).
constexpr unsigned long long kXcr0Ymm = 0x6, kXcr0Zmm = 0xE0, kXcr0Tile = 0x60000;
// Linux: arch_prctl requests for dynamically enabled XSAVE state (asm/prctl.h).
constexpr int kArchReqXcompPerm = 0x1023;
constexpr int kXfeatureXtileData = 18;

unsigned long long read_xcr0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((unsigned long long)edx << 32) | eax;
}

// Linux only lets a process use AMX tile data after asking (kernel 5.16+).
bool request_amx_permission() {
#if defined(__linux__)
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
#else
  return false;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  std::memcpy(f.vendor, &b, 4);
  std::memcpy(f.vendor + 4, &d, 4);
  std::memcpy(f.vendor + 8, &c, 4);
  __get_cpuid(1, &a, &b, &c, &d);
  f.fma = c & kLeaf1EcxFma;
  f.f16c = c & kLeaf1EcxF16c;
  const bool osxsave = c & kLeaf1EcxOsxsave;
  const unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
  f.os_ymm = (xcr0 & kXcr0Ymm) == kXcr0Ymm;
  f.os_zmm = (xcr0 & (kXcr0Ymm | kXcr0Zmm)) == (kXcr0Ymm | kXcr0Zmm);
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &a, &b, &c, &d);
    const unsigned max_sub = a;
    f.avx2 = b & kLeaf7EbxAvx2;
    f.avx512f = b & kLeaf7EbxAvx512f;
    f.avx512dq = b & kLeaf7EbxAvx512dq;
    f.avx512bw = b & kLeaf7EbxAvx512bw;
    f.avx512vl = b & kLeaf7EbxAvx512vl;
    f.amx_bf16 = d & kLeaf7EdxAmxBf16;
    f.amx_tile = d & kLeaf7EdxAmxTile;
    if (max_sub >= 1) {
      __get_cpuid_count(7, 1, &a, &b, &c, &d);
      f.avx512_bf16 = a & kLeaf7Sub1EaxAvx512Bf16;
    }
  }
  f.os_amx = f.amx_tile && (xcr0 & kXcr0Tile) == kXcr0Tile && request_amx_permission();
  return f;
}
#else
CpuFeatures detect() { return CpuFeatures{}; }
#endif

}  // namespace

const CpuFeatures &cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

// kAmx first: on an AMX machine its bf16 products run several times faster than AVX-512's
// vdpbf16ps (README, CPU kernel paths); fp16 and fp32 run AVX-512 under it (kernel_for).
KernelPath best_path() {
  if (cpu_features().has_amx_path()) return KernelPath::kAmx;
  if (cpu_features().has_avx512_path()) return KernelPath::kAvx512;
  if (cpu_features().has_avx2_path()) return KernelPath::kAvx2;
  return KernelPath::kPortable;
}

bool path_supported(KernelPath path) {
  switch (path) {
    case KernelPath::kPortable: return true;
    case KernelPath::kAvx2: return cpu_features().has_avx2_path();
    case KernelPath::kAvx512: return cpu_features().has_avx512_path();
    case KernelPath::kAmx: return cpu_features().has_amx_path();
    case KernelPath::kAuto: return true;
  }
  return false;
}

const char *path_name(KernelPath path) {
  switch (path) {
    case KernelPath::kAuto: return "auto";
    case KernelPath::kPortable: return "portable";
    case KernelPath::kAvx2: return "avx2";
    case KernelPath::kAvx512: return "avx512";
    case KernelPath::kAmx: return "amx";
  }
  return "unknown";
}

const char *supported_paths() {
  static char text[64];
  static const bool filled = [] {
    for (KernelPath path : {KernelPath::kPortable, KernelPath::kAvx2, KernelPath::kAvx512, KernelPath::kAmx}) {
      if (!path_supported(path)) continue;
      if (text[0] != '\0') std::strncat(text, ",", sizeof text - std::strlen(text) - 1);
      std::strncat(text, path_name(path), sizeof text - std::strlen(text) - 1);
    }
    return true;
  }();
  (void)filled;
  return text;
}

// The environment is read at each call so a test can switch paths between calls.
KernelPath resolve_path(KernelPath requested) {
  if (requested != KernelPath::kAuto) return requested;
  const char *env = std::getenv("BLITZ_ACL_CPU_PATH");
  if (env != nullptr && *env != '\0') {
    if (std::strcmp(env, "portable") == 0) return KernelPath::kPortable;
    if (std::strcmp(env, "avx2") == 0) return KernelPath::kAvx2;
    if (std::strcmp(env, "avx512") == 0) return KernelPath::kAvx512;
    if (std::strcmp(env, "amx") == 0) return KernelPath::kAmx;
    // An unknown value is not silently ignored: run_attention reports it (see kernel_path_error).
  }
  return best_path();
}

const char *isa_summary() {
  static char text[320];
  static const bool filled = [] {
    const CpuFeatures &f = cpu_features();
    std::snprintf(text, sizeof text,
                  "vendor=%s avx2=%d avx512f=%d avx512bw=%d avx512dq=%d avx512vl=%d avx512_bf16=%d "
                  "f16c=%d fma=%d os_ymm=%d os_zmm=%d amx_tile=%d amx_bf16=%d os_amx=%d best=%s paths=%s",
                  f.vendor, f.avx2, f.avx512f, f.avx512bw, f.avx512dq, f.avx512vl, f.avx512_bf16,
                  f.f16c, f.fma, f.os_ymm, f.os_zmm, f.amx_tile, f.amx_bf16, f.os_amx,
                  path_name(best_path()), supported_paths());
    return true;
  }();
  (void)filled;
  return text;
}

}  // namespace blitz::cpu

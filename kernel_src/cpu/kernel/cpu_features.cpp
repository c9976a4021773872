#include "kernel/cpu_features.h"

#include "kernel/attention_plan.h"  // neon_kernel, neon_bf16_kernel: whether the build has them

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define BLITZ_X86 1
#endif
#if defined(__aarch64__)
#define BLITZ_AARCH64 1
#if defined(__linux__)
#include <sys/auxv.h>
#endif
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
#elif defined(BLITZ_AARCH64)
// Linux's aarch64 hwcap bits (arch/arm64/include/uapi/asm/hwcap.h; stable ABI), spelled out so
// an older libc's headers need not have them.
constexpr unsigned long kHwcapAsimd = 1ul << 1, kHwcapAsimdhp = 1ul << 10, kHwcapCpuid = 1ul << 11;
constexpr unsigned long kHwcapAsimddp = 1ul << 20, kHwcapSve = 1ul << 22;
constexpr unsigned long kHwcap2Sve2 = 1ul << 1, kHwcap2I8mm = 1ul << 13, kHwcap2Bf16 = 1ul << 14;

// MIDR_EL1's implementer byte (Arm ARM D19.2, MIDR_EL1; the codes Linux's cputype.h lists).
const char *implementer_name(unsigned code) {
  switch (code) {
    case 0x41: return "ARM";
    case 0x42: return "Broadcom";
    case 0x43: return "Cavium";
    case 0x46: return "Fujitsu";
    case 0x48: return "HiSilicon";
    case 0x4e: return "NVIDIA";
    case 0x50: return "APM";
    case 0x51: return "Qualcomm";
    case 0x61: return "Apple";
    case 0x6d: return "Microsoft";
    case 0xc0: return "Ampere";
  }
  return nullptr;
}

// MIDR_EL1: sysfs where the kernel publishes it, else the register itself, which Linux (and
// qemu-user) emulate for EL0 when HWCAP_CPUID is set; 0 if neither is available.
unsigned long long read_midr(unsigned long hwcap) {
  unsigned long long midr = 0;
  if (FILE *f = std::fopen("/sys/devices/system/cpu/cpu0/regs/identification/midr_el1", "r")) {
    if (std::fscanf(f, "%llx", &midr) != 1) midr = 0;
    std::fclose(f);
  }
  if (midr == 0 && (hwcap & kHwcapCpuid) != 0) __asm__ volatile("mrs %0, MIDR_EL1" : "=r"(midr));
  return midr;
}

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__linux__)
  const unsigned long hwcap = getauxval(AT_HWCAP), hwcap2 = getauxval(AT_HWCAP2);
#else
  const unsigned long hwcap = kHwcapAsimd, hwcap2 = 0;  // Advanced SIMD is architectural on AArch64
#endif
  f.asimd = hwcap & kHwcapAsimd;
  f.asimdhp = hwcap & kHwcapAsimdhp;
  f.asimddp = hwcap & kHwcapAsimddp;
  f.sve = hwcap & kHwcapSve;
  f.sve2 = hwcap2 & kHwcap2Sve2;
  f.i8mm = hwcap2 & kHwcap2I8mm;
  f.bf16 = hwcap2 & kHwcap2Bf16;
  f.midr = read_midr(hwcap);
  const unsigned implementer = (unsigned)(f.midr >> 24) & 0xff;
  if (f.midr == 0) {
    std::snprintf(f.vendor, sizeof f.vendor, "unknown(no MIDR)");
  } else if (const char *name = implementer_name(implementer)) {
    std::snprintf(f.vendor, sizeof f.vendor, "%s", name);
  } else {
    std::snprintf(f.vendor, sizeof f.vendor, "implementer-0x%02x", implementer);
  }
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
  if (cpu_features().has_neon_bf16_path()) return KernelPath::kNeonBf16;
  if (cpu_features().has_neon_path()) return KernelPath::kNeon;
  return KernelPath::kPortable;
}

bool path_supported(KernelPath path) {
  switch (path) {
    case KernelPath::kPortable: return true;
    case KernelPath::kAvx2: return cpu_features().has_avx2_path();
    case KernelPath::kAvx512: return cpu_features().has_avx512_path();
    case KernelPath::kAmx: return cpu_features().has_amx_path();
    // ... and the build has its code (a compiler without +bf16 builds no neon_bf16 kernel).
    case KernelPath::kNeon: return cpu_features().has_neon_path() && neon_kernel(ElementType::kFloat32) != nullptr;
    case KernelPath::kNeonBf16:
      return cpu_features().has_neon_bf16_path() && neon_bf16_kernel(ElementType::kBFloat16) != nullptr;
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
    case KernelPath::kNeon: return "neon";
    case KernelPath::kNeonBf16: return "neon_bf16";
  }
  return "unknown";
}

namespace {
// Every forcible path, in the order supported_paths() lists them (fastest of each ISA last).
constexpr KernelPath kAllPaths[] = {KernelPath::kPortable, KernelPath::kAvx2,   KernelPath::kAvx512,
                                    KernelPath::kAmx,      KernelPath::kNeon,   KernelPath::kNeonBf16};
}  // namespace

bool path_from_name(const char *name, KernelPath *path) {
  for (KernelPath p : kAllPaths) {
    if (std::strcmp(name, path_name(p)) == 0) {
      *path = p;
      return true;
    }
  }
  return false;
}

const char *path_names() {
  static char text[96];
  static const bool filled = [] {
    for (KernelPath p : kAllPaths) {
      if (text[0] != '\0') std::strncat(text, "|", sizeof text - std::strlen(text) - 1);
      std::strncat(text, path_name(p), sizeof text - std::strlen(text) - 1);
    }
    return true;
  }();
  (void)filled;
  return text;
}

const char *path_requirement(KernelPath path) {
  switch (path) {
    case KernelPath::kAmx: return "the amx kernel path was requested but this CPU (or OS) lacks AMX-BF16";
    case KernelPath::kAvx2: return "the avx2 kernel path was requested but this CPU (or OS) lacks AVX2 + FMA + F16C";
    case KernelPath::kAvx512: return "the avx512 kernel path was requested but this CPU lacks AVX-512 F/BW/DQ/VL/BF16";
    case KernelPath::kNeon: return "the neon kernel path was requested but this CPU is not aarch64 with Advanced SIMD";
    case KernelPath::kNeonBf16:
      return "the neon_bf16 kernel path was requested but this CPU is not aarch64 with BF16 (FEAT_BF16, hwcap2 bf16)";
    case KernelPath::kPortable:
    case KernelPath::kAuto: break;
  }
  return "the requested kernel path is not available";
}

const char *supported_paths() {
  static char text[64];
  static const bool filled = [] {
    for (KernelPath path : kAllPaths) {
      if (!path_supported(path)) continue;
      if (text[0] != '\0') std::strncat(text, ",", sizeof text - std::strlen(text) - 1);
      std::strncat(text, path_name(path), sizeof text - std::strlen(text) - 1);
    }
    return true;
  }();
  (void)filled;
  return text;
}

// A forced path comes down from the caller's settings (backend/kernel_settings.h); the kernel
// reads no environment.
KernelPath resolve_path(KernelPath requested) {
  return requested == KernelPath::kAuto ? best_path() : requested;
}

const char *isa_summary() {
  static char text[320];
  static const bool filled = [] {
    const CpuFeatures &f = cpu_features();
#if defined(BLITZ_AARCH64)
    std::snprintf(text, sizeof text,
                  "arch=aarch64 vendor=%s midr=0x%08llx asimd=%d asimdhp=%d asimddp=%d bf16=%d i8mm=%d "
                  "sve=%d sve2=%d best=%s paths=%s",
                  f.vendor, f.midr, f.asimd, f.asimdhp, f.asimddp, f.bf16, f.i8mm, f.sve, f.sve2,
                  path_name(best_path()), supported_paths());
#elif defined(BLITZ_X86)
    std::snprintf(text, sizeof text,
                  "vendor=%s avx2=%d avx512f=%d avx512bw=%d avx512dq=%d avx512vl=%d avx512_bf16=%d "
                  "f16c=%d fma=%d os_ymm=%d os_zmm=%d amx_tile=%d amx_bf16=%d os_amx=%d best=%s paths=%s",
                  f.vendor, f.avx2, f.avx512f, f.avx512bw, f.avx512dq, f.avx512vl, f.avx512_bf16,
                  f.f16c, f.fma, f.os_ymm, f.os_zmm, f.amx_tile, f.amx_bf16, f.os_amx,
                  path_name(best_path()), supported_paths());
#else
    std::snprintf(text, sizeof text, "arch=other (no vector path) best=%s paths=%s", path_name(best_path()),
                  supported_paths());
#endif
    return true;
  }();
  (void)filled;
  return text;
}

}  // namespace blitz::cpu

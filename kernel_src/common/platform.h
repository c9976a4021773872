// What kernel_src/common needs from its compiler, in one place, so the same headers build with
// g++/clang (the CPU device and its tests) and with the Ascend C compiler (the NPU kernel).
//
// Rules for every header in common/: header-only, no STL containers, no exceptions, no heap,
// no libm calls (functions that need exp take it as a parameter), plain integer/float math.
#pragma once

#if defined(__CCE__) || defined(__CCE_AICORE__)
// Ascend C: the kernel includes kernel_operator.h first, which provides the fixed-width integer
// types; functions run on the AI core's scalar unit.
#define BLITZ_INLINE __aicore__ inline
#else
#include <stdint.h>
#define BLITZ_INLINE inline
#endif

#include "op_limits.h"

namespace blitz {

// sabi's pad (-1 as int16) in a row: "no block here"; its value is the spec's (op_limits.h).
constexpr uint16_t kSabiNoBlock = limits::kSabiPad;

// IEEE infinity without <cmath> (both compilers are clang/gcc based and have the builtin).
BLITZ_INLINE float neg_infinity() { return -__builtin_inff(); }

BLITZ_INLINE int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
BLITZ_INLINE int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
BLITZ_INLINE int64_t ceil_div(int64_t a, int64_t b) { return b > 0 ? (a + b - 1) / b : 0; }
BLITZ_INLINE int64_t clamp_i64(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

}  // namespace blitz

// The exp2 polynomial every vector layer (vec_avx512.h, vec_avx2.h) evaluates, kept once here.
//
// 2^x for x <= 0 (scores minus the running max, in base 2) is split as 2^n * 2^f with
// n = round(x) and f = x - n in [-1/2, 1/2]; 2^f is the degree-6 Taylor polynomial below
// (relative error < 2e-7, far inside bf16 / fp16 tolerance). x < kExp2MinExponent (including
// -inf, a masked score, and NaN) gives exactly 0, so an empty row stays empty rather than a sum
// of denormals, and 2^n stays a normal float the layers can build from its exponent bits.
#pragma once

namespace blitz::cpu {

constexpr float kExp2MinExponent = -126.0f;

// ln2^k / k!, highest degree first (Horner order), k = 6 .. 0.
constexpr float kExp2Poly[] = {1.5403530393381606e-4f, 1.3333558146428443e-3f, 9.618129107628477e-3f,
                               5.550410866482158e-2f,  2.402265069591007e-1f,  6.931471805599453e-1f,
                               1.0f};
constexpr int kExp2PolyTerms = sizeof kExp2Poly / sizeof kExp2Poly[0];

}  // namespace blitz::cpu

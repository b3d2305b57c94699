// SIMD without intrinsics for the CPU kernels: 8-float GNU vectors, the ISA clone macro and
// branch-free elementary functions on them. Include before any header whose templates get
// instantiated with Vec (the -Wpsabi note below is silenced by location).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/macros.h"

// Vec never crosses a call boundary (internal, always inlined), so GCC's note that 32-byte
// vector arguments change the ABI of the baseline build does not apply.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

// Without -march the compiler targets the x86-64 baseline (SSE2). Hot functions also get an
// x86-64-v3 (AVX2 + FMA) clone that the dynamic loader picks on CPUs that have it, so one
// binary runs everywhere and is fast where it can be. -DWM_NO_CPU_CLONES builds the baseline
// only (to test it on a machine that would pick the clone).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__linux__) && \
    !defined(WM_NO_CPU_CLONES)
#define WM_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define WM_CPU_CLONES
#endif

namespace whispermedia {
namespace cpu {

constexpr int kLanes = 8;

#if defined(__GNUC__) || defined(__clang__)
// GCC and Clang lower these to whatever the clone being compiled has (two SSE registers on the
// baseline, one AVX register in the v3 clone, NEON pairs on arm64). Plain loops over 8 lanes
// were fully unrolled before the auto-vectoriser saw them and stayed scalar.
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float))));
typedef int32_t VecI __attribute__((vector_size(kLanes * sizeof(int32_t))));
typedef uint32_t VecU __attribute__((vector_size(kLanes * sizeof(uint32_t))));

WM_FORCE_INLINE Vec splat(float x) { return Vec{} + x; }

// Lanes where `mask` is set (all ones) take `a`, the others `b`.
WM_FORCE_INLINE Vec select(VecI mask, Vec a, Vec b) { return (Vec)(((VecI)a & mask) | ((VecI)b & ~mask)); }

// log10(max(x, floor)) per lane, for a normal positive floor; NaN lanes become the floor.
// x = 2^e * m with m in [sqrt(1/2), sqrt(2)); ln(m) = 2 atanh(s), s = (m - 1) / (m + 1),
// |s| < 0.172, by its odd series to s^11 (truncation < 1e-10, below float rounding).
WM_FORCE_INLINE Vec log10_floored(Vec x, float floor) {
  x = select(x > splat(floor), x, splat(floor));
  const VecU bits = (VecU)x;
  const VecI e = (VecI)(bits - 0x3f3504f3u) >> 23;  // 0x3f3504f3: bits of sqrt(1/2)
  const Vec m = (Vec)(bits - ((VecU)e << 23));
  const Vec f = m - 1.0f;
  const Vec s = f / (f + 2.0f);
  const Vec z = s * s;
  const Vec series =
      z * (2.0f / 3.0f + z * (2.0f / 5.0f + z * (2.0f / 7.0f + z * (2.0f / 9.0f + z * (2.0f / 11.0f)))));
  // ln(m) = 2s + s * series, and f - s*f == 2s in exact arithmetic but rounds better.
  const Vec ln_m = (f - s * f) + s * series;
  constexpr float kLog10_2 = 0.30102999566398119521f;
  constexpr float kLog10_e = 0.43429448190325182765f;
  return __builtin_convertvector(e, Vec) * kLog10_2 + ln_m * kLog10_e;
}

// e^x per lane for x <= 0 (softmax arguments score - max); NaN stays NaN. x = n ln2 + r with
// |r| <= ln2 / 2 (ln2 split in two so that n ln2 is exact), e^r by its Taylor series to r^8
// (truncation < 1e-9), 2^n through the exponent bits; below -87 the result is ~1e-38, not 0.
WM_FORCE_INLINE Vec exp_nonpositive(Vec x) {
  x = select(x < splat(-87.0f), splat(-87.0f), x);
  constexpr float kLog2e = 1.44269504088896340736f;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding and subtracting it rounds to an integer
  constexpr float kLn2Hi = 0.693359375f;  // 355 / 512, exact in a few bits
  constexpr float kLn2Lo = -2.12194440e-4f;
  const Vec n = (x * kLog2e + kRound) - kRound;
  const Vec r = (x - n * kLn2Hi) - n * kLn2Lo;
  const Vec tail = 1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040 + r * (1.0f / 40320)));
  const Vec p = 1.0f + r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * tail))));
  const Vec scale = (Vec)((__builtin_convertvector(n, VecI) + 127) << 23);
  return p * scale;
}

WM_FORCE_INLINE Vec load(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
WM_FORCE_INLINE void store(float* p, Vec v) { std::memcpy(p, &v, sizeof(v)); }
WM_FORCE_INLINE float hsum(Vec v) {
  float s = 0.0f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}
#else
// Portable fallback for compilers without GNU vectors (correct, not tuned).
struct Vec {
  float v[kLanes];
  float& operator[](int i) { return v[i]; }
  float operator[](int i) const { return v[i]; }
};
#define WM_VEC_OP(op)                                           \
  inline Vec operator op(Vec a, Vec b) {                        \
    for (int i = 0; i < kLanes; ++i) a.v[i] = a.v[i] op b.v[i]; \
    return a;                                                   \
  }                                                             \
  inline Vec operator op(Vec a, float b) {                      \
    for (int i = 0; i < kLanes; ++i) a.v[i] = a.v[i] op b;      \
    return a;                                                   \
  }                                                             \
  inline Vec operator op(float a, Vec b) {                      \
    for (int i = 0; i < kLanes; ++i) b.v[i] = a op b.v[i];      \
    return b;                                                   \
  }
WM_VEC_OP(+)
WM_VEC_OP(-)
WM_VEC_OP(*)
#undef WM_VEC_OP
inline Vec& operator+=(Vec& a, Vec b) { return a = a + b; }
inline Vec splat(float x) {
  Vec r;
  for (int i = 0; i < kLanes; ++i) r.v[i] = x;
  return r;
}
inline Vec log10_floored(Vec x, float floor) {
  for (int i = 0; i < kLanes; ++i) x.v[i] = std::log10(std::max(x.v[i], floor));
  return x;
}
inline Vec exp_nonpositive(Vec x) {
  for (int i = 0; i < kLanes; ++i) x.v[i] = std::exp(x.v[i]);
  return x;
}
inline Vec load(const float* p) {
  Vec v;
  std::memcpy(v.v, p, sizeof(v.v));
  return v;
}
inline void store(float* p, Vec v) { std::memcpy(p, v.v, sizeof(v.v)); }
inline float hsum(Vec v) {
  float s = 0.0f;
  for (int i = 0; i < kLanes; ++i) s += v[i];
  return s;
}
#endif

}  // namespace cpu
}  // namespace whispermedia

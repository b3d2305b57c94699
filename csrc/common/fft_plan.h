// Mixed-radix FFT plan shared by the CPU and CUDA log-mel kernels.
//
// Both backends run the same algorithm so that their numbers agree: the real input of
// length n_fft (even) is packed into a complex signal of length m = n_fft / 2
// (z[t] = x[2t] + i x[2t+1]), transformed by a self-sorting (Stockham) decimation-in-
// frequency FFT whose radices come from factorising m, and unpacked into the n_fft/2 + 1
// bins of the real spectrum. Whisper's n_fft = 400 gives m = 200 = 8 * 5 * 5.
//
// Stockham stage with radix p, after `l` earlier stages have split the problem into l
// interleaved sub-transforms of length p * s (s = m / (l * p)):
//   a_q       = in[(t1 + s*q) * l + j]                       q, r in [0, p)
//   out[(t1*p + r) * l + j] = W^(2*l*t1*r) * sum_q a_q * w_p^(q*r)
// for t1 in [0, s), j in [0, l), where W = exp(-2*pi*i / n_fft) is the one twiddle table
// both backends keep (every stage twiddle and the real-unpack twiddle is a power of W,
// and 2*l*t1*r < n_fft so no modulo is needed). The output ends in natural order.
#pragma once

#include <cmath>
#include <cstdint>

#include "common/macros.h"

namespace whispermedia {

// 2^31 has 31 factors; anything an int can hold fits.
constexpr int kMaxFftStages = 32;

struct FftPlan {
  int32_t m = 0;        // complex transform length (n_fft / 2)
  int32_t n_stages = 0;
  int32_t radix[kMaxFftStages] = {};
};

// Radix 8 first, then 4 (fewest passes over the data), then 2, 3, 5, then any remaining
// prime, which the kernels handle with a generic O(p^2) butterfly. Whisper's m = 200 runs as
// 8 * 5 * 5: three passes. Returns false only for m < 1.
inline bool make_fft_plan(int32_t m, FftPlan* plan) {
  plan->m = m;
  plan->n_stages = 0;
  if (m < 1) return false;
  int32_t rest = m;
  auto take = [&](int32_t p) {
    while (rest % p == 0 && plan->n_stages < kMaxFftStages) {
      plan->radix[plan->n_stages++] = p;
      rest /= p;
    }
  };
  take(8);
  take(4);
  take(2);
  take(3);
  take(5);
  for (int32_t p = 7; rest > 1 && static_cast<int64_t>(p) * p <= rest; p += 2) take(p);
  if (rest > 1) plan->radix[plan->n_stages++] = rest;
  return true;
}

// W^e = exp(-2*pi*i*e / n) for the twiddle table, evaluated in double so that the float
// table is correctly rounded whatever the backend; the CUDA path calls this once per
// block, the CPU path once per call.
WM_HOST_DEVICE inline void twiddle(int32_t e, int32_t n, float* re, float* im) {
#if defined(__CUDA_ARCH__)
  double s, c;
  sincospi(2.0 * static_cast<double>(e) / static_cast<double>(n), &s, &c);
#else
  const double angle = 6.283185307179586476925286766559 * static_cast<double>(e) / static_cast<double>(n);
  const double s = std::sin(angle), c = std::cos(angle);
#endif
  *re = static_cast<float>(c);
  *im = static_cast<float>(-s);
}

// Radix-3, -5 and -8 butterfly constants, kept here so both backends use identical floats.
constexpr float kSin60 = 0.86602540378443864676f;     // sin(2*pi/3)
constexpr float kCos72 = 0.30901699437494742410f;     // cos(2*pi/5)
constexpr float kCos144 = -0.80901699437494742410f;   // cos(4*pi/5)
constexpr float kSin72 = 0.95105651629515357212f;     // sin(2*pi/5)
constexpr float kSin144 = 0.58778525229247312917f;    // sin(4*pi/5)
constexpr float kSqrtHalf = 0.70710678118654752440f;  // cos(pi/4)

}  // namespace whispermedia

// The radix butterflies of the log-mel FFT, written once for both backends: the CPU kernel
// instantiates them with T = a vector of frames (one frame per SIMD lane), the CUDA kernel
// with T = float (one butterfly per thread). Data is split into real and imaginary arrays.
// T needs T +/- T, T * float and float * T, and T{} must be zero.
#pragma once

#include <cstdint>

#include "common/fft_plan.h"
#include "common/macros.h"

namespace whispermedia {

// y * (wr + i wi)
template <typename T>
WM_HOST_DEVICE WM_FORCE_INLINE void twiddle_mul(T yr, T yi, float wr, float wi, T* out_r, T* out_i) {
  *out_r = yr * wr - yi * wi;
  *out_i = yr * wi + yi * wr;
}

// One butterfly of a Stockham stage (index algebra in fft_plan.h): reads a_q = a[q * qs],
// writes b_r = b[r * rs] = W^(tw_step * r) * sum_q a_q w_p^(q r), where W^e = tw[e] is the
// n_fft-entry table. tw_step * (p - 1) < n_fft always holds.
template <typename T>
WM_HOST_DEVICE WM_FORCE_INLINE void radix_butterfly(int32_t p, const T* ar, const T* ai, int64_t qs, T* br, T* bi,
                                                    int64_t rs, int32_t tw_step, int32_t n_fft, const float* tw_re,
                                                    const float* tw_im) {
  switch (p) {
    case 2: {
      const T x0r = ar[0], x0i = ai[0], x1r = ar[qs], x1i = ai[qs];
      br[0] = x0r + x1r;
      bi[0] = x0i + x1i;
      twiddle_mul(x0r - x1r, x0i - x1i, tw_re[tw_step], tw_im[tw_step], &br[rs], &bi[rs]);
      break;
    }
    case 3: {
      const T x0r = ar[0], x0i = ai[0], x1r = ar[qs], x1i = ai[qs], x2r = ar[2 * qs], x2i = ai[2 * qs];
      const T tr = x1r + x2r, ti = x1i + x2i;
      const T ur = x0r - 0.5f * tr, ui = x0i - 0.5f * ti;
      const T vr = kSin60 * (x1i - x2i), vi = kSin60 * (x2r - x1r);  // -i sin60 (x1 - x2)
      br[0] = x0r + tr;
      bi[0] = x0i + ti;
      twiddle_mul(ur + vr, ui + vi, tw_re[tw_step], tw_im[tw_step], &br[rs], &bi[rs]);
      twiddle_mul(ur - vr, ui - vi, tw_re[2 * tw_step], tw_im[2 * tw_step], &br[2 * rs], &bi[2 * rs]);
      break;
    }
    case 4: {
      const T x0r = ar[0], x0i = ai[0], x1r = ar[qs], x1i = ai[qs];
      const T x2r = ar[2 * qs], x2i = ai[2 * qs], x3r = ar[3 * qs], x3i = ai[3 * qs];
      const T s02r = x0r + x2r, s02i = x0i + x2i, d02r = x0r - x2r, d02i = x0i - x2i;
      const T s13r = x1r + x3r, s13i = x1i + x3i, d13r = x1r - x3r, d13i = x1i - x3i;
      br[0] = s02r + s13r;
      bi[0] = s02i + s13i;
      // w_4 = -i: b1 = d02 - i d13, b2 = s02 - s13, b3 = d02 + i d13
      twiddle_mul(d02r + d13i, d02i - d13r, tw_re[tw_step], tw_im[tw_step], &br[rs], &bi[rs]);
      twiddle_mul(s02r - s13r, s02i - s13i, tw_re[2 * tw_step], tw_im[2 * tw_step], &br[2 * rs], &bi[2 * rs]);
      twiddle_mul(d02r - d13i, d02i + d13r, tw_re[3 * tw_step], tw_im[3 * tw_step], &br[3 * rs], &bi[3 * rs]);
      break;
    }
    case 5: {
      const T x0r = ar[0], x0i = ai[0], x1r = ar[qs], x1i = ai[qs], x2r = ar[2 * qs], x2i = ai[2 * qs];
      const T x3r = ar[3 * qs], x3i = ai[3 * qs], x4r = ar[4 * qs], x4i = ai[4 * qs];
      const T t1r = x1r + x4r, t1i = x1i + x4i, d1r = x1r - x4r, d1i = x1i - x4i;
      const T t2r = x2r + x3r, t2i = x2i + x3i, d2r = x2r - x3r, d2i = x2i - x3i;
      const T c1r = x0r + kCos72 * t1r + kCos144 * t2r, c1i = x0i + kCos72 * t1i + kCos144 * t2i;
      const T c2r = x0r + kCos144 * t1r + kCos72 * t2r, c2i = x0i + kCos144 * t1i + kCos72 * t2i;
      // b1,4 = c1 -/+ i (sin72 d1 + sin144 d2); b2,3 = c2 -/+ i (sin144 d1 - sin72 d2)
      const T e1r = kSin72 * d1r + kSin144 * d2r, e1i = kSin72 * d1i + kSin144 * d2i;
      const T e2r = kSin144 * d1r - kSin72 * d2r, e2i = kSin144 * d1i - kSin72 * d2i;
      br[0] = x0r + t1r + t2r;
      bi[0] = x0i + t1i + t2i;
      twiddle_mul(c1r + e1i, c1i - e1r, tw_re[tw_step], tw_im[tw_step], &br[rs], &bi[rs]);
      twiddle_mul(c2r + e2i, c2i - e2r, tw_re[2 * tw_step], tw_im[2 * tw_step], &br[2 * rs], &bi[2 * rs]);
      twiddle_mul(c2r - e2i, c2i + e2r, tw_re[3 * tw_step], tw_im[3 * tw_step], &br[3 * rs], &bi[3 * rs]);
      twiddle_mul(c1r - e1i, c1i + e1r, tw_re[4 * tw_step], tw_im[4 * tw_step], &br[4 * rs], &bi[4 * rs]);
      break;
    }
    default: {
      // Any other prime: direct O(p^2) DFT; w_p^k = W^(k * n_fft / p).
      const int32_t unit = n_fft / p;
      for (int32_t r = 0; r < p; ++r) {
        T accr{}, acci{};
        for (int32_t q = 0; q < p; ++q) {
          const int32_t e = static_cast<int32_t>(static_cast<int64_t>(q) * r % p) * unit;
          const T xr = ar[q * qs], xi = ai[q * qs];
          accr = accr + (xr * tw_re[e] - xi * tw_im[e]);
          acci = acci + (xr * tw_im[e] + xi * tw_re[e]);
        }
        twiddle_mul(accr, acci, tw_re[tw_step * r], tw_im[tw_step * r], &br[r * rs], &bi[r * rs]);
      }
      break;
    }
  }
}

// |X[k]|^2 of the real spectrum from the packed transform Z of z[t] = x[2t] + i x[2t+1],
// for 0 < k < m: X[k] = E + W^k O with E = (Z[k] + conj Z[m-k]) / 2 and
// O = -i (Z[k] - conj Z[m-k]) / 2. (X[0] and X[m] are Re Z[0] +/- Im Z[0].)
template <typename T>
WM_HOST_DEVICE WM_FORCE_INLINE T unpacked_power(T ar, T ai, T cr, T ci, float wr, float wi) {
  const T er = 0.5f * (ar + cr), ei = 0.5f * (ai - ci);
  const T orr = 0.5f * (ai + ci), oi = 0.5f * (cr - ar);
  T wor, woi;
  twiddle_mul(orr, oi, wr, wi, &wor, &woi);
  const T xr = er + wor, xi = ei + woi;
  return xr * xr + xi * xi;
}

}  // namespace whispermedia

// The radix butterflies of the log-mel FFT, written once for both backends: the CPU kernel
// instantiates them with T = a vector of frames (one frame per SIMD lane), the CUDA kernel
// with T = float (one butterfly per thread). Data is split into real and imaginary arrays.
// T needs T +/- T, T * float and float * T, and T{} must be zero.
//
// Each radix p has a twiddle-free core, small_dft<p>, that turns p inputs into p outputs
// (y_r = sum_q x_q w_p^(q r), w_p = exp(-2 pi i / p)); a Stockham stage then multiplies
// output r by its stage twiddle. Keeping the two apart lets the CPU kernel hoist the
// twiddles out of its inner loop and skip them where they are 1 (the first butterfly of each
// stage, every butterfly of the last stage); W^0 = 1 + 0i exactly, so skipping changes no bit.
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

// Twiddle-free p-point DFTs: read x_q = (ar[q * qs], ai[q * qs]), write y_r = (yr[r], yi[r]).
template <int P>
struct SmallDft;

template <>
struct SmallDft<2> {
  template <typename T>
  WM_HOST_DEVICE WM_FORCE_INLINE static void run(const T* ar, const T* ai, int64_t qs, T* yr, T* yi) {
    const T x0r = ar[0], x0i = ai[0], x1r = ar[qs], x1i = ai[qs];
    yr[0] = x0r + x1r;
    yi[0] = x0i + x1i;
    yr[1] = x0r - x1r;
    yi[1] = x0i - x1i;
  }
};

template <>
struct SmallDft<3> {
  template <typename T>
  WM_HOST_DEVICE WM_FORCE_INLINE static void run(const T* ar, const T* ai, int64_t qs, T* yr, T* yi) {
    const T x0r = ar[0], x0i = ai[0], x1r = ar[qs], x1i = ai[qs], x2r = ar[2 * qs], x2i = ai[2 * qs];
    const T tr = x1r + x2r, ti = x1i + x2i;
    const T ur = x0r - 0.5f * tr, ui = x0i - 0.5f * ti;
    const T vr = kSin60 * (x1i - x2i), vi = kSin60 * (x2r - x1r);  // -i sin60 (x1 - x2)
    yr[0] = x0r + tr;
    yi[0] = x0i + ti;
    yr[1] = ur + vr;
    yi[1] = ui + vi;
    yr[2] = ur - vr;
    yi[2] = ui - vi;
  }
};

template <>
struct SmallDft<4> {
  template <typename T>
  WM_HOST_DEVICE WM_FORCE_INLINE static void run(const T* ar, const T* ai, int64_t qs, T* yr, T* yi) {
    const T x0r = ar[0], x0i = ai[0], x1r = ar[qs], x1i = ai[qs];
    const T x2r = ar[2 * qs], x2i = ai[2 * qs], x3r = ar[3 * qs], x3i = ai[3 * qs];
    const T s02r = x0r + x2r, s02i = x0i + x2i, d02r = x0r - x2r, d02i = x0i - x2i;
    const T s13r = x1r + x3r, s13i = x1i + x3i, d13r = x1r - x3r, d13i = x1i - x3i;
    // w_4 = -i: y1 = d02 - i d13, y2 = s02 - s13, y3 = d02 + i d13
    yr[0] = s02r + s13r;
    yi[0] = s02i + s13i;
    yr[1] = d02r + d13i;
    yi[1] = d02i - d13r;
    yr[2] = s02r - s13r;
    yi[2] = s02i - s13i;
    yr[3] = d02r - d13i;
    yi[3] = d02i + d13r;
  }
};

template <>
struct SmallDft<5> {
  template <typename T>
  WM_HOST_DEVICE WM_FORCE_INLINE static void run(const T* ar, const T* ai, int64_t qs, T* yr, T* yi) {
    const T x0r = ar[0], x0i = ai[0], x1r = ar[qs], x1i = ai[qs], x2r = ar[2 * qs], x2i = ai[2 * qs];
    const T x3r = ar[3 * qs], x3i = ai[3 * qs], x4r = ar[4 * qs], x4i = ai[4 * qs];
    const T t1r = x1r + x4r, t1i = x1i + x4i, d1r = x1r - x4r, d1i = x1i - x4i;
    const T t2r = x2r + x3r, t2i = x2i + x3i, d2r = x2r - x3r, d2i = x2i - x3i;
    const T c1r = x0r + kCos72 * t1r + kCos144 * t2r, c1i = x0i + kCos72 * t1i + kCos144 * t2i;
    const T c2r = x0r + kCos144 * t1r + kCos72 * t2r, c2i = x0i + kCos144 * t1i + kCos72 * t2i;
    // y1,4 = c1 -/+ i (sin72 d1 + sin144 d2); y2,3 = c2 -/+ i (sin144 d1 - sin72 d2)
    const T e1r = kSin72 * d1r + kSin144 * d2r, e1i = kSin72 * d1i + kSin144 * d2i;
    const T e2r = kSin144 * d1r - kSin72 * d2r, e2i = kSin144 * d1i - kSin72 * d2i;
    yr[0] = x0r + t1r + t2r;
    yi[0] = x0i + t1i + t2i;
    yr[1] = c1r + e1i;
    yi[1] = c1i - e1r;
    yr[2] = c2r + e2i;
    yi[2] = c2i - e2r;
    yr[3] = c2r - e2i;
    yi[3] = c2i + e2r;
    yr[4] = c1r - e1i;
    yi[4] = c1i + e1r;
  }
};

// Radix 8 as two radix-4 DFTs of the even and odd inputs, joined by w_8^r:
// y_r = E_r + w_8^r O_r, y_(r+4) = E_r - w_8^r O_r.
template <>
struct SmallDft<8> {
  template <typename T>
  WM_HOST_DEVICE WM_FORCE_INLINE static void run(const T* ar, const T* ai, int64_t qs, T* yr, T* yi) {
    T er[4], ei[4], orr[4], oi[4];
    SmallDft<4>::run(ar, ai, 2 * qs, er, ei);
    SmallDft<4>::run(ar + qs, ai + qs, 2 * qs, orr, oi);
    // w_8 = (1 - i) / sqrt2, w_8^2 = -i, w_8^3 = -(1 + i) / sqrt2
    const T w1r = kSqrtHalf * (orr[1] + oi[1]), w1i = kSqrtHalf * (oi[1] - orr[1]);
    const T w2r = oi[2], w2i = T{} - orr[2];
    const T w3r = kSqrtHalf * (oi[3] - orr[3]), w3i = T{} - kSqrtHalf * (orr[3] + oi[3]);
    yr[0] = er[0] + orr[0];
    yi[0] = ei[0] + oi[0];
    yr[4] = er[0] - orr[0];
    yi[4] = ei[0] - oi[0];
    yr[1] = er[1] + w1r;
    yi[1] = ei[1] + w1i;
    yr[5] = er[1] - w1r;
    yi[5] = ei[1] - w1i;
    yr[2] = er[2] + w2r;
    yi[2] = ei[2] + w2i;
    yr[6] = er[2] - w2r;
    yi[6] = ei[2] - w2i;
    yr[3] = er[3] + w3r;
    yi[3] = ei[3] + w3i;
    yr[7] = er[3] - w3r;
    yi[7] = ei[3] - w3i;
  }
};

// Twiddle-free core plus stage twiddles W^(tw_step * r) for r >= 1, stored at b[r * rs].
template <int P, typename T>
WM_HOST_DEVICE WM_FORCE_INLINE void fixed_radix_butterfly(const T* ar, const T* ai, int64_t qs, T* br, T* bi,
                                                          int64_t rs, int32_t tw_step, const float* tw_re,
                                                          const float* tw_im) {
  T yr[P], yi[P];
  SmallDft<P>::run(ar, ai, qs, yr, yi);
  br[0] = yr[0];
  bi[0] = yi[0];
  WM_UNROLL
  for (int r = 1; r < P; ++r)
    twiddle_mul(yr[r], yi[r], tw_re[tw_step * r], tw_im[tw_step * r], &br[r * rs], &bi[r * rs]);
}

// One butterfly of a Stockham stage (index algebra in fft_plan.h): reads a_q = a[q * qs],
// writes b_r = b[r * rs] = W^(tw_step * r) * sum_q a_q w_p^(q r), where W^e = tw[e] is the
// n_fft-entry table. tw_step * (p - 1) < n_fft always holds.
template <typename T>
WM_HOST_DEVICE WM_FORCE_INLINE void radix_butterfly(int32_t p, const T* ar, const T* ai, int64_t qs, T* br, T* bi,
                                                    int64_t rs, int32_t tw_step, int32_t n_fft, const float* tw_re,
                                                    const float* tw_im) {
  switch (p) {
    case 2:
      fixed_radix_butterfly<2>(ar, ai, qs, br, bi, rs, tw_step, tw_re, tw_im);
      break;
    case 3:
      fixed_radix_butterfly<3>(ar, ai, qs, br, bi, rs, tw_step, tw_re, tw_im);
      break;
    case 4:
      fixed_radix_butterfly<4>(ar, ai, qs, br, bi, rs, tw_step, tw_re, tw_im);
      break;
    case 5:
      fixed_radix_butterfly<5>(ar, ai, qs, br, bi, rs, tw_step, tw_re, tw_im);
      break;
    case 8:
      fixed_radix_butterfly<8>(ar, ai, qs, br, bi, rs, tw_step, tw_re, tw_im);
      break;
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

// |X[k]|^2 and |X[m-k]|^2 of the real spectrum from the packed transform Z of
// z[t] = x[2t] + i x[2t+1], for 0 < k <= m / 2, with (ar, ai) = Z[k], (cr, ci) = Z[m-k] and
// (wr, wi) = W^k: X[k] = E + W^k O with E = (Z[k] + conj Z[m-k]) / 2 and
// O = -i (Z[k] - conj Z[m-k]) / 2; swapping k and m - k conjugates E and O, and
// W^(m-k) = -conj(W^k), so X[m-k] = conj(E - W^k O): one unpack serves both bins.
// (X[0] and X[m] are Re Z[0] +/- Im Z[0].)
template <typename T>
WM_HOST_DEVICE WM_FORCE_INLINE void unpacked_power_pair(T ar, T ai, T cr, T ci, float wr, float wi, T* pk, T* pmk) {
  const T er = 0.5f * (ar + cr), ei = 0.5f * (ai - ci);
  const T orr = 0.5f * (ai + ci), oi = 0.5f * (cr - ar);
  T wor, woi;
  twiddle_mul(orr, oi, wr, wi, &wor, &woi);
  const T xr = er + wor, xi = ei + woi;
  const T yr = er - wor, yi = ei - woi;
  *pk = xr * xr + xi * xi;
  *pmk = yr * yr + yi * yi;
}

}  // namespace whispermedia

// CPU kernels of whispermedia::log_mel_spectrogram and whispermedia::log_mel_frames.
//
// Frames are processed in tiles of kLanes consecutive frames of one batch row, stored
// lane-interleaved ([element][lane]) so that every FFT stage, the real-spectrum unpack,
// the mel dot products and the log are whole-vector operations, SIMD without intrinsics
// and regardless of the stage's radix or stride. Consecutive frames in the lanes make each
// mel row of a tile one contiguous 8-float store; the price is a transpose on the way in,
// done with 8x8 register transposes (three rounds of two-input shuffles) on every tile that
// lies inside the row, and with scalar reflect-indexed loads only at the row's two ends.
//
// Pass 1 (parallel over tiles) writes log10(max(mel, 1e-10)) and one maximum per tile;
// pass 2 (parallel over mel rows) applies the max - 8 clamp and (x + 4) / 4, with each row's
// own maximum (log_mel_spectrogram) or the caller's (log_mel_frames; none: no pass 2).
// The butterflies are shared with the CUDA kernel (common/fft_butterfly.h); every stage is
// instantiated for its radix, its twiddles are hoisted out of the inner loop and skipped
// where they are exactly 1.

#include "cpu/simd.h"  // first: see the note there on -Wpsabi

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <optional>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "common/checks.h"
#include "common/fft_butterfly.h"
#include "common/mel_params.h"
#include "ops.h"

namespace whispermedia {
namespace {

using cpu::kLanes;  // frames per tile = SIMD lanes
using cpu::Vec;
using cpu::splat;

// Float tables shared by every tile of one call.
struct MelTables {
  std::vector<float> tw_re, tw_im;  // W^e = exp(-2*pi*i*e / n_fft), e in [0, n_fft)
  std::vector<float> window;        // periodic Hann of length n_fft (torch.hann_window)

  explicit MelTables(int32_t n_fft) : tw_re(n_fft), tw_im(n_fft), window(n_fft) {
    for (int32_t e = 0; e < n_fft; ++e) twiddle(e, n_fft, &tw_re[e], &tw_im[e]);
    // 0.5 - 0.5 cos(2 pi e / n): the cosine is already in the table.
    for (int32_t e = 0; e < n_fft; ++e) window[e] = 0.5f - 0.5f * tw_re[e];
  }
};

WM_FORCE_INLINE Vec vmax(Vec a, Vec b) {
#if defined(__GNUC__) || defined(__clang__)
  return cpu::select(a > b, a, b);
#else
  for (int i = 0; i < kLanes; ++i) a[i] = std::max(a[i], b[i]);
  return a;
#endif
}

// r[v] = 8 floats of lane v  ->  r[i] = element i of every lane.
WM_FORCE_INLINE void transpose8x8(Vec* r) {
#if (defined(__GNUC__) && __GNUC__ >= 12) || defined(__clang__)
#define WM_SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
  const Vec t0 = WM_SHUF(r[0], r[1], 0, 8, 1, 9, 4, 12, 5, 13), t1 = WM_SHUF(r[0], r[1], 2, 10, 3, 11, 6, 14, 7, 15);
  const Vec t2 = WM_SHUF(r[2], r[3], 0, 8, 1, 9, 4, 12, 5, 13), t3 = WM_SHUF(r[2], r[3], 2, 10, 3, 11, 6, 14, 7, 15);
  const Vec t4 = WM_SHUF(r[4], r[5], 0, 8, 1, 9, 4, 12, 5, 13), t5 = WM_SHUF(r[4], r[5], 2, 10, 3, 11, 6, 14, 7, 15);
  const Vec t6 = WM_SHUF(r[6], r[7], 0, 8, 1, 9, 4, 12, 5, 13), t7 = WM_SHUF(r[6], r[7], 2, 10, 3, 11, 6, 14, 7, 15);
  const Vec u0 = WM_SHUF(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13), u1 = WM_SHUF(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
  const Vec u2 = WM_SHUF(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13), u3 = WM_SHUF(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
  const Vec u4 = WM_SHUF(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13), u5 = WM_SHUF(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
  const Vec u6 = WM_SHUF(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13), u7 = WM_SHUF(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
  r[0] = WM_SHUF(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11);
  r[4] = WM_SHUF(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15);
  r[1] = WM_SHUF(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11);
  r[5] = WM_SHUF(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15);
  r[2] = WM_SHUF(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11);
  r[6] = WM_SHUF(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15);
  r[3] = WM_SHUF(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11);
  r[7] = WM_SHUF(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15);
#undef WM_SHUF
#else
  Vec c[kLanes];
  for (int i = 0; i < kLanes; ++i)
    for (int v = 0; v < kLanes; ++v) c[i][v] = r[v][i];
  for (int i = 0; i < kLanes; ++i) r[i] = c[i];
#endif
}

// One Stockham stage of compile-time radix P (index algebra in common/fft_plan.h).
template <int P>
WM_FORCE_INLINE void fft_stage_fixed(int32_t l, int32_t s, const Vec* WM_RESTRICT in_re,
                                     const Vec* WM_RESTRICT in_im, Vec* WM_RESTRICT out_re, Vec* WM_RESTRICT out_im,
                                     const float* tw_re, const float* tw_im) {
  const int64_t qs = static_cast<int64_t>(s) * l;
  for (int32_t t1 = 0; t1 < s; ++t1) {
    const Vec* ar = in_re + static_cast<int64_t>(t1) * l;
    const Vec* ai = in_im + static_cast<int64_t>(t1) * l;
    Vec* br = out_re + static_cast<int64_t>(t1) * P * l;
    Vec* bi = out_im + static_cast<int64_t>(t1) * P * l;
    if (t1 == 0) {  // W^0 = 1: no twiddles
      for (int32_t j = 0; j < l; ++j) {
        Vec yr[P], yi[P];
        SmallDft<P>::run(ar + j, ai + j, qs, yr, yi);
        WM_UNROLL
        for (int r = 0; r < P; ++r) {
          br[r * l + j] = yr[r];
          bi[r * l + j] = yi[r];
        }
      }
      continue;
    }
    float wr[P], wi[P];
    WM_UNROLL
    for (int r = 1; r < P; ++r) {
      wr[r] = tw_re[2 * l * t1 * r];
      wi[r] = tw_im[2 * l * t1 * r];
    }
    for (int32_t j = 0; j < l; ++j) {
      Vec yr[P], yi[P];
      SmallDft<P>::run(ar + j, ai + j, qs, yr, yi);
      br[j] = yr[0];
      bi[j] = yi[0];
      WM_UNROLL
      for (int r = 1; r < P; ++r) twiddle_mul(yr[r], yi[r], wr[r], wi[r], &br[r * l + j], &bi[r * l + j]);
    }
  }
}

// Any radix through the runtime switch (other primes use the generic O(p^2) butterfly).
WM_FORCE_INLINE void fft_stage_generic(int32_t p, int32_t l, int32_t s, int32_t n_fft, const Vec* WM_RESTRICT in_re,
                                       const Vec* WM_RESTRICT in_im, Vec* WM_RESTRICT out_re,
                                       Vec* WM_RESTRICT out_im, const float* tw_re, const float* tw_im) {
  for (int32_t t1 = 0; t1 < s; ++t1) {
    for (int32_t j = 0; j < l; ++j) {
      const int64_t in = static_cast<int64_t>(t1) * l + j, out = static_cast<int64_t>(t1) * p * l + j;
      radix_butterfly<Vec>(p, in_re + in, in_im + in, static_cast<int64_t>(s) * l, out_re + out, out_im + out, l,
                           2 * l * t1, n_fft, tw_re, tw_im);
    }
  }
}

// Raw log10 mel of frames [tile * kLanes, +kLanes) of batch row b: writes the valid frames of
// `out` and returns their maximum. `scratch` holds 4 * m lane vectors.
WM_CPU_CLONES float mel_tile(const MelParams& p, const MelTables& tab, int64_t b, int64_t tile,
                             Vec* WM_RESTRICT scratch) {
  const int32_t n_fft = p.n_fft, m = p.plan.m, half = n_fft / 2;
  const int64_t t0 = tile * kLanes;
  const int n_valid = static_cast<int>(std::min<int64_t>(kLanes, p.n_frames - t0));
  const float* audio = p.audio + b * p.audio_row_stride;
  const float* window = tab.window.data();
  const float* tw_re = tab.tw_re.data();
  const float* tw_im = tab.tw_im.data();

  Vec* re[2] = {scratch, scratch + 2 * m};
  Vec* im[2] = {scratch + m, scratch + 3 * m};

  // Windowed frames packed as z[k] = x[2k] + i x[2k+1], one frame per lane.
  const int64_t first = t0 * p.hop - half;
  const bool interior = n_valid == kLanes && first >= 0 && first + (kLanes - 1) * int64_t{p.hop} + n_fft <= p.n_samples;
  if (interior) {
    // Lane v reads audio[first + v * hop + n]: eight rows, transposed 8 samples at a time.
    const float* row = audio + first;
    int32_t n = 0;
    for (; n + kLanes <= n_fft; n += kLanes) {
      Vec r[kLanes];
      for (int v = 0; v < kLanes; ++v) r[v] = cpu::load(row + static_cast<int64_t>(v) * p.hop + n);
      transpose8x8(r);
      for (int i = 0; i < kLanes; i += 2) {
        re[0][(n + i) / 2] = r[i] * window[n + i];
        im[0][(n + i) / 2] = r[i + 1] * window[n + i + 1];
      }
    }
    for (; n < n_fft; n += 2) {  // n_fft not a multiple of 8
      for (int v = 0; v < kLanes; ++v) {
        re[0][n / 2][v] = row[static_cast<int64_t>(v) * p.hop + n] * window[n];
        im[0][n / 2][v] = row[static_cast<int64_t>(v) * p.hop + n + 1] * window[n + 1];
      }
    }
  } else {
    // The row's ends: reflect padding. Lanes past the end of the row repeat the last frame so
    // that every lane holds finite, in-range data (and the tile maximum stays that of the
    // valid lanes).
    for (int v = 0; v < kLanes; ++v) {
      const int64_t start = (t0 + std::min(v, n_valid - 1)) * p.hop - half;
      for (int32_t k = 0; k < m; ++k) {
        re[0][k][v] = audio[reflect_index(start + 2 * k, p.n_samples)] * window[2 * k];
        im[0][k][v] = audio[reflect_index(start + 2 * k + 1, p.n_samples)] * window[2 * k + 1];
      }
    }
  }

  int cur = 0;
  int32_t l = 1;
  for (int32_t st = 0; st < p.plan.n_stages; ++st) {
    const int32_t radix = p.plan.radix[st], s = m / (l * radix);
    const Vec *ir = re[cur], *ii = im[cur];
    Vec *orr = re[cur ^ 1], *oi = im[cur ^ 1];
    switch (radix) {
      case 2: fft_stage_fixed<2>(l, s, ir, ii, orr, oi, tw_re, tw_im); break;
      case 3: fft_stage_fixed<3>(l, s, ir, ii, orr, oi, tw_re, tw_im); break;
      case 4: fft_stage_fixed<4>(l, s, ir, ii, orr, oi, tw_re, tw_im); break;
      case 5: fft_stage_fixed<5>(l, s, ir, ii, orr, oi, tw_re, tw_im); break;
      case 8: fft_stage_fixed<8>(l, s, ir, ii, orr, oi, tw_re, tw_im); break;
      default: fft_stage_generic(radix, l, s, n_fft, ir, ii, orr, oi, tw_re, tw_im); break;
    }
    l *= radix;
    cur ^= 1;
  }

  // |X[k]|^2 of the real spectrum, k in [0, m], into the free buffer, two bins per unpack.
  const Vec* zr = re[cur];
  const Vec* zi = im[cur];
  Vec* power = re[cur ^ 1];  // m + 1 vectors fit in the 2 * m of the free buffer
  {
    const Vec dc = zr[0] + zi[0], nyquist = zr[0] - zi[0];
    power[0] = dc * dc;
    power[m] = nyquist * nyquist;
  }
  for (int32_t k = 1; 2 * k <= m; ++k)
    unpacked_power_pair<Vec>(zr[k], zi[k], zr[m - k], zi[m - k], tw_re[k], tw_im[k], &power[k], &power[m - k]);

  // Sparse mel dot products into the other free buffer, then log10 with floor, store and
  // running maximum over independent rows (no dependency chain from one mel to the next).
  // Lanes past n_valid repeat the last valid frame, so the maximum over all lanes is that of
  // the valid ones.
  Vec* mel_acc = im[cur ^ 1];  // m vectors: mels go in groups of at most m
  Vec tile_max = splat(-std::numeric_limits<float>::infinity());
  float* out_row0 = p.out + b * p.n_mels * p.n_frames + t0;
  for (int32_t mel0 = 0; mel0 < p.n_mels; mel0 += m) {
    const int32_t mel1 = std::min(p.n_mels, mel0 + m);
    for (int32_t mel = mel0; mel < mel1; ++mel) {
      const int32_t lo = p.filter_bounds[2 * mel], hi = p.filter_bounds[2 * mel + 1];
      const float* f = p.filters + static_cast<int64_t>(mel) * p.n_bins;
      Vec acc = splat(0.0f);
      for (int32_t k = lo; k < hi; ++k) acc += f[k] * power[k];
      mel_acc[mel - mel0] = acc;
    }
    for (int32_t mel = mel0; mel < mel1; ++mel) {
      const Vec y = cpu::log10_floored(mel_acc[mel - mel0], kMelLogFloor);
      tile_max = vmax(tile_max, y);
      float* out = out_row0 + static_cast<int64_t>(mel) * p.n_frames;
      if (n_valid == kLanes) {
        cpu::store(out, y);
      } else {
        for (int v = 0; v < n_valid; ++v) out[v] = y[v];
      }
    }
  }
  float result = tile_max[0];
  for (int v = 1; v < kLanes; ++v) result = std::max(result, tile_max[v]);
  return result;
}

// x = (max(x, lo) + 4) / 4 over one output row (the multiply by 1/4 is exact).
WM_CPU_CLONES void clamp_row(float* WM_RESTRICT x, int64_t n, float lo) {
  const Vec vlo = splat(lo);
  int64_t t = 0;
  for (; t + kLanes <= n; t += kLanes)
    cpu::store(x + t, (vmax(cpu::load(x + t), vlo) + kMelOffset) * (1.0f / kMelOffset));
  for (; t < n; ++t) x[t] = (std::max(x[t], lo) + kMelOffset) * (1.0f / kMelOffset);
}

// The output of an hour of audio is 115 MB (80 mels) of fresh memory, and faulting it in 4 KiB
// at a time costs about as much CPU time as a third of the transform itself (measured: 43 ms
// of the ~130 ms per hour on one core). Asking for transparent huge pages on the buffer's
// 2 MiB-aligned interior cuts that to ~12 ms. Only a hint: on other systems, with THP off, or
// if the call fails, nothing changes.
void advise_huge_pages(void* data, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::uintptr_t kHuge = std::uintptr_t{1} << 21;
  if (bytes < 2 * kHuge) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1), last = (begin + bytes) & ~(kHuge - 1);
  if (last > first) (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

// alignof(Vec) is only 16 in the baseline build, but the AVX clone loads lane vectors with
// 32-byte aligned moves: align the scratch for the widest clone (and a cache line).
constexpr std::size_t kScratchAlign = 64;

struct AlignedDelete {
  void operator()(Vec* ptr) const { ::operator delete[](ptr, std::align_val_t{kScratchAlign}); }
};

void log_mel_cpu_kernel(const MelParams& p) {
  const MelTables tables(p.n_fft);
  const int64_t total_tiles = p.batch * p.n_tiles;
  const int64_t scratch_vecs = 4 * static_cast<int64_t>(p.plan.m);

  // Pass 1: at::parallel_for gives each thread one contiguous range of tiles, so the scratch
  // is allocated once per thread and call, never per frame.
  at::parallel_for(0, total_tiles, 16, [&](int64_t begin, int64_t end) {
    const std::unique_ptr<Vec[], AlignedDelete> scratch(
        static_cast<Vec*>(::operator new[](scratch_vecs * sizeof(Vec), std::align_val_t{kScratchAlign})));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / p.n_tiles, tile = i % p.n_tiles;
      p.tile_max[i] = mel_tile(p, tables, b, tile, scratch.get());
    }
  });

  if (!p.normalize) return;
  for (int64_t b = 0; b < p.batch; ++b) {
    const float* tm = p.tile_max + b * p.n_tiles;
    p.row_max[b] = p.use_given_max ? p.given_max : *std::max_element(tm, tm + p.n_tiles);
  }

  // Pass 2: the dynamic-range clamp needs the maximum of the whole row, known only now.
  const int64_t rows = p.batch * p.n_mels;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, p.n_frames));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r)
      clamp_row(p.out + r * p.n_frames, p.n_frames, p.row_max[r / p.n_mels] - kMelDynamicRange);
  });
}

at::Tensor log_mel_cpu(const at::Tensor& audio, const at::Tensor& filters, int64_t hop_length, bool normalize,
                       std::optional<double> maximum) {
  const LogMelSizes sz = check_log_mel_args(audio, filters, hop_length, c10::DeviceType::CPU);
  const at::Tensor x = (sz.batched ? audio : audio.unsqueeze(0)).contiguous();
  const at::Tensor fb = filters.contiguous();
  const int64_t batch = sz.batch, n_mels = sz.n_mels, n_frames = sz.n_frames;
  // Same memory layout either way; allocating the final shape avoids returning a view.
  at::Tensor out = sz.batched ? at::empty({batch, n_mels, n_frames}, x.options())
                              : at::empty({n_mels, n_frames}, x.options());
  if (out.numel() == 0) return out;
  advise_huge_pages(out.data_ptr(), static_cast<std::size_t>(out.numel()) * sizeof(float));

  // Only the non-zero span of each filter is visited: Whisper's rows have 2 to ~10 of 201.
  std::vector<int32_t> bounds(2 * n_mels, 0);
  const float* f = fb.data_ptr<float>();
  for (int64_t mel = 0; mel < n_mels; ++mel) {
    const float* row = f + mel * fb.size(1);
    int64_t lo = 0, hi = fb.size(1);
    while (lo < hi && row[lo] == 0.0f) ++lo;
    while (hi > lo && row[hi - 1] == 0.0f) --hi;
    bounds[2 * mel] = static_cast<int32_t>(lo);
    bounds[2 * mel + 1] = static_cast<int32_t>(hi);
  }

  MelParams p = make_mel_params(sz, x, fb, out, hop_length, /*frames_per_tile=*/kLanes, normalize, maximum);
  p.filter_bounds = bounds.data();
  std::vector<float> tile_max(batch * p.n_tiles), row_max(batch);
  p.tile_max = tile_max.data();
  p.row_max = row_max.data();

  log_mel_cpu_kernel(p);
  return out;
}

}  // namespace

at::Tensor log_mel_spectrogram_cpu(const at::Tensor& audio,    // [B, N] or [N] float32
                                   const at::Tensor& filters,  // [n_mels, n_fft / 2 + 1] float32
                                   int64_t hop_length) {
  return log_mel_cpu(audio, filters, hop_length, /*normalize=*/true, std::nullopt);
}

at::Tensor log_mel_frames_cpu(const at::Tensor& audio, const at::Tensor& filters, int64_t hop_length,
                              std::optional<double> maximum) {
  return log_mel_cpu(audio, filters, hop_length, /*normalize=*/maximum.has_value(), maximum);
}

}  // namespace whispermedia

TORCH_LIBRARY_IMPL(whispermedia, CPU, m) {
  m.impl("log_mel_spectrogram", &whispermedia::log_mel_spectrogram_cpu);
  m.impl("log_mel_frames", &whispermedia::log_mel_frames_cpu);
}

// CPU kernel of whispermedia::log_mel_spectrogram.
//
// Frames are processed in tiles of kLanes consecutive frames of one batch row, stored
// lane-interleaved ([element][lane]) so that every FFT stage, the real-spectrum unpack,
// the mel dot products and the log are whole-vector operations, SIMD without intrinsics
// and regardless of the stage's radix or stride. The butterflies themselves are shared
// with the CUDA kernel (common/fft_butterfly.h). Pass 1 (parallel over tiles) writes
// log10(max(mel, 1e-10)) and one maximum per tile; pass 2 applies the per-row max - 8
// clamp and (x + 4) / 4.

#include "cpu/simd.h"  // first: see the note there on -Wpsabi

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <vector>

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

// One Stockham stage (index algebra in common/fft_plan.h) over lane vectors.
WM_FORCE_INLINE void fft_stage(int32_t p, int32_t l, int32_t s, int32_t n_fft, const Vec* WM_RESTRICT in_re,
                               const Vec* WM_RESTRICT in_im, Vec* WM_RESTRICT out_re, Vec* WM_RESTRICT out_im,
                               const float* tw_re, const float* tw_im) {
  for (int32_t t1 = 0; t1 < s; ++t1) {
    for (int32_t j = 0; j < l; ++j) {
      const int64_t in = static_cast<int64_t>(t1) * l + j, out = static_cast<int64_t>(t1) * p * l + j;
      radix_butterfly<Vec>(p, in_re + in, in_im + in, static_cast<int64_t>(s) * l, out_re + out, out_im + out, l,
                           2 * l * t1, n_fft, tw_re, tw_im);
    }
  }
}

// Log-mel of frames [tile * kLanes, +kLanes) of batch row b: writes the valid frames of `out`
// and returns their maximum. `scratch` holds 4 * m lane vectors.
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

  // Windowed frames packed as z[k] = x[2k] + i x[2k+1], one frame per lane. Lanes past the
  // end of the row repeat the last frame so that every lane holds finite, in-range data.
  for (int v = 0; v < kLanes; ++v) {
    const int64_t start = (t0 + std::min(v, n_valid - 1)) * p.hop - half;
    if (start >= 0 && start + n_fft <= p.n_samples) {
      const float* x = audio + start;
      for (int32_t k = 0; k < m; ++k) {
        re[0][k][v] = x[2 * k] * window[2 * k];
        im[0][k][v] = x[2 * k + 1] * window[2 * k + 1];
      }
    } else {
      for (int32_t k = 0; k < m; ++k) {
        re[0][k][v] = audio[reflect_index(start + 2 * k, p.n_samples)] * window[2 * k];
        im[0][k][v] = audio[reflect_index(start + 2 * k + 1, p.n_samples)] * window[2 * k + 1];
      }
    }
  }

  int cur = 0;
  int32_t l = 1;
  for (int32_t st = 0; st < p.plan.n_stages; ++st) {
    const int32_t radix = p.plan.radix[st];
    fft_stage(radix, l, m / (l * radix), n_fft, re[cur], im[cur], re[cur ^ 1], im[cur ^ 1], tw_re, tw_im);
    l *= radix;
    cur ^= 1;
  }

  // |X[k]|^2 of the real spectrum, k in [0, m], into the free buffer.
  const Vec* zr = re[cur];
  const Vec* zi = im[cur];
  Vec* power = re[cur ^ 1];  // m + 1 vectors fit in the 2 * m of the free buffer
  {
    const Vec dc = zr[0] + zi[0], nyquist = zr[0] - zi[0];
    power[0] = dc * dc;
    power[m] = nyquist * nyquist;
  }
  for (int32_t k = 1; k < m; ++k)
    power[k] = unpacked_power<Vec>(zr[k], zi[k], zr[m - k], zi[m - k], tw_re[k], tw_im[k]);

  // Sparse mel dot products, log10 with floor, store, track the maximum of valid lanes.
  float tile_max = -std::numeric_limits<float>::infinity();
  float* out_row0 = p.out + b * p.n_mels * p.n_frames + t0;
  for (int32_t mel = 0; mel < p.n_mels; ++mel) {
    const int32_t lo = p.filter_bounds[2 * mel], hi = p.filter_bounds[2 * mel + 1];
    const float* f = p.filters + static_cast<int64_t>(mel) * p.n_bins;
    Vec acc = splat(0.0f);
    for (int32_t k = lo; k < hi; ++k) acc += f[k] * power[k];
    acc = cpu::log10_floored(acc, kMelLogFloor);
    float* out = out_row0 + static_cast<int64_t>(mel) * p.n_frames;
    for (int v = 0; v < n_valid; ++v) {
      out[v] = acc[v];
      tile_max = std::max(tile_max, acc[v]);
    }
  }
  return tile_max;
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

  // Pass 1. A few tiles per task keeps the per-task scratch allocation out of the tile loop.
  at::parallel_for(0, total_tiles, 4, [&](int64_t begin, int64_t end) {
    const std::unique_ptr<Vec[], AlignedDelete> scratch(
        static_cast<Vec*>(::operator new[](scratch_vecs * sizeof(Vec), std::align_val_t{kScratchAlign})));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / p.n_tiles, tile = i % p.n_tiles;
      p.tile_max[i] = mel_tile(p, tables, b, tile, scratch.get());
    }
  });

  // Pass 2: the dynamic-range clamp needs the maximum of the whole row, known only now.
  for (int64_t b = 0; b < p.batch; ++b) {
    const float* tm = p.tile_max + b * p.n_tiles;
    p.row_max[b] = *std::max_element(tm, tm + p.n_tiles);
  }
  const int64_t rows = p.batch * p.n_mels;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, p.n_frames));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float lo = p.row_max[r / p.n_mels] - kMelDynamicRange;
      float* x = p.out + r * p.n_frames;
      for (int64_t t = 0; t < p.n_frames; ++t) x[t] = (std::max(x[t], lo) + kMelOffset) * (1.0f / kMelOffset);
    }
  });
}

}  // namespace

at::Tensor log_mel_spectrogram_cpu(const at::Tensor& audio,    // [B, N] or [N] float32
                                   const at::Tensor& filters,  // [n_mels, n_fft / 2 + 1] float32
                                   int64_t hop_length) {
  const LogMelSizes sz = check_log_mel_args(audio, filters, hop_length, c10::DeviceType::CPU);
  const at::Tensor x = (sz.batched ? audio : audio.unsqueeze(0)).contiguous();
  const at::Tensor fb = filters.contiguous();
  const int64_t batch = sz.batch, n_mels = sz.n_mels, n_frames = sz.n_frames;
  // Same memory layout either way; allocating the final shape avoids returning a view.
  at::Tensor out = sz.batched ? at::empty({batch, n_mels, n_frames}, x.options())
                              : at::empty({n_mels, n_frames}, x.options());
  if (out.numel() == 0) return out;

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

  MelParams p;
  p.audio = x.data_ptr<float>();
  p.filters = f;
  p.filter_bounds = bounds.data();
  p.out = out.data_ptr<float>();
  p.batch = batch;
  p.n_samples = sz.n_samples;
  p.audio_row_stride = x.stride(0);
  p.n_frames = n_frames;
  p.frames_per_tile = kLanes;
  p.n_tiles = (n_frames + kLanes - 1) / kLanes;
  p.n_fft = static_cast<int32_t>(sz.n_fft);
  p.n_bins = static_cast<int32_t>(fb.size(1));
  p.hop = static_cast<int32_t>(hop_length);
  p.n_mels = static_cast<int32_t>(n_mels);
  make_fft_plan(p.n_fft / 2, &p.plan);
  std::vector<float> tile_max(batch * p.n_tiles), row_max(batch);
  p.tile_max = tile_max.data();
  p.row_max = row_max.data();

  log_mel_cpu_kernel(p);
  return out;
}

}  // namespace whispermedia

TORCH_LIBRARY_IMPL(whispermedia, CPU, m) {
  m.impl("log_mel_spectrogram", &whispermedia::log_mel_spectrogram_cpu);
}

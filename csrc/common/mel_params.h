// Parameters of the fused log-mel op, shared by the CPU and CUDA kernels (no ATen here).
#pragma once

#include <cstdint>

#include "common/fft_plan.h"

namespace whispermedia {

// Whisper's dynamic-range clamp: log10 values below (row max - kMelDynamicRange) are raised
// to it. Then y = (x + kMelOffset) / kMelOffset.
constexpr float kMelLogFloor = 1e-10f;
constexpr float kMelDynamicRange = 8.0f;
constexpr float kMelOffset = 4.0f;

struct MelParams {
  const float* audio = nullptr;          // [batch, n_samples], row b at audio + b * audio_row_stride
  const float* filters = nullptr;        // [n_mels, n_bins] contiguous, n_bins = n_fft / 2 + 1
  int32_t* filter_bounds = nullptr;      // [n_mels, 2] scratch: first and one-past-last non-zero bin
  float* out = nullptr;                  // [batch, n_mels, n_frames] contiguous
  float* tile_max = nullptr;             // [batch, n_tiles] scratch: max log10 value per frame tile
  float* row_max = nullptr;              // [batch] scratch: max log10 value per row

  int64_t batch = 0;
  int64_t n_samples = 0;         // N; the caller guarantees N > n_fft / 2 (reflect padding)
  int64_t audio_row_stride = 0;  // elements between rows of `audio`
  int64_t n_frames = 0;          // N / hop: torch.stft's 1 + N / hop frames minus the last one
  int64_t n_tiles = 0;           // ceil(n_frames / frames_per_tile)
  int32_t n_fft = 0;
  int32_t n_bins = 0;
  int32_t hop = 0;
  int32_t n_mels = 0;
  int32_t frames_per_tile = 0;   // backend-specific; the unit of tile_max
  int32_t normalize = 1;         // 0: stop at log10 (log_mel_frames without a maximum)
  int32_t use_given_max = 0;     // 1: clamp at given_max - 8 instead of each row's own maximum
  float given_max = 0.0f;        //    (log_mel_frames with a maximum); row_max is then unused
  FftPlan plan;                  // factorisation of n_fft / 2
};

// Index of the sample that frame `t`, tap `i` reads after reflect padding by n_fft / 2
// (torch.stft(center=True, pad_mode="reflect")). Valid because n_samples > n_fft / 2.
WM_HOST_DEVICE inline int64_t reflect_index(int64_t idx, int64_t n_samples) {
  if (idx < 0) return -idx;
  if (idx >= n_samples) return 2 * (n_samples - 1) - idx;
  return idx;
}

}  // namespace whispermedia

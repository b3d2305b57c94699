// What the CPU and CUDA entry points of the fused ops share: the argument checks, so that both
// backends accept exactly the same inputs and fail with the same messages, and the filling of
// the kernels' parameter structs from the checked tensors. Host only (ATen).
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>

#include "common/attn_params.h"
#include "common/checks.h"
#include "common/fft_plan.h"
#include "common/mel_params.h"

namespace whispermedia {

struct LogMelSizes {
  int64_t batch, n_samples, n_fft, n_mels, n_frames;
  bool batched;  // audio was [B, N] (else [N])
};

inline LogMelSizes check_log_mel_args(const at::Tensor& audio, const at::Tensor& filters, int64_t hop_length,
                                      c10::DeviceType device) {
  WM_CHECK_DEVICE(audio, device);
  WM_CHECK_SAME_DEVICE(audio, filters);
  WM_CHECK_DTYPE(audio, at::kFloat);
  WM_CHECK_DTYPE(filters, at::kFloat);
  TORCH_CHECK(audio.dim() == 1 || audio.dim() == 2, "audio must be [N] or [B, N], got shape ", audio.sizes());
  WM_CHECK_DIM(filters, 2);
  TORCH_CHECK(filters.size(1) >= 2, "filters must be [n_mels, n_fft // 2 + 1] with n_fft >= 2, got shape ",
              filters.sizes());
  TORCH_CHECK(hop_length > 0, "hop_length must be positive, got ", hop_length);
  const int64_t n_fft = 2 * (filters.size(1) - 1);
  // Bounds the CPU kernel's per-thread scratch (64 * n_fft bytes); Whisper uses 400.
  TORCH_CHECK(n_fft <= 65536, "n_fft = ", n_fft, " (from filters.size(1)) is too large, at most 65536");
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  TORCH_CHECK(filters.size(0) <= kInt32Max && hop_length <= kInt32Max, "n_mels and hop_length must fit in int32");
  const int64_t n_samples = audio.size(-1);
  TORCH_CHECK(n_samples > n_fft / 2, "log_mel_spectrogram: audio of ", n_samples,
              " samples is too short to reflect-pad by n_fft / 2 = ", n_fft / 2, " (need more than ", n_fft / 2,
              " samples)");
  const bool batched = audio.dim() == 2;
  return {batched ? audio.size(0) : 1, n_samples, n_fft, filters.size(0), n_samples / hop_length, batched};
}

// MelParams from the checked sizes, the contiguous audio rows x [B, N], the contiguous filters
// and the output, for a backend whose kernel handles `frames_per_tile` frames per tile. The
// caller adds its scratch (filter_bounds, tile_max, row_max) and keeps every tensor alive until
// the kernel has run.
inline MelParams make_mel_params(const LogMelSizes& sz, const at::Tensor& x, const at::Tensor& filters,
                                 const at::Tensor& out, int64_t hop_length, int32_t frames_per_tile, bool normalize,
                                 std::optional<double> maximum) {
  MelParams p;
  p.audio = x.data_ptr<float>();
  p.filters = filters.data_ptr<float>();
  p.out = out.data_ptr<float>();
  p.batch = sz.batch;
  p.n_samples = sz.n_samples;
  p.audio_row_stride = x.stride(0);
  p.n_frames = sz.n_frames;
  p.n_tiles = (sz.n_frames + frames_per_tile - 1) / frames_per_tile;
  p.n_fft = static_cast<int32_t>(sz.n_fft);
  p.n_bins = static_cast<int32_t>(filters.size(1));
  p.hop = static_cast<int32_t>(hop_length);
  p.n_mels = static_cast<int32_t>(sz.n_mels);
  p.frames_per_tile = frames_per_tile;
  p.normalize = normalize ? 1 : 0;
  p.use_given_max = maximum.has_value() ? 1 : 0;
  p.given_max = maximum.has_value() ? static_cast<float>(*maximum) : 0.0f;
  make_fft_plan(p.n_fft / 2, &p.plan);
  return p;
}

struct KvAttnSizes {
  int64_t batch, tq, tmax, heads, head_dim;
};

inline KvAttnSizes check_kv_attention_args(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                                           const at::Tensor& k_new, const at::Tensor& v_new,
                                           const at::Tensor& seqlens, c10::DeviceType device) {
  WM_CHECK_DEVICE(q, device);
  for (const at::Tensor* t : {&k_cache, &v_cache, &k_new, &v_new, &seqlens}) WM_CHECK_SAME_DEVICE(q, *t);
  WM_CHECK_DIM(q, 4);
  WM_CHECK_DIM(k_cache, 4);
  const int64_t B = q.size(0), Tq = q.size(1), H = q.size(2), D = q.size(3), Tmax = k_cache.size(1);
  WM_CHECK_SHAPE(k_cache, B, Tmax, H, D);
  WM_CHECK_SHAPE(v_cache, B, Tmax, H, D);
  WM_CHECK_SHAPE(k_new, B, Tq, H, D);
  WM_CHECK_SHAPE(v_new, B, Tq, H, D);
  WM_CHECK_SHAPE(seqlens, B);
  WM_CHECK_DTYPE(seqlens, at::kInt);
  const auto dtype = q.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kHalf || dtype == at::kBFloat16,
              "kv_attention supports float32, float16 and bfloat16, got ", dtype);
  WM_CHECK_DTYPE(k_cache, dtype);
  WM_CHECK_DTYPE(v_cache, dtype);
  WM_CHECK_DTYPE(k_new, dtype);
  WM_CHECK_DTYPE(v_new, dtype);
  // The caches are written in place, so they cannot be made contiguous behind the caller's back.
  WM_CHECK_LAST_DIM_CONTIGUOUS(k_cache);
  WM_CHECK_LAST_DIM_CONTIGUOUS(v_cache);
  TORCH_CHECK(Tq <= Tmax, "kv_attention: Tq = ", Tq, " new rows do not fit in a cache of Tmax = ", Tmax);
  TORCH_CHECK(std::max({B * Tq * H, Tmax, D}) <= std::numeric_limits<int32_t>::max(),
              "kv_attention: sizes overflow int32");
  return {B, Tq, Tmax, H, D};
}

inline AttnDtype attn_dtype(at::ScalarType t) {
  return t == at::kFloat ? AttnDtype::kFloat32 : t == at::kHalf ? AttnDtype::kFloat16 : AttnDtype::kBFloat16;
}

inline Bthd strides_of(const at::Tensor& t) { return Bthd{t.stride(0), t.stride(1), t.stride(2)}; }

// Read-only [B, T, H, D] inputs: any layout with a contiguous last dim is used in place.
inline at::Tensor last_dim_contiguous(const at::Tensor& t) {
  return t.size(-1) <= 1 || t.stride(-1) == 1 ? t : t.contiguous();
}

// KvAttnParams from the checked sizes and tensors: q, k_new, v_new last-dim contiguous
// (last_dim_contiguous), seqlens contiguous int32 on the op's device, out [B, Tq, H, D]. The
// caller adds any backend scratch (CUDA's split-K) and keeps every tensor alive until the
// kernel has run.
inline KvAttnParams make_kv_attn_params(const KvAttnSizes& sz, const at::Tensor& q, const at::Tensor& k_cache,
                                        const at::Tensor& v_cache, const at::Tensor& k_new, const at::Tensor& v_new,
                                        const at::Tensor& seqlens, const at::Tensor& out, double scale) {
  KvAttnParams p;
  p.q = q.data_ptr();
  p.k_cache = k_cache.data_ptr();
  p.v_cache = v_cache.data_ptr();
  p.k_new = k_new.data_ptr();
  p.v_new = v_new.data_ptr();
  p.out = out.data_ptr();
  p.seqlens = seqlens.data_ptr<int32_t>();
  p.q_stride = strides_of(q);
  p.k_cache_stride = strides_of(k_cache);
  p.v_cache_stride = strides_of(v_cache);
  p.k_new_stride = strides_of(k_new);
  p.v_new_stride = strides_of(v_new);
  p.out_stride = strides_of(out);
  p.batch = static_cast<int32_t>(sz.batch);
  p.tq = static_cast<int32_t>(sz.tq);
  p.tmax = static_cast<int32_t>(sz.tmax);
  p.heads = static_cast<int32_t>(sz.heads);
  p.head_dim = static_cast<int32_t>(sz.head_dim);
  p.scale = static_cast<float>(scale);
  p.dtype = attn_dtype(q.scalar_type());
  return p;
}

}  // namespace whispermedia

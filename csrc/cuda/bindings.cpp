// ATen entry points of the CUDA kernels: the only CUDA-side file that sees ATen. Each entry
// checks its arguments and fills the POD params as the CPU entry does (the shared helpers in
// ops.h), guards the device, allocates outputs and scratch with the caching allocator and
// launches on the current stream. Compiled only in CUDA builds.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <optional>

#include "common/checks.h"
#include "cuda/launch.h"
#include "ops.h"

namespace whispermedia {

namespace {

at::Tensor log_mel_cuda(const at::Tensor& audio,    // [B, N] or [N] float32
                        const at::Tensor& filters,  // [n_mels, n_fft / 2 + 1] float32
                        int64_t hop_length, bool normalize, std::optional<double> maximum) {
  const LogMelSizes sz = check_log_mel_args(audio, filters, hop_length, c10::DeviceType::CUDA);
  const int32_t frames_per_block = log_mel_cuda_frames_per_block(static_cast<int32_t>(sz.n_fft));
  TORCH_CHECK(frames_per_block > 0, "log_mel_spectrogram: n_fft = ", sz.n_fft,
              " does not fit in the CUDA kernel's shared memory (n_fft <= 3072 is supported)");
  TORCH_CHECK(sz.batch <= 65535, "log_mel_spectrogram: at most 65535 rows per call on CUDA, got ", sz.batch);
  const c10::cuda::CUDAGuard guard(audio.device());

  const at::Tensor x = (sz.batched ? audio : audio.unsqueeze(0)).contiguous();
  const at::Tensor fb = filters.contiguous();
  at::Tensor out = sz.batched ? at::empty({sz.batch, sz.n_mels, sz.n_frames}, x.options())
                              : at::empty({sz.n_mels, sz.n_frames}, x.options());
  if (out.numel() == 0) return out;

  MelParams p = make_mel_params(sz, x, fb, out, hop_length, frames_per_block, normalize, maximum);
  // Scratch is freed when this returns but stays reserved for this stream by the caching
  // allocator until the kernels queued on it have run.
  at::Tensor bounds = at::empty({sz.n_mels, 2}, x.options().dtype(at::kInt));
  at::Tensor maxima = at::empty({sz.batch * p.n_tiles + sz.batch}, x.options());
  p.filter_bounds = bounds.data_ptr<int32_t>();
  p.tile_max = maxima.data_ptr<float>();
  p.row_max = p.tile_max + sz.batch * p.n_tiles;

  C10_CUDA_CHECK(launch_log_mel(p, c10::cuda::getCurrentCUDAStream()));
  return out;
}

}  // namespace

at::Tensor log_mel_spectrogram_cuda(const at::Tensor& audio, const at::Tensor& filters, int64_t hop_length) {
  return log_mel_cuda(audio, filters, hop_length, /*normalize=*/true, std::nullopt);
}

at::Tensor log_mel_frames_cuda(const at::Tensor& audio, const at::Tensor& filters, int64_t hop_length,
                               std::optional<double> maximum) {
  return log_mel_cuda(audio, filters, hop_length, /*normalize=*/maximum.has_value(), maximum);
}

at::Tensor kv_attention_cuda(const at::Tensor& q,        // [B, Tq, H, D]
                             at::Tensor& k_cache,        // [B, Tmax, H, D], written in place
                             at::Tensor& v_cache,        // [B, Tmax, H, D], written in place
                             const at::Tensor& k_new,    // [B, Tq, H, D]
                             const at::Tensor& v_new,    // [B, Tq, H, D]
                             const at::Tensor& seqlens,  // [B] int32, stays on the device
                             double scale) {
  const KvAttnSizes sz = check_kv_attention_args(q, k_cache, v_cache, k_new, v_new, seqlens, c10::DeviceType::CUDA);
  TORCH_CHECK(sz.head_dim <= kKvAttnMaxHeadDim, "kv_attention: head dim ", sz.head_dim, " > ", kKvAttnMaxHeadDim,
              " is not supported on CUDA");
  const c10::cuda::CUDAGuard guard(q.device());

  at::Tensor out = at::empty({sz.batch, sz.tq, sz.heads, sz.head_dim}, q.options());
  if (out.numel() == 0) return out;
  // seqlens + Tq <= Tmax is checked by the kernel (a device-side assertion): reading it
  // here would synchronise every decode step and break CUDA graph capture.
  const at::Tensor lens = seqlens.contiguous();
  const at::Tensor qc = last_dim_contiguous(q), kn = last_dim_contiguous(k_new), vn = last_dim_contiguous(v_new);

  KvAttnParams p = make_kv_attn_params(sz, qc, k_cache, v_cache, kn, vn, lens, out, scale);
  kv_attention_cuda_plan(&p);

  at::Tensor partial;
  if (p.num_splits > 1) {
    const int64_t slots = sz.batch * sz.tq * sz.heads * p.num_splits;
    partial = at::empty({slots * (sz.head_dim + 2)}, q.options().dtype(at::kFloat));
    p.partial_acc = partial.data_ptr<float>();
    p.partial_max = p.partial_acc + slots * sz.head_dim;
    p.partial_sum = p.partial_max + slots;
  }
  C10_CUDA_CHECK(launch_kv_attention(p, c10::cuda::getCurrentCUDAStream()));
  return out;
}

}  // namespace whispermedia

TORCH_LIBRARY_IMPL(whispermedia, CUDA, m) {
  m.impl("log_mel_spectrogram", &whispermedia::log_mel_spectrogram_cuda);
  m.impl("log_mel_frames", &whispermedia::log_mel_frames_cuda);
  m.impl("kv_attention", &whispermedia::kv_attention_cuda);
}

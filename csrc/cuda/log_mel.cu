// CUDA kernels of whispermedia::log_mel_spectrogram (the CPU kernel in cpu/log_mel.cpp does
// the same math; the butterflies are literally shared through common/fft_butterfly.h).
//
//   1. filter_bounds: first/last non-zero bin of each mel filter (the bank is sparse).
//   2. frames: one block per (tile of frames, batch row). The twiddle table and the tile's
//      frames live in shared memory; windowing, the Stockham FFT, |X|^2, the sparse mel dot
//      products and log10 are fused, and the block writes one maximum for its tile.
//   3. row_max: maximum over the tiles of each row (the clamp needs the whole row).
//   4. clamp: max(x, row_max - 8), then (x + 4) / 4, elementwise. log_mel_frames clamps with
//      the caller's maximum instead (p.use_given_max), or stops after step 2 (p.normalize == 0).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "common/fft_butterfly.h"
#include "common/mel_params.h"
#include "cuda/launch.h"

namespace whispermedia {
namespace {

constexpr int kFrameThreads = 128;
constexpr int kMaxFramesPerBlock = 8;
// The default dynamic shared memory limit, so no opt-in (cudaFuncSetAttribute) is needed on
// any architecture.
constexpr size_t kSharedBudget = 48 * 1024;

size_t frames_smem_bytes(int32_t n_fft, int32_t frames) {
  // twiddle table (re, im) + two ping-pong buffers of `frames` complex transforms of n_fft/2
  return sizeof(float) * (2 * static_cast<size_t>(n_fft) + 4 * static_cast<size_t>(frames) * (n_fft / 2));
}

__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Maximum over the block; every thread must call it and gets the result. `red` is
// shared scratch of 32 floats, free again on return.
__device__ float block_max(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, n_warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = warp_max(lane < n_warps ? red[lane] : -INFINITY);
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  v = red[0];
  __syncthreads();
  return v;
}

__global__ void filter_bounds_kernel(const float* __restrict__ filters, int32_t n_mels, int32_t n_bins,
                                     int32_t* __restrict__ bounds) {
  const int32_t mel = blockIdx.x * blockDim.x + threadIdx.x;
  if (mel >= n_mels) return;
  const float* row = filters + static_cast<int64_t>(mel) * n_bins;
  int32_t lo = 0, hi = n_bins;
  while (lo < hi && row[lo] == 0.0f) ++lo;
  while (hi > lo && row[hi - 1] == 0.0f) --hi;
  bounds[2 * mel] = lo;
  bounds[2 * mel + 1] = hi;
}

__global__ void __launch_bounds__(kFrameThreads) frames_kernel(const MelParams p) {
  extern __shared__ float smem[];
  __shared__ float red[32];
  const int32_t n_fft = p.n_fft, m = p.plan.m, frames = p.frames_per_tile;
  const int64_t fm = static_cast<int64_t>(frames) * m;
  float* tw_re = smem;
  float* tw_im = smem + n_fft;
  float* buf = smem + 2 * n_fft;  // [re0 | im0 | re1 | im1], each [frames][m]

  const int64_t tile = blockIdx.x, b = blockIdx.y;
  const int64_t t0 = tile * frames;
  const int32_t n_valid = static_cast<int32_t>(min(static_cast<int64_t>(frames), p.n_frames - t0));
  const float* audio = p.audio + b * p.audio_row_stride;

  for (int32_t e = threadIdx.x; e < n_fft; e += blockDim.x) twiddle(e, n_fft, &tw_re[e], &tw_im[e]);
  __syncthreads();

  // Windowed frames packed as z[k] = x[2k] + i x[2k+1]. Frames past the end of the row
  // repeat the last one so that every butterfly works on finite, in-range data.
  for (int32_t idx = threadIdx.x; idx < fm; idx += blockDim.x) {
    const int32_t f = idx / m, k = idx - f * m;
    const int64_t start = (t0 + min(f, n_valid - 1)) * p.hop - n_fft / 2 + 2 * k;
    buf[idx] = audio[reflect_index(start, p.n_samples)] * (0.5f - 0.5f * tw_re[2 * k]);
    buf[fm + idx] = audio[reflect_index(start + 1, p.n_samples)] * (0.5f - 0.5f * tw_re[2 * k + 1]);
  }
  __syncthreads();

  int cur = 0;
  int32_t l = 1;
  for (int32_t st = 0; st < p.plan.n_stages; ++st) {
    const int32_t radix = p.plan.radix[st];
    const int32_t s = m / (l * radix), per_frame = m / radix;
    const float* in_re = buf + cur * 2 * fm;
    float* out_re = buf + (cur ^ 1) * 2 * fm;
    for (int32_t idx = threadIdx.x; idx < frames * per_frame; idx += blockDim.x) {
      const int32_t f = idx / per_frame, bf = idx - f * per_frame;
      const int32_t t1 = bf / l, j = bf - t1 * l;
      const int64_t in = static_cast<int64_t>(f) * m + t1 * l + j;
      const int64_t out = static_cast<int64_t>(f) * m + t1 * radix * l + j;
      radix_butterfly<float>(radix, in_re + in, in_re + fm + in, static_cast<int64_t>(s) * l, out_re + out,
                             out_re + fm + out, l, 2 * l * t1, n_fft, tw_re, tw_im);
    }
    __syncthreads();
    l *= radix;
    cur ^= 1;
  }

  // |X[k]|^2, k in [0, m], into the free buffer ([frames][m + 1] fits in its 2 * frames * m):
  // thread item k in [0, m/2] writes bins k and m - k (k = 0: DC and Nyquist).
  const float* zr = buf + cur * 2 * fm;
  const float* zi = zr + fm;
  float* power = buf + (cur ^ 1) * 2 * fm;
  const int32_t pairs = m / 2 + 1;
  for (int32_t idx = threadIdx.x; idx < frames * pairs; idx += blockDim.x) {
    const int32_t f = idx / pairs, k = idx - f * pairs;
    const float* fr = zr + static_cast<int64_t>(f) * m;
    const float* fi = zi + static_cast<int64_t>(f) * m;
    float* pw = power + static_cast<int64_t>(f) * (m + 1);
    if (k == 0) {
      const float dc = fr[0] + fi[0], nyquist = fr[0] - fi[0];
      pw[0] = dc * dc;
      pw[m] = nyquist * nyquist;
    } else {
      unpacked_power_pair<float>(fr[k], fi[k], fr[m - k], fi[m - k], tw_re[k], tw_im[k], &pw[k], &pw[m - k]);
    }
  }
  __syncthreads();

  // Consecutive threads take consecutive frames of one mel row: coalesced stores.
  float local_max = -INFINITY;
  for (int32_t idx = threadIdx.x; idx < p.n_mels * frames; idx += blockDim.x) {
    const int32_t mel = idx / frames, f = idx - mel * frames;
    if (f >= n_valid) continue;
    const int32_t lo = p.filter_bounds[2 * mel], hi = p.filter_bounds[2 * mel + 1];
    const float* w = p.filters + static_cast<int64_t>(mel) * p.n_bins;
    const float* pw = power + static_cast<int64_t>(f) * (m + 1);
    float acc = 0.0f;
    for (int32_t k = lo; k < hi; ++k) acc = fmaf(__ldg(w + k), pw[k], acc);
    const float v = log10f(fmaxf(acc, kMelLogFloor));  // fmaxf also maps NaN to the floor, as on CPU
    p.out[(b * p.n_mels + mel) * p.n_frames + t0 + f] = v;
    local_max = fmaxf(local_max, v);
  }
  local_max = block_max(local_max, red);
  if (threadIdx.x == 0) p.tile_max[b * p.n_tiles + tile] = local_max;
}

__global__ void row_max_kernel(const float* __restrict__ tile_max, int64_t n_tiles, float* __restrict__ row_max) {
  __shared__ float red[32];
  const int64_t b = blockIdx.x;
  float v = -INFINITY;
  for (int64_t t = threadIdx.x; t < n_tiles; t += blockDim.x) v = fmaxf(v, tile_max[b * n_tiles + t]);
  v = block_max(v, red);
  if (threadIdx.x == 0) row_max[b] = v;
}

__global__ void clamp_kernel(float* __restrict__ out, const float* __restrict__ row_max, int32_t use_given_max,
                             float given_max, int64_t per_row, int64_t total) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float lo = (use_given_max ? given_max : row_max[i / per_row]) - kMelDynamicRange;
    out[i] = (fmaxf(out[i], lo) + kMelOffset) * (1.0f / kMelOffset);
  }
}

}  // namespace

int32_t log_mel_cuda_frames_per_block(int32_t n_fft) {
  for (int32_t frames = kMaxFramesPerBlock; frames >= 1; frames /= 2)
    if (frames_smem_bytes(n_fft, frames) <= kSharedBudget) return frames;
  return 0;
}

cudaError_t launch_log_mel(const MelParams& p, cudaStream_t stream) {
  if (p.batch == 0 || p.n_mels == 0 || p.n_frames == 0) return cudaSuccess;
  if (p.frames_per_tile < 1 || frames_smem_bytes(p.n_fft, p.frames_per_tile) > kSharedBudget || p.batch > 65535)
    return cudaErrorInvalidValue;

  filter_bounds_kernel<<<(p.n_mels + 127) / 128, 128, 0, stream>>>(p.filters, p.n_mels, p.n_bins, p.filter_bounds);
  const dim3 grid(static_cast<unsigned>(p.n_tiles), static_cast<unsigned>(p.batch));
  frames_kernel<<<grid, kFrameThreads, frames_smem_bytes(p.n_fft, p.frames_per_tile), stream>>>(p);
  if (!p.normalize) return cudaGetLastError();  // log_mel_frames without a maximum: stop at log10
  if (!p.use_given_max)
    row_max_kernel<<<static_cast<unsigned>(p.batch), 256, 0, stream>>>(p.tile_max, p.n_tiles, p.row_max);
  const int64_t total = p.batch * p.n_mels * p.n_frames;
  const int64_t blocks = std::min<int64_t>((total + 255) / 256, 8192);
  clamp_kernel<<<static_cast<unsigned>(blocks), 256, 0, stream>>>(p.out, p.row_max, p.use_given_max, p.given_max,
                                                                   p.n_mels * p.n_frames, total);
  return cudaGetLastError();
}

}  // namespace whispermedia

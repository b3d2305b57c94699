// CUDA kernels of whispermedia::kv_attention, shaped for decoding (Tq small, cache short
// to medium): one block per (batch row, query, head, split of the cache), split-K over the
// cache positions when there are too few (b, i, h) rows to fill the GPU, and a combine
// kernel that merges the splits' partial softmax sums. All arithmetic is fp32.
//
// The append needs no second launch and no grid-wide barrier: every block reads cache
// positions below seqlens[b] from the cache and positions seqlens[b] + t from k_new/v_new
// row t directly, so the cache rows being written are never read in the same launch; the
// split-0 block of query i writes row seqlens[b] + i.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <cstdio>

#include "common/attn_params.h"
#include "cuda/launch.h"

namespace whispermedia {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kKeyChunk = 64;         // scores held in shared memory per round of the online softmax
constexpr int kTargetSplitLen = 128;  // cache positions per split when splitting
constexpr int kMaxSplits = 16;
constexpr int64_t kEnoughRows = 1024;  // (b, i, h) rows that keep a GPU busy without splitting
constexpr int kMaxDimsPerThread = (kKvAttnMaxHeadDim + kThreads - 1) / kThreads;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ __half from_float<__half>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Block-wide reductions; every thread calls them and gets the result; `red` is free on return.
template <bool kMax>
__device__ float block_reduce(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = kMax ? warp_max(v) : warp_sum(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? red[lane] : (kMax ? -INFINITY : 0.0f);
    v = kMax ? warp_max(v) : warp_sum(v);
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  v = red[0];
  __syncthreads();
  return v;
}

// Overflowing the cache would write out of bounds: nothing is written or read for that
// row, and the launch fails with a device-side assertion (no host synchronisation, so the
// op stays capturable in a CUDA graph). Kept out of line: it is never taken.
__device__ __noinline__ void report_overflow(int b, int len, int tq, int tmax) {
  printf("whispermedia::kv_attention: cache overflow in batch row %d: seqlens[%d] = %d plus Tq = %d new rows "
         "exceeds the cache length Tmax = %d\n",
         b, b, len, tq, tmax);
#if defined(__linux__)
  __assert_fail("seqlens[b] + Tq <= Tmax", __FILE__, __LINE__, __func__);
#else
  __trap();
#endif
}

struct RowIndex {
  int b, i, h;
};

__device__ __forceinline__ RowIndex decompose(int64_t row, const KvAttnParams& p) {
  RowIndex r;
  r.h = static_cast<int>(row % p.heads);
  const int64_t bi = row / p.heads;
  r.i = static_cast<int>(bi % p.tq);
  r.b = static_cast<int>(bi / p.tq);
  return r;
}

template <typename T>
__global__ void __launch_bounds__(kThreads) attention_kernel(const KvAttnParams p) {
  __shared__ float q_s[kKvAttnMaxHeadDim];
  __shared__ float p_s[kKeyChunk];
  __shared__ float part_s[kThreads];
  __shared__ float red[32];

  const int64_t row = blockIdx.x;
  const RowIndex r = decompose(row, p);
  const int split = blockIdx.y;
  const int D = p.head_dim;
  const int len = p.seqlens[r.b];
  if (len < 0 || len + p.tq > p.tmax) {
    if (threadIdx.x == 0 && split == 0 && r.i == 0 && r.h == 0) report_overflow(r.b, len, p.tq, p.tmax);
    return;  // uniform across the block: no barrier is left waiting
  }

  const T* q = static_cast<const T*>(p.q);
  const T* k_new = static_cast<const T*>(p.k_new);
  const T* v_new = static_cast<const T*>(p.v_new);
  T* k_cache = static_cast<T*>(p.k_cache);
  T* v_cache = static_cast<T*>(p.v_cache);
  const T* k_new_bh = k_new + r.b * p.k_new_stride.b + r.h * p.k_new_stride.h;
  const T* v_new_bh = v_new + r.b * p.v_new_stride.b + r.h * p.v_new_stride.h;
  T* k_cache_bh = k_cache + r.b * p.k_cache_stride.b + r.h * p.k_cache_stride.h;
  T* v_cache_bh = v_cache + r.b * p.v_cache_stride.b + r.h * p.v_cache_stride.h;

  if (split == 0) {
    T* kc = k_cache_bh + static_cast<int64_t>(len + r.i) * p.k_cache_stride.t;
    T* vc = v_cache_bh + static_cast<int64_t>(len + r.i) * p.v_cache_stride.t;
    const T* kn = k_new_bh + static_cast<int64_t>(r.i) * p.k_new_stride.t;
    const T* vn = v_new_bh + static_cast<int64_t>(r.i) * p.v_new_stride.t;
    for (int d = threadIdx.x; d < D; d += kThreads) {
      kc[d] = kn[d];
      vc[d] = vn[d];
    }
  }

  const T* q_row = q + r.b * p.q_stride.b + static_cast<int64_t>(r.i) * p.q_stride.t + r.h * p.q_stride.h;
  for (int d = threadIdx.x; d < D; d += kThreads) q_s[d] = to_float(q_row[d]);
  __syncthreads();

  // Key/value row j of this (b, h): cached below len, this step's input from len on.
  auto k_row = [&](int j) -> const T* {
    return j < len ? k_cache_bh + static_cast<int64_t>(j) * p.k_cache_stride.t
                   : k_new_bh + static_cast<int64_t>(j - len) * p.k_new_stride.t;
  };
  auto v_row = [&](int j) -> const T* {
    return j < len ? v_cache_bh + static_cast<int64_t>(j) * p.v_cache_stride.t
                   : v_new_bh + static_cast<int64_t>(j - len) * p.v_new_stride.t;
  };

  // P.V ownership: with D <= kThreads, `groups` groups of D threads each sum every groups-th
  // key for one dimension; with larger D each thread owns up to kMaxDimsPerThread dimensions.
  const int groups = D <= kThreads ? kThreads / D : 1;
  const int group = D <= kThreads ? threadIdx.x / D : 0;
  const int d0 = D <= kThreads ? threadIdx.x % D : threadIdx.x;
  const bool pv_active = group < groups;
  float acc[kMaxDimsPerThread];
#pragma unroll
  for (int t = 0; t < kMaxDimsPerThread; ++t) acc[t] = 0.0f;

  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int n_keys = len + r.i + 1;  // causal: cache positions [0, len + i]
  const int j_begin = split * p.split_len;
  const int j_end = min(n_keys, j_begin + p.split_len);
  float run_max = -INFINITY, run_sum = 0.0f;

  for (int c0 = j_begin; c0 < j_end; c0 += kKeyChunk) {
    const int c_len = min(kKeyChunk, j_end - c0);
    for (int jj = warp; jj < c_len; jj += kWarps) {
      const T* kr = k_row(c0 + jj);
      float dot = 0.0f;
      for (int d = lane; d < D; d += 32) dot = fmaf(q_s[d], to_float(kr[d]), dot);
      dot = warp_sum(dot);
      if (lane == 0) p_s[jj] = dot * p.scale;
    }
    __syncthreads();

    float chunk_max = -INFINITY;
    for (int jj = threadIdx.x; jj < c_len; jj += kThreads) chunk_max = fmaxf(chunk_max, p_s[jj]);
    chunk_max = block_reduce<true>(chunk_max, red);
    const float new_max = fmaxf(run_max, chunk_max);
    const float rescale = expf(run_max - new_max);  // 0 on the first chunk (run_max = -inf)
    float chunk_sum = 0.0f;
    for (int jj = threadIdx.x; jj < c_len; jj += kThreads) {
      const float e = expf(p_s[jj] - new_max);
      p_s[jj] = e;
      chunk_sum += e;
    }
    chunk_sum = block_reduce<false>(chunk_sum, red);  // its barriers also publish p_s
    run_sum = run_sum * rescale + chunk_sum;
    run_max = new_max;

    if (pv_active) {
#pragma unroll
      for (int t = 0; t < kMaxDimsPerThread; ++t) acc[t] *= rescale;
      for (int jj = group; jj < c_len; jj += groups) {
        const T* vr = v_row(c0 + jj);
        const float w = p_s[jj];
#pragma unroll
        for (int t = 0; t < kMaxDimsPerThread; ++t) {
          const int d = d0 + t * kThreads;
          if (d < D) acc[t] = fmaf(w, to_float(vr[d]), acc[t]);
        }
      }
    }
    __syncthreads();  // p_s is overwritten by the next chunk
  }

  if (groups > 1) {
    if (pv_active) part_s[group * D + d0] = acc[0];
    __syncthreads();
    if (group == 0)
      for (int g = 1; g < groups; ++g) acc[0] += part_s[g * D + d0];
  }
  if (group != 0) return;

  if (p.num_splits == 1) {
    T* o = static_cast<T*>(p.out) + r.b * p.out_stride.b + static_cast<int64_t>(r.i) * p.out_stride.t +
           r.h * p.out_stride.h;
    const float inv = 1.0f / run_sum;
#pragma unroll
    for (int t = 0; t < kMaxDimsPerThread; ++t) {
      const int d = d0 + t * kThreads;
      if (d < D) o[d] = from_float<T>(acc[t] * inv);
    }
  } else {
    // Unnormalised partial result relative to this split's own maximum; an empty split
    // leaves (-inf, 0, zeros), which the combine step weighs by zero.
    const int64_t slot = row * p.num_splits + split;
#pragma unroll
    for (int t = 0; t < kMaxDimsPerThread; ++t) {
      const int d = d0 + t * kThreads;
      if (d < D) p.partial_acc[slot * D + d] = acc[t];
    }
    if (threadIdx.x == 0) {
      p.partial_max[slot] = run_max;
      p.partial_sum[slot] = run_sum;
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) combine_kernel(const KvAttnParams p) {
  __shared__ float weight_s[kMaxSplits];
  __shared__ float inv_denom_s;
  const int64_t row = blockIdx.x;
  const RowIndex r = decompose(row, p);
  const int len = p.seqlens[r.b];
  if (len < 0 || len + p.tq > p.tmax) return;  // reported by attention_kernel

  const int S = p.num_splits;
  const float* pm = p.partial_max + row * S;
  const float* ps = p.partial_sum + row * S;
  if (threadIdx.x == 0) {
    float global_max = -INFINITY;
    for (int s = 0; s < S; ++s) global_max = fmaxf(global_max, pm[s]);  // finite: split 0 has a key
    float denom = 0.0f;
    for (int s = 0; s < S; ++s) {
      weight_s[s] = ps[s] > 0.0f ? expf(pm[s] - global_max) : 0.0f;
      denom += ps[s] * weight_s[s];
    }
    inv_denom_s = 1.0f / denom;
  }
  __syncthreads();

  T* o = static_cast<T*>(p.out) + r.b * p.out_stride.b + static_cast<int64_t>(r.i) * p.out_stride.t +
         r.h * p.out_stride.h;
  for (int d = threadIdx.x; d < p.head_dim; d += kThreads) {
    float num = 0.0f;
    for (int s = 0; s < S; ++s) num = fmaf(p.partial_acc[(row * S + s) * p.head_dim + d], weight_s[s], num);
    o[d] = from_float<T>(num * inv_denom_s);
  }
}

template <typename T>
cudaError_t launch_typed(const KvAttnParams& p, cudaStream_t stream) {
  const int64_t rows = static_cast<int64_t>(p.batch) * p.tq * p.heads;
  const dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(p.num_splits));
  attention_kernel<T><<<grid, kThreads, 0, stream>>>(p);
  if (p.num_splits > 1) combine_kernel<T><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

void kv_attention_cuda_plan(KvAttnParams* p) {
  const int64_t rows = static_cast<int64_t>(p->batch) * p->tq * p->heads;
  int32_t splits = 1;
  if (rows < kEnoughRows)
    splits = static_cast<int32_t>(std::min<int64_t>(kMaxSplits, (p->tmax + kTargetSplitLen - 1) / kTargetSplitLen));
  splits = std::max(splits, 1);
  p->num_splits = splits;
  p->split_len = std::max<int32_t>(1, (p->tmax + splits - 1) / splits);
}

cudaError_t launch_kv_attention(const KvAttnParams& p, cudaStream_t stream) {
  if (p.batch == 0 || p.tq == 0 || p.heads == 0 || p.head_dim == 0) return cudaSuccess;
  if (p.head_dim > kKvAttnMaxHeadDim || p.num_splits < 1 || p.num_splits > kMaxSplits ||
      static_cast<int64_t>(p.num_splits) * p.split_len < p.tmax ||
      (p.num_splits > 1 && (!p.partial_acc || !p.partial_max || !p.partial_sum)))
    return cudaErrorInvalidValue;
  switch (p.dtype) {
    case AttnDtype::kFloat32: return launch_typed<float>(p, stream);
    case AttnDtype::kFloat16: return launch_typed<__half>(p, stream);
    case AttnDtype::kBFloat16: return launch_typed<__nv_bfloat16>(p, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace whispermedia

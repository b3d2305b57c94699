// CPU kernel of whispermedia::kv_attention: one task per (batch row, head). A task first
// appends its rows of k_new/v_new to the caches and then attends, so tasks never touch
// each other's data. Two-pass softmax in fp32 over a per-task score buffer.
#include "cpu/simd.h"  // first: see the note there on -Wpsabi

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/attn_params.h"
#include "common/checks.h"
#include "common/macros.h"
#include "ops.h"

namespace whispermedia {
namespace {

using cpu::kLanes;
using cpu::Vec;

template <typename T>
WM_FORCE_INLINE Vec load_lanes(const T* p) {
  Vec v = cpu::splat(0.0f);
  for (int i = 0; i < kLanes; ++i) v[i] = static_cast<float>(p[i]);
  return v;
}
template <>
WM_FORCE_INLINE Vec load_lanes<float>(const float* p) {
  return cpu::load(p);
}

// scores[j] = scale * q . k_j for j in [0, n_keys). Four keys at a time: four independent
// accumulator chains hide the FMA latency and each q block is loaded once for all four.
template <typename T>
WM_FORCE_INLINE void score_keys(const float* WM_RESTRICT qf, const T* k_base, int64_t k_stride, int64_t n_keys,
                                int32_t D, float scale, float* WM_RESTRICT scores) {
  const int32_t d_vec = D / kLanes * kLanes;
  int64_t j = 0;
  for (; j + 4 <= n_keys; j += 4) {
    const T* k0 = k_base + j * k_stride;
    const T *k1 = k0 + k_stride, *k2 = k1 + k_stride, *k3 = k2 + k_stride;
    Vec a0 = cpu::splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (int32_t d = 0; d < d_vec; d += kLanes) {
      const Vec qv = cpu::load(qf + d);
      a0 += qv * load_lanes(k0 + d);
      a1 += qv * load_lanes(k1 + d);
      a2 += qv * load_lanes(k2 + d);
      a3 += qv * load_lanes(k3 + d);
    }
    float s0 = cpu::hsum(a0), s1 = cpu::hsum(a1), s2 = cpu::hsum(a2), s3 = cpu::hsum(a3);
    for (int32_t d = d_vec; d < D; ++d) {
      s0 += qf[d] * static_cast<float>(k0[d]);
      s1 += qf[d] * static_cast<float>(k1[d]);
      s2 += qf[d] * static_cast<float>(k2[d]);
      s3 += qf[d] * static_cast<float>(k3[d]);
    }
    scores[j] = s0 * scale;
    scores[j + 1] = s1 * scale;
    scores[j + 2] = s2 * scale;
    scores[j + 3] = s3 * scale;
  }
  for (; j < n_keys; ++j) {
    const T* k = k_base + j * k_stride;
    Vec a = cpu::splat(0.0f);
    for (int32_t d = 0; d < d_vec; d += kLanes) a += cpu::load(qf + d) * load_lanes(k + d);
    float s = cpu::hsum(a);
    for (int32_t d = d_vec; d < D; ++d) s += qf[d] * static_cast<float>(k[d]);
    scores[j] = s * scale;
  }
}

// acc[d] = sum_j w[j] * v_j[d]. 32 dimensions per pass over the keys keeps four accumulator
// chains in registers (the sum over keys never goes through memory).
template <typename T>
WM_FORCE_INLINE void weighted_sum(const float* WM_RESTRICT w, const T* v_base, int64_t v_stride, int64_t n_keys,
                                  int32_t D, float* WM_RESTRICT acc) {
  int32_t d = 0;
  for (; d + 4 * kLanes <= D; d += 4 * kLanes) {
    Vec a0 = cpu::splat(0.0f), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t j = 0; j < n_keys; ++j) {
      const T* v = v_base + j * v_stride + d;
      const float wj = w[j];
      a0 += wj * load_lanes(v);
      a1 += wj * load_lanes(v + kLanes);
      a2 += wj * load_lanes(v + 2 * kLanes);
      a3 += wj * load_lanes(v + 3 * kLanes);
    }
    cpu::store(acc + d, a0);
    cpu::store(acc + d + kLanes, a1);
    cpu::store(acc + d + 2 * kLanes, a2);
    cpu::store(acc + d + 3 * kLanes, a3);
  }
  for (; d + kLanes <= D; d += kLanes) {
    Vec a = cpu::splat(0.0f);
    for (int64_t j = 0; j < n_keys; ++j) a += w[j] * load_lanes(v_base + j * v_stride + d);
    cpu::store(acc + d, a);
  }
  for (; d < D; ++d) {
    float a = 0.0f;
    for (int64_t j = 0; j < n_keys; ++j) a += w[j] * static_cast<float>(v_base[j * v_stride + d]);
    acc[d] = a;
  }
}

// Appends this step's rows of head h of batch row b to the caches, then attends for each of
// the Tq queries. `scratch`: round_up(Tmax, kLanes) + 2 * D floats.
template <typename T>
WM_FORCE_INLINE void attend_head(const KvAttnParams& p, int64_t b, int64_t h, float* scratch) {
  const int32_t D = p.head_dim;
  const T* q = static_cast<const T*>(p.q);
  const T* k_new = static_cast<const T*>(p.k_new);
  const T* v_new = static_cast<const T*>(p.v_new);
  T* k_cache = static_cast<T*>(p.k_cache);
  T* v_cache = static_cast<T*>(p.v_cache);
  T* out = static_cast<T*>(p.out);
  const int64_t len = p.seqlens[b];
  const int64_t padded_tmax = (static_cast<int64_t>(p.tmax) + kLanes - 1) / kLanes * kLanes;
  float* scores = scratch;
  float* qf = scratch + padded_tmax;
  float* acc = qf + D;

  for (int64_t i = 0; i < p.tq; ++i) {
    // memmove: a caller may legitimately pass k_new as a view of the very cache rows.
    std::memmove(k_cache + b * p.k_cache_stride.b + (len + i) * p.k_cache_stride.t + h * p.k_cache_stride.h,
                 k_new + b * p.k_new_stride.b + i * p.k_new_stride.t + h * p.k_new_stride.h, sizeof(T) * D);
    std::memmove(v_cache + b * p.v_cache_stride.b + (len + i) * p.v_cache_stride.t + h * p.v_cache_stride.h,
                 v_new + b * p.v_new_stride.b + i * p.v_new_stride.t + h * p.v_new_stride.h, sizeof(T) * D);
  }

  const T* k_base = k_cache + b * p.k_cache_stride.b + h * p.k_cache_stride.h;
  const T* v_base = v_cache + b * p.v_cache_stride.b + h * p.v_cache_stride.h;
  for (int64_t i = 0; i < p.tq; ++i) {
    const T* q_row = q + b * p.q_stride.b + i * p.q_stride.t + h * p.q_stride.h;
    for (int32_t d = 0; d < D; ++d) qf[d] = static_cast<float>(q_row[d]);

    const int64_t n_keys = len + i + 1;  // causal: cache positions [0, seqlens[b] + i]
    score_keys(qf, k_base, p.k_cache_stride.t, n_keys, D, p.scale, scores);
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n_keys; ++j) max_score = std::max(max_score, scores[j]);
    // exp over whole lane vectors; the lanes past n_keys are computed but never used.
    const Vec shift = cpu::splat(max_score);
    for (int64_t j = 0; j < n_keys; j += kLanes)
      cpu::store(scores + j, cpu::exp_nonpositive(cpu::load(scores + j) - shift));
    float denom = 0.0f;
    for (int64_t j = 0; j < n_keys; ++j) denom += scores[j];

    weighted_sum(scores, v_base, p.v_cache_stride.t, n_keys, D, acc);
    const float inv = 1.0f / denom;
    T* o = out + b * p.out_stride.b + i * p.out_stride.t + h * p.out_stride.h;
    for (int32_t d = 0; d < D; ++d) o[d] = static_cast<T>(acc[d] * inv);
  }
}

// One non-template entry per dtype: target_clones applies to plain functions.
WM_CPU_CLONES void attend_head_f32(const KvAttnParams& p, int64_t b, int64_t h, float* scratch) {
  attend_head<float>(p, b, h, scratch);
}
WM_CPU_CLONES void attend_head_f16(const KvAttnParams& p, int64_t b, int64_t h, float* scratch) {
  attend_head<c10::Half>(p, b, h, scratch);
}
WM_CPU_CLONES void attend_head_bf16(const KvAttnParams& p, int64_t b, int64_t h, float* scratch) {
  attend_head<c10::BFloat16>(p, b, h, scratch);
}

void kv_attention_cpu_kernel(const KvAttnParams& p) {
  void (*attend)(const KvAttnParams&, int64_t, int64_t, float*) =
      p.dtype == AttnDtype::kFloat32 ? attend_head_f32 : p.dtype == AttnDtype::kFloat16 ? attend_head_f16
                                                                                          : attend_head_bf16;
  const int64_t padded_tmax = (static_cast<int64_t>(p.tmax) + kLanes - 1) / kLanes * kLanes;
  at::parallel_for(0, static_cast<int64_t>(p.batch) * p.heads, 1, [&](int64_t begin, int64_t end) {
    // One buffer per task, reused for every (b, h) and query of it.
    std::vector<float> scratch(padded_tmax + 2 * static_cast<size_t>(p.head_dim));
    for (int64_t task = begin; task < end; ++task) attend(p, task / p.heads, task % p.heads, scratch.data());
  });
}

}  // namespace

at::Tensor kv_attention_cpu(const at::Tensor& q,        // [B, Tq, H, D]
                            at::Tensor& k_cache,        // [B, Tmax, H, D], written in place
                            at::Tensor& v_cache,        // [B, Tmax, H, D], written in place
                            const at::Tensor& k_new,    // [B, Tq, H, D]
                            const at::Tensor& v_new,    // [B, Tq, H, D]
                            const at::Tensor& seqlens,  // [B] int32
                            double scale) {
  const KvAttnSizes sz = check_kv_attention_args(q, k_cache, v_cache, k_new, v_new, seqlens, c10::DeviceType::CPU);
  const int64_t B = sz.batch, Tq = sz.tq, Tmax = sz.tmax, H = sz.heads, D = sz.head_dim;

  const at::Tensor lens = seqlens.contiguous();
  const int32_t* len_ptr = lens.data_ptr<int32_t>();
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK(len_ptr[b] >= 0, "kv_attention: seqlens[", b, "] = ", len_ptr[b], " is negative");
    TORCH_CHECK(len_ptr[b] + Tq <= Tmax, "kv_attention: cache overflow in batch row ", b, ": seqlens[", b,
                "] = ", len_ptr[b], " plus Tq = ", Tq, " new rows exceeds the cache length Tmax = ", Tmax);
  }

  at::Tensor out = at::empty({B, Tq, H, D}, q.options());
  if (out.numel() == 0) return out;
  const at::Tensor qc = last_dim_contiguous(q), kn = last_dim_contiguous(k_new), vn = last_dim_contiguous(v_new);

  kv_attention_cpu_kernel(make_kv_attn_params(sz, qc, k_cache, v_cache, kn, vn, lens, out, scale));
  return out;
}

}  // namespace whispermedia

TORCH_LIBRARY_IMPL(whispermedia, CPU, m) {
  m.impl("kv_attention", &whispermedia::kv_attention_cpu);
}

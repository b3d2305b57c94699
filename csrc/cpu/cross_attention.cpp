// Cross-attention of a decode step over the encoder's cached K/V, on the CPU:
//
//   whispermedia::cross_attention(q, k, v, scale) = softmax(scale * q @ k^T) @ v
//     q [A, H, G, D]: the G query rows of audio a (beams or samples of one window, times the
//                     new tokens of each), k, v [A, H, S, D]: that audio's K/V (S = 1500), all
//                     float32; out [A, H, G, D] float32, sums and softmax in float32.
//
// Why: PyTorch's SDPA and a plain matmul both treat the G rows as a small GEMM and read the K/V
// as if they were the cheap operand; a beam-search step (G = 5) spent 1.1 ms per layer there,
// 40% of the step. Here each task (a, h) goes over K once for the scores of all G rows and over
// V once for their outputs, in blocks of keys that stay in L1 while every row uses them, so the
// 768 KB of K/V per head come from memory once whatever G is.
//
// CPU only, like linear_f16w (csrc/cpu/linear_lowp.cpp): a GPU runs SDPA's flash kernels,
// which already read the K/V once. The schema is in csrc/ops.cpp, the fake kernel in
// whispermedia/ops/_fake.py, the reference (SDPA, also the fallback) in
// whispermedia/ops/reference.py, and whispermedia.ops.cross_attention decides when to call it.
#include "cpu/simd.h"  // first: see the note there on -Wpsabi

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/checks.h"
#include "common/macros.h"

namespace whispermedia {
namespace {

using cpu::kLanes;
using cpu::Vec;

constexpr int64_t kKeyBlock = 32;  // keys per block: 32 rows of K or V (8 KB at D = 64) stay in L1

struct CrossAttnParams {
  const float* q;  // [A, H, G, D] contiguous
  const float* k;  // [A, H, S, D] contiguous
  const float* v;  // [A, H, S, D] contiguous
  float* out;      // [A, H, G, D] contiguous
  int64_t tasks, G, S, D;
  float scale;
};

// scores[g * stride + j] = scale * q_g . k_j for the keys [j0, j1) and every row g. Two rows
// against four keys: eight independent accumulator chains, each K vector loaded once per pair.
WM_FORCE_INLINE void score_block(const float* WM_RESTRICT q, const float* WM_RESTRICT k, int64_t G, int64_t D,
                                 int64_t j0, int64_t j1, float scale, float* WM_RESTRICT scores, int64_t stride) {
  const int64_t d_vec = D / kLanes * kLanes;
  auto dot_tail = [&](const float* a, const float* b) {
    float s = 0.0f;
    for (int64_t d = d_vec; d < D; ++d) s += a[d] * b[d];
    return s;
  };
  for (int64_t g = 0; g < G; g += 2) {
    const bool pair = g + 1 < G;
    const float* q0 = q + g * D;
    const float* q1 = pair ? q0 + D : q0;
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4) {
      const float* k0 = k + j * D;
      const float *k1 = k0 + D, *k2 = k1 + D, *k3 = k2 + D;
      Vec a00 = cpu::splat(0.0f), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
      for (int64_t d = 0; d < d_vec; d += kLanes) {
        const Vec x0 = cpu::load(q0 + d), x1 = cpu::load(q1 + d);
        const Vec y0 = cpu::load(k0 + d), y1 = cpu::load(k1 + d), y2 = cpu::load(k2 + d), y3 = cpu::load(k3 + d);
        a00 += x0 * y0, a01 += x0 * y1, a02 += x0 * y2, a03 += x0 * y3;
        a10 += x1 * y0, a11 += x1 * y1, a12 += x1 * y2, a13 += x1 * y3;
      }
      float* s0 = scores + g * stride + j;
      s0[0] = (cpu::hsum(a00) + dot_tail(q0, k0)) * scale;
      s0[1] = (cpu::hsum(a01) + dot_tail(q0, k1)) * scale;
      s0[2] = (cpu::hsum(a02) + dot_tail(q0, k2)) * scale;
      s0[3] = (cpu::hsum(a03) + dot_tail(q0, k3)) * scale;
      if (pair) {
        float* s1 = s0 + stride;
        s1[0] = (cpu::hsum(a10) + dot_tail(q1, k0)) * scale;
        s1[1] = (cpu::hsum(a11) + dot_tail(q1, k1)) * scale;
        s1[2] = (cpu::hsum(a12) + dot_tail(q1, k2)) * scale;
        s1[3] = (cpu::hsum(a13) + dot_tail(q1, k3)) * scale;
      }
    }
    for (; j < j1; ++j) {
      const float* kj = k + j * D;
      for (int64_t r = 0; r < (pair ? 2 : 1); ++r) {
        const float* qr = r == 0 ? q0 : q1;
        Vec a = cpu::splat(0.0f);
        for (int64_t d = 0; d < d_vec; d += kLanes) a += cpu::load(qr + d) * cpu::load(kj + d);
        scores[(g + r) * stride + j] = (cpu::hsum(a) + dot_tail(qr, kj)) * scale;
      }
    }
  }
}

// acc[g * D + d] += sum_{j in [j0, j1)} w[g * stride + j] * v_j[d] for every row g: two rows
// at a time, 32 dimensions at a time in eight accumulator vectors, so each V vector loaded from
// L1 serves both rows.
WM_FORCE_INLINE void accumulate_block(const float* WM_RESTRICT w, int64_t stride, const float* WM_RESTRICT v,
                                      int64_t G, int64_t D, int64_t j0, int64_t j1, float* WM_RESTRICT acc) {
  for (int64_t g = 0; g < G; g += 2) {
    const bool pair = g + 1 < G;
    const float* w0 = w + g * stride;
    const float* w1 = pair ? w0 + stride : w0;
    float* c0 = acc + g * D;
    float* c1 = pair ? c0 + D : c0;
    int64_t d = 0;
    for (; d + 4 * kLanes <= D; d += 4 * kLanes) {
      Vec a0 = cpu::load(c0 + d), a1 = cpu::load(c0 + d + kLanes), a2 = cpu::load(c0 + d + 2 * kLanes),
          a3 = cpu::load(c0 + d + 3 * kLanes);
      Vec b0 = cpu::load(c1 + d), b1 = cpu::load(c1 + d + kLanes), b2 = cpu::load(c1 + d + 2 * kLanes),
          b3 = cpu::load(c1 + d + 3 * kLanes);
      for (int64_t j = j0; j < j1; ++j) {
        const float* vj = v + j * D + d;
        const Vec y0 = cpu::load(vj), y1 = cpu::load(vj + kLanes), y2 = cpu::load(vj + 2 * kLanes),
                  y3 = cpu::load(vj + 3 * kLanes);
        const float x0 = w0[j], x1 = w1[j];
        a0 += x0 * y0, a1 += x0 * y1, a2 += x0 * y2, a3 += x0 * y3;
        b0 += x1 * y0, b1 += x1 * y1, b2 += x1 * y2, b3 += x1 * y3;
      }
      cpu::store(c0 + d, a0);
      cpu::store(c0 + d + kLanes, a1);
      cpu::store(c0 + d + 2 * kLanes, a2);
      cpu::store(c0 + d + 3 * kLanes, a3);
      if (pair) {  // for a lone last row c1 == c0: its copy must not overwrite the sums just stored
        cpu::store(c1 + d, b0);
        cpu::store(c1 + d + kLanes, b1);
        cpu::store(c1 + d + 2 * kLanes, b2);
        cpu::store(c1 + d + 3 * kLanes, b3);
      }
    }
    for (int64_t r = 0; r < (pair ? 2 : 1); ++r) {
      const float* wr = r == 0 ? w0 : w1;
      float* cr = r == 0 ? c0 : c1;
      for (int64_t dd = d; dd + kLanes <= D; dd += kLanes) {
        Vec x = cpu::load(cr + dd);
        for (int64_t j = j0; j < j1; ++j) x += wr[j] * cpu::load(v + j * D + dd);
        cpu::store(cr + dd, x);
      }
      for (int64_t dd = D / kLanes * kLanes; dd < D; ++dd) {
        float x = cr[dd];
        for (int64_t j = j0; j < j1; ++j) x += wr[j] * v[j * D + dd];
        cr[dd] = x;
      }
    }
  }
}

// One (audio, head): scores of all rows (pass over K), softmax per row, outputs (pass over V).
// `scratch`: G * (round_up(S, kLanes) + D + 1) floats.
WM_CPU_CLONES void attend_task(const CrossAttnParams& p, int64_t task, float* scratch) {
  const int64_t G = p.G, S = p.S, D = p.D;
  const int64_t stride = (S + kLanes - 1) / kLanes * kLanes;
  const float* q = p.q + task * G * D;
  const float* k = p.k + task * S * D;
  const float* v = p.v + task * S * D;
  float* scores = scratch;
  float* acc = scratch + G * stride;
  float* inv_denom = acc + G * D;

  for (int64_t j = 0; j < S; j += kKeyBlock) {
    score_block(q, k, G, D, j, std::min(j + kKeyBlock, S), p.scale, scores, stride);
  }

  for (int64_t g = 0; g < G; ++g) {
    float* sg = scores + g * stride;
    float max_score = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < S; ++j) max_score = std::max(max_score, sg[j]);
    const Vec shift = cpu::splat(max_score);
    // whole lane vectors: the lanes past S are computed but never read
    for (int64_t j = 0; j < S; j += kLanes) cpu::store(sg + j, cpu::exp_nonpositive(cpu::load(sg + j) - shift));
    float denom = 0.0f;
    for (int64_t j = 0; j < S; ++j) denom += sg[j];
    inv_denom[g] = 1.0f / denom;
  }

  std::fill(acc, acc + G * D, 0.0f);
  for (int64_t j = 0; j < S; j += kKeyBlock) {
    accumulate_block(scores, stride, v, G, D, j, std::min(j + kKeyBlock, S), acc);
  }
  float* out = p.out + task * G * D;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t d = 0; d < D; ++d) out[g * D + d] = acc[g * D + d] * inv_denom[g];
}

void check_args(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  WM_CHECK_DIM(q, 4);
  WM_CHECK_DIM(k, 4);
  WM_CHECK_DIM(v, 4);
  WM_CHECK_DTYPE(q, at::kFloat);
  WM_CHECK_DTYPE(k, at::kFloat);
  WM_CHECK_DTYPE(v, at::kFloat);
  WM_CHECK_SAME_DEVICE(q, k);
  WM_CHECK_SAME_DEVICE(q, v);
  TORCH_CHECK(k.sizes() == v.sizes(), "k and v must have the same shape, got ", k.sizes(), " and ", v.sizes());
  TORCH_CHECK(q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3),
              "q [A, H, G, D] and k [A, H, S, D] disagree: ", q.sizes(), " and ", k.sizes());
  TORCH_CHECK(k.size(2) > 0, "k and v must hold at least one position");
}

at::Tensor cross_attention_cpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  check_args(q, k, v);
  const at::Tensor qc = q.contiguous(), kc = k.contiguous(), vc = v.contiguous();
  at::Tensor out = at::empty(q.sizes(), q.options().memory_format(at::MemoryFormat::Contiguous));
  if (out.numel() == 0) return out;
  CrossAttnParams p;
  p.q = qc.data_ptr<float>();
  p.k = kc.data_ptr<float>();
  p.v = vc.data_ptr<float>();
  p.out = out.data_ptr<float>();
  p.tasks = q.size(0) * q.size(1);
  p.G = q.size(2);
  p.S = k.size(2);
  p.D = q.size(3);
  p.scale = static_cast<float>(scale);
  const int64_t stride = (p.S + kLanes - 1) / kLanes * kLanes;
  at::parallel_for(0, p.tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(p.G * (stride + p.D + 1)));  // one per task range
    for (int64_t task = begin; task < end; ++task) attend_task(p, task, scratch.data());
  });
  return out;
}

}  // namespace
}  // namespace whispermedia

TORCH_LIBRARY_IMPL(whispermedia, CPU, m) { m.impl("cross_attention", &whispermedia::cross_attention_cpu); }

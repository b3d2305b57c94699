// Few-row linears against compactly stored weights, in float32: the CPU decode step.
//
//   whispermedia::linear_f16w(x, weight, bias):        y = x @ weight.T + bias, weight float16
//   whispermedia::linear_i8w(x, weight, scale, bias):  y = (x @ weight.T) * scale + bias, weight
//                                                       int8 with one float32 scale per output row
//
// Why: a decode step multiplies one row (or one per beam) by every decoder weight and by the
// 51865 x 512 token embedding; that is a stream through memory, and the bytes are the cost.
// Whisper's released weights are float16, so keeping them as float16 and widening each value to
// float32 in registers computes exactly what a float32 matmul with the same weights computes
// (float16 -> float32 is exact), up to the order of the float32 additions, from half the bytes.
// int8 (compute type "int8") halves the bytes again and does round the weights. Either way x, the
// products and the sums stay float32.
//
// CPU only (a GPU runs the model in float16 or bfloat16). The schemas are in csrc/ops.cpp, the
// fake kernels in whispermedia/ops/_fake.py, the references (F.linear on the widened weight, also
// the fallback) in whispermedia/ops/reference.py, and whispermedia.ops.linear decides when to call
// these kernels (few rows of float32 activations).
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Half.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/checks.h"
#include "common/macros.h"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && !defined(WM_NO_CPU_CLONES)
#include <immintrin.h>
#define WM_LINEAR_LOWP_X86 1
#endif

namespace whispermedia {
namespace {

template <typename W>
struct LinearParams {
  const float* x;       // [M, K], rows x_stride apart
  const W* w;           // [N, K] (float16 bits or int8), rows w_stride apart
  const float* scale;   // [N] per-row scale (int8) or null
  const float* bias;    // [N] or null
  float* y;             // [M, N], rows y_stride apart
  int64_t M, N, K, x_stride, w_stride, y_stride;
};

inline float widen(uint16_t h) { return static_cast<float>(c10::Half(h, c10::Half::from_bits())); }
inline float widen(int8_t q) { return static_cast<float>(q); }

template <typename W>
inline float finish(const LinearParams<W>& p, float sum, int64_t n) {
  if (p.scale) sum *= p.scale[n];
  return p.bias ? sum + p.bias[n] : sum;
}

// Portable path: scalar float32 accumulation (ARM, x86 without AVX2/F16C, WM_NO_CPU_CLONES builds).
template <typename W>
void rows_portable(const LinearParams<W>& p, int64_t n0, int64_t n1) {
  std::vector<float> wf(static_cast<size_t>(p.K));
  for (int64_t n = n0; n < n1; ++n) {
    const W* w = p.w + n * p.w_stride;
    for (int64_t k = 0; k < p.K; ++k) wf[k] = widen(w[k]);
    for (int64_t m = 0; m < p.M; ++m) {
      const float* x = p.x + m * p.x_stride;
      float s = 0.0f;
      for (int64_t k = 0; k < p.K; ++k) s += x[k] * wf[k];
      p.y[m * p.y_stride + n] = finish(p, s, n);
    }
  }
}

#ifdef WM_LINEAR_LOWP_X86
#define WM_AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

WM_AVX2_TARGET WM_FORCE_INLINE float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Eight weights widened to float32.
WM_AVX2_TARGET WM_FORCE_INLINE __m256 load8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
WM_AVX2_TARGET WM_FORCE_INLINE __m256 load8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
WM_AVX2_TARGET WM_FORCE_INLINE float widen_avx2(uint16_t h) { return _cvtsh_ss(h); }
WM_AVX2_TARGET WM_FORCE_INLINE float widen_avx2(int8_t q) { return static_cast<float>(q); }

// MB rows of x against NB rows of W: MB * NB independent accumulator chains (eight lanes
// each), every widened W vector used MB times. Each output's float32 sum runs in the same
// order whatever MB and NB are, so a row's result does not depend on the batch around it.
// While it works, the block asks for the cache lines of the rows PF ahead, into L2 (hint T1):
// one core's hardware prefetcher alone leaves memory bandwidth unused, and prefetches into L1
// (T0) hold the core's few L1 miss buffers for the whole trip to memory. Measured on the
// 51865 x 512 projection, one thread: no hint ~9 GB/s, T0 11 GB/s, T1 25 GB/s (a plain sum
// over the same bytes: 25 GB/s).
template <int MB, int NB, int PF, typename W>
WM_AVX2_TARGET WM_FORCE_INLINE void block(const LinearParams<W>& p, int64_t m, int64_t n, int64_t n_end) {
  constexpr int64_t kLineElems = 64 / sizeof(W);
  const int64_t K = p.K, k8 = K / 8 * 8;
  const float* x[MB];
  const W* w[NB];
  WM_UNROLL for (int i = 0; i < MB; ++i) x[i] = p.x + (m + i) * p.x_stride;
  WM_UNROLL for (int j = 0; j < NB; ++j) w[j] = p.w + (n + j) * p.w_stride;
  const bool prefetch = n + NB + PF <= n_end;
  __m256 acc[MB][NB];
  WM_UNROLL for (int i = 0; i < MB; ++i) WM_UNROLL for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t k = 0; k < k8; k += 8) {
    if (prefetch && (k & (kLineElems - 1)) == 0) {  // one 64-byte line of each row PF rows ahead
      WM_UNROLL for (int j = 0; j < NB; ++j) _mm_prefetch(reinterpret_cast<const char*>(w[j] + PF * p.w_stride + k),
                                                          _MM_HINT_T1);
    }
    __m256 wv[NB];
    WM_UNROLL for (int j = 0; j < NB; ++j) wv[j] = load8(w[j] + k);
    WM_UNROLL for (int i = 0; i < MB; ++i) {
      const __m256 xv = _mm256_loadu_ps(x[i] + k);
      WM_UNROLL for (int j = 0; j < NB; ++j) acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  WM_UNROLL for (int i = 0; i < MB; ++i) WM_UNROLL for (int j = 0; j < NB; ++j) {
    float s = hsum8(acc[i][j]);
    for (int64_t k = k8; k < K; ++k) s += x[i][k] * widen_avx2(w[j][k]);
    p.y[(m + i) * p.y_stride + n + j] = finish(p, s, n + j);
  }
}

template <typename W>
WM_AVX2_TARGET void rows_avx2(const LinearParams<W>& p, int64_t n0, int64_t n1) {
  int64_t n = n0;
  if (p.M == 1) {  // one row (greedy): eight W rows at a time, sixteen rows ahead
    for (; n + 8 <= n1; n += 8) block<1, 8, 16>(p, 0, n, n1);
  } else {  // beams, samples, prompts: pairs of x rows against four W rows (14 of 16 registers)
    for (; n + 4 <= n1; n += 4) {
      int64_t m = 0;
      for (; m + 2 <= p.M; m += 2) block<2, 4, 16>(p, m, n, n1);
      if (m < p.M) block<1, 4, 16>(p, m, n, n1);
    }
  }
  for (; n < n1; ++n)
    for (int64_t m = 0; m < p.M; ++m) block<1, 1, 0>(p, m, n, n1);
}

bool have_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return yes;
}

// Several rows (beams, samples, the rows of a batched step) are bound by the FMAs, not by the
// weights' bytes: with AVX-512 a register holds the eight-lane accumulators of two outputs side
// by side (lanes 0-7: W row n, 8-15: W row n + 1; x's eight values broadcast to both halves),
// so each instruction does the work of two AVX2 ones, and 32 registers take a 4 x 8 block.
// Every lane does exactly the FMAs the AVX2 block does for that output, in the same order, and
// the halves are summed by the same hsum8: the results are the AVX2 path's, bit for bit
// (tested), so a row's result still does not depend on the rows beside it or on the CPU's
// AVX-512. WM_LINEAR_ISA=avx2 in the environment keeps to the AVX2 path (tests, benchmarks).
#define WM_AVX512_TARGET __attribute__((target("avx512f,avx512dq,avx2,fma,f16c")))
// GCC 12's AVX-512 headers start casts and extracts from an "undefined" register, which
// -Wmaybe-uninitialized reports at every use (a known false positive; the lanes are all written)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

WM_AVX512_TARGET WM_FORCE_INLINE __m512 load8x2(const uint16_t* a, const uint16_t* b) {
  const __m256i h = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
                                            _mm_loadu_si128(reinterpret_cast<const __m128i*>(b)), 1);
  return _mm512_cvtph_ps(h);
}
WM_AVX512_TARGET WM_FORCE_INLINE __m512 load8x2(const int8_t* a, const int8_t* b) {
  const __m128i q = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)),
                                       _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)));
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
}

// MB rows of x against 2 * NP rows of W (see above); prefetching as block().
template <int MB, int NP, int PF, typename W>
WM_AVX512_TARGET WM_FORCE_INLINE void block512(const LinearParams<W>& p, int64_t m, int64_t n, int64_t n_end) {
  constexpr int64_t kLineElems = 64 / sizeof(W);
  const int64_t K = p.K, k8 = K / 8 * 8;
  const float* x[MB];
  const W* w[2 * NP];
  WM_UNROLL for (int i = 0; i < MB; ++i) x[i] = p.x + (m + i) * p.x_stride;
  WM_UNROLL for (int j = 0; j < 2 * NP; ++j) w[j] = p.w + (n + j) * p.w_stride;
  const bool prefetch = n + 2 * NP + PF <= n_end;
  __m512 acc[MB][NP];
  WM_UNROLL for (int i = 0; i < MB; ++i) WM_UNROLL for (int j = 0; j < NP; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t k = 0; k < k8; k += 8) {
    if (prefetch && (k & (kLineElems - 1)) == 0) {
      WM_UNROLL for (int j = 0; j < 2 * NP; ++j) _mm_prefetch(reinterpret_cast<const char*>(w[j] + PF * p.w_stride + k),
                                                              _MM_HINT_T1);
    }
    __m512 wv[NP];
    WM_UNROLL for (int j = 0; j < NP; ++j) wv[j] = load8x2(w[2 * j] + k, w[2 * j + 1] + k);
    WM_UNROLL for (int i = 0; i < MB; ++i) {
      const __m512 xv = _mm512_broadcast_f32x8(_mm256_loadu_ps(x[i] + k));
      WM_UNROLL for (int j = 0; j < NP; ++j) acc[i][j] = _mm512_fmadd_ps(xv, wv[j], acc[i][j]);
    }
  }
  WM_UNROLL for (int i = 0; i < MB; ++i) WM_UNROLL for (int j = 0; j < NP; ++j) {
    const __m256 halves[2] = {_mm512_castps512_ps256(acc[i][j]), _mm512_extractf32x8_ps(acc[i][j], 1)};
    WM_UNROLL for (int h = 0; h < 2; ++h) {
      const W* wr = w[2 * j + h];
      float s = hsum8(halves[h]);
      for (int64_t k = k8; k < K; ++k) s += x[i][k] * widen_avx2(wr[k]);
      p.y[(m + i) * p.y_stride + n + 2 * j + h] = finish(p, s, n + 2 * j + h);
    }
  }
}

template <typename W>
WM_AVX512_TARGET void rows_avx512(const LinearParams<W>& p, int64_t n0, int64_t n1) {
  if (p.M == 1) {  // one row is bound by the weights' bytes: the AVX2 path streams them as fast
    rows_avx2(p, n0, n1);
    return;
  }
  // W in tiles of about 256 KB (they stay in L2), and within a tile x rows outermost: a block
  // of eight x rows (16 KB at K = 512) stays in L1 while the tile's W rows go past it, instead
  // of every x row being read again for every four W rows; W still comes from memory once
  const int64_t n4 = n0 + (n1 - n0) / 4 * 4;
  const int64_t tile = std::max<int64_t>(4, (int64_t{1} << 18) / std::max<int64_t>(1, p.K * int64_t(sizeof(W))) / 4 * 4);
  for (int64_t t0 = n0; t0 < n4; t0 += tile) {
    const int64_t t1 = std::min(t0 + tile, n4);
    int64_t m = 0;
    for (; m + 8 <= p.M; m += 8)
      for (int64_t n = t0; n < t1; n += 4) block512<8, 2, 16>(p, m, n, n4);
    for (; m + 4 <= p.M; m += 4)
      for (int64_t n = t0; n < t1; n += 4) block512<4, 2, 16>(p, m, n, n4);
    for (; m + 2 <= p.M; m += 2)
      for (int64_t n = t0; n < t1; n += 4) block512<2, 2, 16>(p, m, n, n4);
    if (m < p.M)
      for (int64_t n = t0; n < t1; n += 4) block512<1, 2, 16>(p, m, n, n4);
  }
  rows_avx2(p, n4, n1);  // the last W rows (fewer than four): the AVX2 blocks, the same sums
}

#pragma GCC diagnostic pop

bool have_avx512() {
  static const bool yes = [] {
    const char* isa = std::getenv("WM_LINEAR_ISA");
    if (isa != nullptr && std::string(isa) == "avx2") return false;
    return have_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
  }();
  return yes;
}
#endif

template <typename W>
void run_kernel(const LinearParams<W>& p) {
  void (*rows)(const LinearParams<W>&, int64_t, int64_t) = rows_portable<W>;
#ifdef WM_LINEAR_LOWP_X86
  if (have_avx512()) {
    rows = rows_avx512<W>;
  } else if (have_avx2()) {
    rows = rows_avx2<W>;
  }
#endif
  // At least ~64 KiB of weights per task: below that a thread costs more than it saves.
  const int64_t row_bytes = std::max<int64_t>(static_cast<int64_t>(sizeof(W)) * p.K, 1);
  const int64_t grain = std::max<int64_t>(8, ((int64_t{1} << 16) / row_bytes + 7) / 8 * 8);
  at::parallel_for(0, p.N, grain, [&](int64_t begin, int64_t end) { rows(p, begin, end); });
}

std::vector<int64_t> output_shape(const at::Tensor& x, const at::Tensor& weight) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = weight.size(0);
  return shape;
}

void check_args(const at::Tensor& x, const at::Tensor& weight, at::ScalarType weight_dtype,
                const c10::optional<at::Tensor>& scale, const c10::optional<at::Tensor>& bias) {
  TORCH_CHECK(x.dim() >= 1, "x must have at least one dimension");
  WM_CHECK_DIM(weight, 2);
  WM_CHECK_DTYPE(x, at::kFloat);
  WM_CHECK_DTYPE(weight, weight_dtype);
  TORCH_CHECK(x.size(-1) == weight.size(1), "x has ", x.size(-1), " features, weight expects ", weight.size(1));
  WM_CHECK_SAME_DEVICE(x, weight);
  for (const c10::optional<at::Tensor>* t : {&scale, &bias}) {
    if (!t->has_value()) continue;
    const at::Tensor& v = **t;
    TORCH_CHECK(v.scalar_type() == at::kFloat, t == &scale ? "scale" : "bias", " must be Float, got ",
                v.scalar_type());
    TORCH_CHECK(v.dim() == 1 && v.size(0) == weight.size(0), t == &scale ? "scale" : "bias", " must have shape (",
                weight.size(0), "), got ", v.sizes());
    WM_CHECK_SAME_DEVICE(x, v);
  }
}

template <typename W>
at::Tensor run(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& scale,
               const c10::optional<at::Tensor>& bias) {
  const at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  const at::Tensor sc = scale.has_value() ? scale->contiguous() : at::Tensor();
  const at::Tensor bc = bias.has_value() ? bias->contiguous() : at::Tensor();
  at::Tensor y = at::empty(output_shape(x, weight), x.options());
  const int64_t K = x.size(-1), N = weight.size(0), M = K == 0 ? 0 : xc.numel() / K;
  if (y.numel() == 0) return y;
  if (K == 0) return bias.has_value() ? y.copy_(bc.expand_as(y)) : y.zero_();  // an empty sum
  LinearParams<W> p;
  p.x = xc.data_ptr<float>();
  p.w = static_cast<const W*>(wc.data_ptr());
  p.scale = scale.has_value() ? sc.data_ptr<float>() : nullptr;
  p.bias = bias.has_value() ? bc.data_ptr<float>() : nullptr;
  p.y = y.data_ptr<float>();
  p.M = M;
  p.N = N;
  p.K = K;
  p.x_stride = K;
  p.w_stride = K;
  p.y_stride = N;
  run_kernel(p);
  return y;
}

}  // namespace

at::Tensor linear_f16w_cpu(const at::Tensor& x, const at::Tensor& weight, const c10::optional<at::Tensor>& bias) {
  check_args(x, weight, at::kHalf, c10::nullopt, bias);
  return run<uint16_t>(x, weight, c10::nullopt, bias);
}

at::Tensor linear_i8w_cpu(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& scale,
                          const c10::optional<at::Tensor>& bias) {
  check_args(x, weight, at::kChar, scale, bias);
  return run<int8_t>(x, weight, scale, bias);
}

}  // namespace whispermedia

TORCH_LIBRARY_IMPL(whispermedia, CPU, m) {
  m.impl("linear_f16w", &whispermedia::linear_f16w_cpu);
  m.impl("linear_i8w", &whispermedia::linear_i8w_cpu);
}

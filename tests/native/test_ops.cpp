// Native tests of the compiled ops, called through the dispatcher exactly as torch.ops does,
// against direct double-precision evaluations of the contracts (docs/ops.md).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

#include "harness.h"

namespace {

constexpr double kPi = 3.14159265358979323846;

at::Tensor log_mel(const at::Tensor& audio, const at::Tensor& filters, int64_t hop) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("whispermedia::log_mel_spectrogram", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, int64_t)>();
  return op.call(audio, filters, hop);
}

at::Tensor kv_attention(const at::Tensor& q, at::Tensor& k_cache, at::Tensor& v_cache, const at::Tensor& k_new,
                        const at::Tensor& v_new, const at::Tensor& seqlens, double scale) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("whispermedia::kv_attention", "")
                             .typed<at::Tensor(const at::Tensor&, at::Tensor&, at::Tensor&, const at::Tensor&,
                                               const at::Tensor&, const at::Tensor&, double)>();
  return op.call(q, k_cache, v_cache, k_new, v_new, seqlens, scale);
}

using OptionalTensor = std::optional<at::Tensor>;

at::Tensor linear_f16w(const at::Tensor& x, const at::Tensor& weight, const OptionalTensor& bias) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("whispermedia::linear_f16w", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const OptionalTensor&)>();
  return op.call(x, weight, bias);
}

at::Tensor linear_i8w(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& scale,
                      const OptionalTensor& bias) {
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("whispermedia::linear_i8w", "")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptionalTensor&)>();
  return op.call(x, weight, scale, bias);
}

at::Tensor cross_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("whispermedia::cross_attention", "")
                             .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double)>();
  return op.call(q, k, v, scale);
}

// Deterministic noise in [-1, 1), independent of torch's generators.
struct Lcg {
  uint64_t state;
  double next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 52) - 1.0;
  }
};

// Two tones plus a little noise (so that no bin sits at the fp32 noise floor).
std::vector<float> tones(int64_t n, double amplitude, uint64_t seed) {
  Lcg rng{seed};
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / 16000.0;
    x[i] = static_cast<float>(amplitude * (0.6 * std::sin(2 * kPi * 440.0 * t) + 0.3 * std::sin(2 * kPi * 2750.0 * t) +
                                           1e-3 * rng.next()));
  }
  return x;
}

// Unit-peak triangles spread evenly over the bins: any sparse bank must work, not only
// Whisper's Slaney bank (which is built in Python).
at::Tensor triangle_bank(int64_t n_mels, int64_t n_bins) {
  at::Tensor f = at::zeros({n_mels, n_bins}, at::kFloat);
  auto a = f.accessor<float, 2>();
  const double step = static_cast<double>(n_bins - 1) / (n_mels + 1);
  for (int64_t m = 0; m < n_mels; ++m) {
    const double lo = m * step, mid = (m + 1) * step, hi = (m + 2) * step;
    for (int64_t k = 0; k < n_bins; ++k) {
      const double w = k <= mid ? (k - lo) / (mid - lo) : (hi - k) / (hi - mid);
      a[m][k] = static_cast<float>(std::max(0.0, w));
    }
  }
  return f;
}

// The contract evaluated directly in double precision, with an O(n_fft^2) DFT per frame.
// Returns [n_mels][n_frames] row-major for one batch row.
std::vector<double> direct_log_mel(const std::vector<float>& x, const at::Tensor& filters, int64_t hop) {
  const int64_t n = static_cast<int64_t>(x.size()), n_bins = filters.size(1), n_mels = filters.size(0);
  const int64_t n_fft = 2 * (n_bins - 1), half = n_fft / 2, n_frames = n / hop;
  auto f = filters.accessor<float, 2>();
  std::vector<double> out(n_mels * n_frames), frame(n_fft), power(n_bins);
  for (int64_t t = 0; t < n_frames; ++t) {
    for (int64_t i = 0; i < n_fft; ++i) {
      int64_t idx = t * hop - half + i;
      if (idx < 0) idx = -idx;
      if (idx >= n) idx = 2 * (n - 1) - idx;
      frame[i] = x[idx] * (0.5 - 0.5 * std::cos(2 * kPi * i / n_fft));
    }
    for (int64_t k = 0; k < n_bins; ++k) {
      double re = 0, im = 0;
      for (int64_t i = 0; i < n_fft; ++i) {
        const double angle = 2 * kPi * static_cast<double>((i * k) % n_fft) / n_fft;
        re += frame[i] * std::cos(angle);
        im -= frame[i] * std::sin(angle);
      }
      power[k] = re * re + im * im;
    }
    for (int64_t m = 0; m < n_mels; ++m) {
      double mel = 0;
      for (int64_t k = 0; k < n_bins; ++k) mel += f[m][k] * power[k];
      out[m * n_frames + t] = std::log10(std::max(mel, 1e-10));
    }
  }
  const double floor = *std::max_element(out.begin(), out.end()) - 8.0;
  for (double& v : out) v = (std::max(v, floor) + 4.0) / 4.0;
  return out;
}

at::Tensor as_tensor(const std::vector<float>& x) {
  return at::from_blob(const_cast<float*>(x.data()), {static_cast<int64_t>(x.size())}, at::kFloat).clone();
}

void expect_matches_direct(const at::Tensor& got, const std::vector<double>& want, double max_tol, double mean_tol) {
  const at::Tensor g = got.contiguous();
  const float* p = g.data_ptr<float>();
  WM_EXPECT(static_cast<size_t>(g.numel()) == want.size());
  double max_err = 0, sum_err = 0;
  for (size_t i = 0; i < want.size() && i < static_cast<size_t>(g.numel()); ++i) {
    const double e = std::abs(p[i] - want[i]);
    max_err = std::max(max_err, e);
    sum_err += e;
  }
  WM_EXPECT_NEAR(max_err, 0.0, max_tol);
  WM_EXPECT_NEAR(sum_err / std::max<size_t>(1, want.size()), 0.0, mean_tol);
}

WM_TEST(log_mel_matches_direct_dft_whisper_sizes) {
  const auto x = tones(16000 + 123, 0.5, 1);
  const at::Tensor filters = triangle_bank(40, 201);  // n_fft = 400
  const at::Tensor out = log_mel(as_tensor(x), filters, 160);
  WM_EXPECT(out.dim() == 2 && out.size(0) == 40 && out.size(1) == (16000 + 123) / 160);
  expect_matches_direct(out, direct_log_mel(x, filters, 160), 1e-4, 1e-5);
}

WM_TEST(log_mel_other_radices) {
  // n_fft / 2 = 12 (radix 4 * 3), 77 (generic radix 7 and 11), 100 (4 * 5 * 5)
  for (const auto& [n_bins, hop] : std::vector<std::pair<int64_t, int64_t>>{{13, 7}, {78, 30}, {101, 64}}) {
    const auto x = tones(2000 + n_bins, 0.25, static_cast<uint64_t>(n_bins));
    const at::Tensor filters = triangle_bank(8, n_bins);
    expect_matches_direct(log_mel(as_tensor(x), filters, hop), direct_log_mel(x, filters, hop), 1e-4, 1e-5);
  }
}

WM_TEST(log_mel_clamps_each_batch_row_with_its_own_max) {
  const auto loud = tones(4000, 0.5, 2), quiet = tones(4000, 0.001, 3);
  const at::Tensor filters = triangle_bank(16, 201);
  const at::Tensor batch = at::stack({as_tensor(loud), as_tensor(quiet)});
  const at::Tensor out = log_mel(batch, filters, 160);
  WM_EXPECT(out.dim() == 3 && out.size(0) == 2);
  expect_matches_direct(out[0], direct_log_mel(loud, filters, 160), 1e-4, 1e-5);
  expect_matches_direct(out[1], direct_log_mel(quiet, filters, 160), 1e-4, 1e-5);
  WM_EXPECT(at::equal(out[1], log_mel(as_tensor(quiet), filters, 160)));
}

WM_TEST(log_mel_shortest_input_and_too_short_error) {
  const at::Tensor filters = triangle_bank(8, 201);
  const auto x = tones(201, 0.5, 4);  // n_fft / 2 + 1: the shortest that can be reflect-padded
  expect_matches_direct(log_mel(as_tensor(x), filters, 160), direct_log_mel(x, filters, 160), 1e-4, 1e-5);
  WM_EXPECT_THROWS(log_mel(at::zeros({200}), filters, 160), "audio of 200 samples is too short");
  WM_EXPECT_THROWS(log_mel(at::zeros({1000}, at::kDouble), filters, 160), "audio must be Float");
}

// softmax(scale q.k) v over the causal prefix, in double.
void naive_attention(const at::Tensor& q, const at::Tensor& k_cache, const at::Tensor& v_cache,
                     const std::vector<int32_t>& lens, double scale, at::Tensor& out) {
  const int64_t B = q.size(0), Tq = q.size(1), H = q.size(2), D = q.size(3);
  auto qa = q.accessor<float, 4>();
  auto ka = k_cache.accessor<float, 4>();
  auto va = v_cache.accessor<float, 4>();
  auto oa = out.accessor<float, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t n_keys = lens[b] + i + 1;
        std::vector<double> s(n_keys);
        double mx = -1e300, denom = 0;
        for (int64_t j = 0; j < n_keys; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(qa[b][i][h][d]) * ka[b][j][h][d];
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        for (double& v : s) denom += (v = std::exp(v - mx));
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < n_keys; ++j) acc += s[j] * va[b][j][h][d];
          oa[b][i][h][d] = static_cast<float>(acc / denom);
        }
      }
}

WM_TEST(kv_attention_matches_naive_loop_and_writes_only_its_rows) {
  at::manual_seed(0);
  for (const int64_t D : {8, 13, 64}) {
    const int64_t B = 3, Tq = 2, H = 2, Tmax = 11;
    const std::vector<int32_t> lens = {0, 4, 9};
    const at::Tensor q = at::randn({B, Tq, H, D}), k_new = at::randn({B, Tq, H, D}), v_new = at::randn({B, Tq, H, D});
    at::Tensor k_cache = at::randn({B, Tmax, H, D}), v_cache = at::randn({B, Tmax, H, D});
    at::Tensor k_want = k_cache.clone(), v_want = v_cache.clone();
    for (int64_t b = 0; b < B; ++b) {
      k_want[b].narrow(0, lens[b], Tq).copy_(k_new[b]);
      v_want[b].narrow(0, lens[b], Tq).copy_(v_new[b]);
    }
    at::Tensor want = at::empty({B, Tq, H, D});
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    naive_attention(q, k_want, v_want, lens, scale, want);

    const at::Tensor seqlens = at::tensor(lens, at::kInt);
    const at::Tensor got = kv_attention(q, k_cache, v_cache, k_new, v_new, seqlens, scale);
    WM_EXPECT(got.sizes() == q.sizes());
    WM_EXPECT_NEAR((got - want).abs().max().item<double>(), 0.0, 1e-5);
    WM_EXPECT(at::equal(k_cache, k_want));  // written rows, and every other row untouched
    WM_EXPECT(at::equal(v_cache, v_want));
    WM_EXPECT(at::equal(seqlens, at::tensor(lens, at::kInt)));  // not advanced by the op
  }
}

WM_TEST(kv_attention_half_precision_accumulates_in_fp32) {
  at::manual_seed(1);
  const int64_t B = 2, Tq = 1, H = 3, D = 32, Tmax = 40;
  const std::vector<int32_t> lens = {17, 38};
  const at::Tensor q = at::randn({B, Tq, H, D}), k_new = at::randn({B, Tq, H, D}), v_new = at::randn({B, Tq, H, D});
  const at::Tensor k0 = at::randn({B, Tmax, H, D}), v0 = at::randn({B, Tmax, H, D});
  for (const auto dtype : {at::kHalf, at::kBFloat16}) {
    // The fp32 reference sees the same rounded inputs, so only the op's own error remains.
    const auto low = [&](const at::Tensor& t) { return t.to(dtype); };
    at::Tensor kc = low(k0), vc = low(v0);
    at::Tensor k_want = kc.to(at::kFloat), v_want = vc.to(at::kFloat);
    for (int64_t b = 0; b < B; ++b) {
      k_want[b].narrow(0, lens[b], Tq).copy_(low(k_new)[b]);
      v_want[b].narrow(0, lens[b], Tq).copy_(low(v_new)[b]);
    }
    at::Tensor want = at::empty({B, Tq, H, D});
    naive_attention(low(q).to(at::kFloat), k_want, v_want, lens, 0.125, want);
    const at::Tensor got = kv_attention(low(q), kc, vc, low(k_new), low(v_new), at::tensor(lens, at::kInt), 0.125);
    WM_EXPECT(got.scalar_type() == dtype);
    // One final rounding to the low-precision type: half an ulp at |x| < 2.
    const double ulp = dtype == at::kHalf ? std::ldexp(1.0, -10) : std::ldexp(1.0, -7);
    WM_EXPECT_NEAR((got.to(at::kFloat) - want).abs().max().item<double>(), 0.0, ulp);
    WM_EXPECT(at::equal(kc.to(at::kFloat), k_want));
  }
}

WM_TEST(kv_attention_rejects_cache_overflow) {
  const int64_t B = 2, Tq = 3, H = 1, D = 4, Tmax = 8;
  const at::Tensor q = at::randn({B, Tq, H, D});
  at::Tensor kc = at::zeros({B, Tmax, H, D}), vc = at::zeros({B, Tmax, H, D});
  const at::Tensor before = kc.clone();
  WM_EXPECT_THROWS(kv_attention(q, kc, vc, q, q, at::tensor(std::vector<int32_t>{5, 6}, at::kInt), 1.0),
                   "cache overflow in batch row 1: seqlens[1] = 6 plus Tq = 3");
  WM_EXPECT(at::equal(kc, before));  // nothing written when the call is rejected
  WM_EXPECT_THROWS(kv_attention(q, kc, vc, q, q, at::tensor(std::vector<int64_t>{0, 0}, at::kLong), 1.0),
                   "seqlens must be Int");
}

// y[m][n] = sum_k x[m][k] * w[n][k] * scale[n] + bias[n], in double.
at::Tensor naive_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& scale, const at::Tensor& bias) {
  const at::Tensor xd = x.to(at::kDouble), wd = w.to(at::kDouble);
  const int64_t M = x.size(0), N = w.size(0), K = x.size(1);
  at::Tensor y = at::empty({M, N}, at::kDouble);
  auto xa = xd.accessor<double, 2>();
  auto wa = wd.accessor<double, 2>();
  auto sa = scale.accessor<float, 1>();
  auto ba = bias.accessor<float, 1>();
  auto ya = y.accessor<double, 2>();
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += xa[m][k] * wa[n][k];
      ya[m][n] = acc * sa[n] + ba[n];
    }
  return y;
}

// The error bound of any float32 summation order of K products: 4 K eps max |x| |w| (scaled).
double float32_sum_tolerance(const at::Tensor& x, const at::Tensor& w, const at::Tensor& scale) {
  const at::Tensor w_abs = w.abs().to(at::kDouble) * scale.to(at::kDouble).unsqueeze(1);
  const double bound = x.abs().to(at::kDouble).matmul(w_abs.t()).max().item<double>();
  return 4.0 * static_cast<double>(x.size(1)) * std::ldexp(1.0, -23) * bound;
}

WM_TEST(linear_f16w_and_i8w_match_naive_loops) {
  at::manual_seed(2);
  using Size = std::tuple<int64_t, int64_t, int64_t>;
  for (const auto& [M, N, K] : std::vector<Size>{{1, 9, 515}, {3, 17, 64}, {2, 1, 1}}) {
    const at::Tensor x = at::randn({M, K}), bias = at::randn({N}), ones = at::ones({N});
    const at::Tensor w16 = (at::randn({N, K}) * 0.1).to(at::kHalf);
    const at::Tensor got16 = linear_f16w(x, w16, bias);
    WM_EXPECT(got16.scalar_type() == at::kFloat && got16.size(0) == M && got16.size(1) == N);
    WM_EXPECT_NEAR((got16.to(at::kDouble) - naive_linear(x, w16, ones, bias)).abs().max().item<double>(), 0.0,
                   float32_sum_tolerance(x, w16, ones) + 1e-6);
    const at::Tensor w8 = at::randint(-127, 128, {N, K}, at::kChar), scale = at::rand({N}) / 100;
    const at::Tensor got8 = linear_i8w(x, w8, scale, bias);
    WM_EXPECT_NEAR((got8.to(at::kDouble) - naive_linear(x, w8, scale, bias)).abs().max().item<double>(), 0.0,
                   float32_sum_tolerance(x, w8, scale) + 1e-6);
  }
  WM_EXPECT_THROWS(linear_f16w(at::randn({2, 8}), at::randn({4, 8}), std::nullopt), "weight must be Half");
}

WM_TEST(cross_attention_matches_naive_softmax) {
  at::manual_seed(3);
  for (const int64_t D : {8, 13, 64}) {
    const int64_t A = 2, H = 3, G = 5, S = 37;
    const at::Tensor q = at::randn({A, H, G, D}), k = at::randn({A, H, S, D}), v = at::randn({A, H, S, D});
    const double scale = 1.0 / std::sqrt(static_cast<double>(D));
    const at::Tensor qd = q.to(at::kDouble), kd = k.to(at::kDouble), vd = v.to(at::kDouble);
    const at::Tensor want = at::softmax(qd.matmul(kd.transpose(-1, -2)) * scale, -1).matmul(vd);
    const at::Tensor got = cross_attention(q, k, v, scale);
    WM_EXPECT(got.sizes() == q.sizes() && got.scalar_type() == at::kFloat);
    WM_EXPECT_NEAR((got.to(at::kDouble) - want).abs().max().item<double>(), 0.0, 1e-5);
  }
  WM_EXPECT_THROWS(cross_attention(at::randn({1, 2, 3, 8}), at::randn({1, 2, 0, 8}), at::randn({1, 2, 0, 8}), 1.0),
                   "at least one position");
}

}  // namespace

// Parameters of the fused cached-attention op, shared by the CPU and CUDA kernels (no ATen).
#pragma once

#include <cstdint>

namespace whispermedia {

enum class AttnDtype : int32_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Element strides of a [B, T, H, D] tensor whose last dimension is contiguous. The caches
// are written in place, so the kernels honour their strides instead of asking for a copy.
struct Bthd {
  int64_t b = 0;
  int64_t t = 0;
  int64_t h = 0;
};

struct KvAttnParams {
  const void* q = nullptr;       // [B, Tq, H, D]
  void* k_cache = nullptr;       // [B, Tmax, H, D], rows [seqlens[b], seqlens[b] + Tq) written
  void* v_cache = nullptr;       // [B, Tmax, H, D], likewise
  const void* k_new = nullptr;   // [B, Tq, H, D]
  const void* v_new = nullptr;   // [B, Tq, H, D]
  void* out = nullptr;           // [B, Tq, H, D] contiguous, dtype of q
  const int32_t* seqlens = nullptr;  // [B]: cache rows already filled, per batch row

  Bthd q_stride, k_cache_stride, v_cache_stride, k_new_stride, v_new_stride, out_stride;

  int32_t batch = 0;
  int32_t tq = 0;
  int32_t tmax = 0;
  int32_t heads = 0;
  int32_t head_dim = 0;
  float scale = 1.0f;            // multiplies q . k before the softmax
  AttnDtype dtype = AttnDtype::kFloat32;  // all six tensors share it

  // CUDA split-K scratch (unused on CPU): num_splits partial results per (b, i, h).
  float* partial_acc = nullptr;  // [B, Tq, H, num_splits, D]
  float* partial_max = nullptr;  // [B, Tq, H, num_splits]
  float* partial_sum = nullptr;  // [B, Tq, H, num_splits]
  int32_t num_splits = 1;
  int32_t split_len = 0;         // cache positions per split
};

}  // namespace whispermedia

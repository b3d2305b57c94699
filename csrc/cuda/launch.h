// Host-side entry points of the CUDA kernels. Only POD parameter structs, raw pointers and
// the CUDA runtime cross this boundary, so the .cu files compile with nvcc alone (no ATen,
// no torch headers) and bindings.cpp is the only CUDA file that sees ATen.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "common/attn_params.h"
#include "common/mel_params.h"

namespace whispermedia {

// Frames per block of the log-mel kernel for this n_fft (the unit of MelParams::tile_max),
// or 0 when n_fft does not fit in shared memory (n_fft > 3072).
int32_t log_mel_cuda_frames_per_block(int32_t n_fft);

// Enqueues the log-mel kernels on `stream`. Needs p.filter_bounds [n_mels, 2], p.tile_max
// [batch, n_tiles] and p.row_max [batch] allocated on the device; fills them and p.out.
cudaError_t launch_log_mel(const MelParams& p, cudaStream_t stream);

// Largest head dimension the attention kernel accepts.
constexpr int32_t kKvAttnMaxHeadDim = 256;

// Split-K layout for a problem size, a pure function of shapes so that a decode step keeps
// static shapes (CUDA graphs): writes p.num_splits and p.split_len.
void kv_attention_cuda_plan(KvAttnParams* p);

// Enqueues the attention kernels on `stream`. When p.num_splits > 1, p.partial_* must point to
// device scratch of [B, Tq, H, num_splits] (x D for partial_acc) floats.
cudaError_t launch_kv_attention(const KvAttnParams& p, cudaStream_t stream);

}  // namespace whispermedia

// Portability macros shared by the CPU (g++/clang) and CUDA (nvcc) translation units.
// Deliberately free of ATen and of the CUDA runtime so that every header in common/
// can be included from a .cu compiled with `nvcc -c -I csrc` and nothing else.
#pragma once

#if defined(__CUDACC__)
#define WM_HOST_DEVICE __host__ __device__
#define WM_DEVICE __device__
#else
#define WM_HOST_DEVICE
#define WM_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__) || defined(__CUDACC__)
#define WM_RESTRICT __restrict__
#define WM_LIKELY(x) __builtin_expect(!!(x), 1)
#define WM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define WM_RESTRICT
#define WM_LIKELY(x) (x)
#define WM_UNLIKELY(x) (x)
#endif

// Inlining is not a hint here: the CPU kernels are compiled once per ISA clone and their
// helpers must be inlined into each clone to get that clone's instructions.
#if defined(__CUDACC__)
#define WM_FORCE_INLINE __forceinline__
#elif defined(__GNUC__) || defined(__clang__)
#define WM_FORCE_INLINE inline __attribute__((always_inline))
#else
#define WM_FORCE_INLINE inline
#endif

// Full unrolling of a loop with a compile-time trip count (arrays indexed by it then live in
// registers).
// nvcc's device pass knows `unroll`; its host pass knows neither that nor GCC's spelling (and
// runs no kernel), so it gets nothing.
#if defined(__CUDA_ARCH__)
#define WM_UNROLL _Pragma("unroll")
#elif defined(__CUDACC__)
#define WM_UNROLL
#elif defined(__clang__)
#define WM_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define WM_UNROLL _Pragma("GCC unroll 16")
#else
#define WM_UNROLL
#endif

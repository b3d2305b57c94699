// The one schema file of whispermedia._C: every op is defined here and only here; the
// backend files (cpu/*.cpp, cuda/bindings.cpp) register implementations with
// TORCH_LIBRARY_IMPL, and whispermedia/ops/_fake.py registers the fake (meta) kernels.
// Contracts, in words and as executable torch: docs/ops.md, whispermedia/ops/reference.py.
#include <torch/library.h>

TORCH_LIBRARY(whispermedia, m) {
  // Whisper log-mel: audio [B, N] or [N], filters [n_mels, n_fft/2+1] -> [B, n_mels, N // hop], clamped per row
  m.def("log_mel_spectrogram(Tensor audio, Tensor filters, int hop_length) -> Tensor");
  // The same frames normalised with a maximum given by the caller (the whole file's, for windows
  // of a long file: docs/ops.md), or with maximum=None not normalised at all: log10(max(mel, 1e-10)).
  m.def("log_mel_frames(Tensor audio, Tensor filters, int hop_length, float? maximum=None) -> Tensor");
  // Decoder self-attention step: append k/v_new at rows seqlens[b].., attend causally over the cache -> [B, Tq, H, D]
  m.def(
      "kv_attention(Tensor q, Tensor(a!) k_cache, Tensor(b!) v_cache, Tensor k_new, Tensor v_new, "
      "Tensor seqlens, float scale) -> Tensor");

  // CPU only, the decode step (a GPU runs float16 GEMMs and SDPA's flash kernels instead):
  // y = x @ weight.T + bias in float32 from float16-stored weights: x [..., K], weight [N, K] -> [..., N]
  m.def("linear_f16w(Tensor x, Tensor weight, Tensor? bias=None) -> Tensor");
  // y = (x @ weight.T) * scale + bias in float32 from int8-stored weights with one scale per output row
  m.def("linear_i8w(Tensor x, Tensor weight, Tensor scale, Tensor? bias=None) -> Tensor");
  // softmax(scale * q @ k^T) @ v over the cached encoder K/V: q [A, H, G, D], k, v [A, H, S, D], float32
  m.def("cross_attention(Tensor q, Tensor k, Tensor v, float scale) -> Tensor");
}

// `import whispermedia._C` only has to load this shared object so that the static
// registrations above run; an empty module (no pybind11) keeps the binary independent of
// pybind11 and of the CPython minor version's C++ ABI. The CMake build (native tests,
// sanitizers) has no Python and defines WM_NO_PYTHON_MODULE.
#ifndef WM_NO_PYTHON_MODULE
#include <Python.h>

extern "C" PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",     // m_name
      nullptr,  // m_doc
      -1,       // m_size
      nullptr,  // m_methods
  };
  return PyModule_Create(&module_def);
}
#endif

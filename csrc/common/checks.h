// Argument checks for the ATen entry points (host side only: this header needs ATen and
// must never be included from a .cu file).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#define WM_CHECK_DEVICE(x, dev)                                                          \
  TORCH_CHECK((x).device().type() == (dev), #x " must be a ", c10::DeviceTypeName(dev), \
              " tensor, got one on ", (x).device())

#define WM_CHECK_DTYPE(x, dt) \
  TORCH_CHECK((x).scalar_type() == (dt), #x " must be ", (dt), ", got ", (x).scalar_type())

#define WM_CHECK_DIM(x, n) TORCH_CHECK((x).dim() == (n), #x " must be " #n "-D, got shape ", (x).sizes())

#define WM_CHECK_SHAPE(x, ...)                                                        \
  TORCH_CHECK((x).sizes() == c10::IntArrayRef({__VA_ARGS__}), #x " must have shape (" \
              #__VA_ARGS__ "), got ", (x).sizes())

#define WM_CHECK_LAST_DIM_CONTIGUOUS(x) \
  TORCH_CHECK((x).size(-1) <= 1 || (x).stride(-1) == 1, #x " must be contiguous in its last dimension")

#define WM_CHECK_SAME_DEVICE(x, y)                                                       \
  TORCH_CHECK((x).device() == (y).device(), #x " and " #y " must be on the same device, got ", \
              (x).device(), " and ", (y).device())

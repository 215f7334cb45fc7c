// Elementwise kernels: binary ops with broadcasting, scalar forms, exp/log, channel bias.
//
// Every op writes every element of `out` (activation results overwrite, never accumulate).
// CPU versions are templated on float/double; CUDA versions take float32.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace leuko::kernels {

enum class BinaryOp { add, sub, mul, div };
enum class UnaryOp { exp, log, neg };

// Index map of a broadcast: out has `shape`; a and b are read at strides that are 0 along the
// dimensions where they have size 1 (numpy/PyTorch broadcasting, right-aligned).
constexpr int kMaxDims = 8;
struct Broadcast {
  int rank = 0;
  int64_t shape[kMaxDims] = {};
  int64_t stride_a[kMaxDims] = {};
  int64_t stride_b[kMaxDims] = {};
};

namespace cpu {
// out = a op b. bc == nullptr: a, b and out all have n elements (no broadcast).
template <typename T>
void binary(BinaryOp op, T* out, const T* a, const T* b, int64_t n, const Broadcast* bc);
// out = alpha * x + beta (add, sub, mul and div by a scalar).
template <typename T> void affine(T* out, const T* x, int64_t n, double alpha, double beta);
// out = s / x.
template <typename T> void scalar_div(T* out, double s, const T* x, int64_t n);
template <typename T> void unary(UnaryOp op, T* out, const T* x, int64_t n);
// out[n, c, i] = x[n, c, i] + bias[c]   out, x: (N, C, inner), bias: (C,); out may be x.
// relu: then max(out, 0) in the same pass (a NaN stays NaN, as relu_forward), for a
// convolution or linear layer followed by a ReLU (layers/conv2d.h conv2d_relu).
template <typename T>
void bias_add(T* out, const T* x, const T* bias, int64_t N, int64_t C, int64_t inner, bool relu = false);
}  // namespace cpu

namespace cuda {
void binary(BinaryOp op, float* out, const float* a, const float* b, int64_t n, const Broadcast* bc);
void affine(float* out, const float* x, int64_t n, double alpha, double beta);
void scalar_div(float* out, double s, const float* x, int64_t n);
void unary(UnaryOp op, float* out, const float* x, int64_t n);
void bias_add(float* out, const float* x, const float* bias, int64_t N, int64_t C, int64_t inner, bool relu = false);
// bf16 activations (tensor/device.h bf16_activations()), float32 bias: computed in float, the
// sum (and the ReLU) rounded to bf16 once.   out, x: (N, C, inner) bf16, bias: (C,) float32
void bias_add(bf16* out, const bf16* x, const float* bias, int64_t N, int64_t C, int64_t inner, bool relu = false);
}  // namespace cuda

}  // namespace leuko::kernels

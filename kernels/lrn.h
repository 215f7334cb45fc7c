// Local response normalisation across channels (AlexNet's and GoogLeNet's LRN), exactly as
// torch.nn.functional.local_response_norm:
//
//   scale[c] = k + alpha / size * sum of x[c']^2 over c' in [c - size/2, c + (size-1)/2] ∩ [0, C)
//   out[c]   = x[c] * scale[c]^-beta
//
// (PyTorch pads the squares with size/2 zero channels before and (size-1)/2 after, then
// averages `size` of them: the divisor is always `size`, also at the edges.)
//
// Backward, by hand. out[c] depends on x[j] through the x[c] factor (c == j) and through
// scale[c] for every c whose window holds j, i.e. c in [j - (size-1)/2, j + size/2]:
//   d out[c] / d x[j] = [c == j] scale[c]^-beta - 2 alpha beta / size * x[c] scale[c]^(-beta-1) x[j]
// so
//   grad_x[j] = g[j] scale[j]^-beta - 2 alpha beta / size * x[j] * sum_c g[c] out[c] / scale[c].
// The sum over c is a gather: each element's gradient is computed by one thread on its own.
//
// Tensors are viewed as (N, C, inner), inner = H * W (or the product of the trailing dims).
#pragma once

#include <cstdint>

namespace leuko::kernels {

struct Lrn {
  int64_t N = 0, C = 0, inner = 1;
  int64_t size = 5;
  double alpha = 1e-4, beta = 0.75, k = 1.0;
};

namespace cpu {
// out, scale: (N, C, inner); scale is kept for the backward.
template <typename T> void lrn_forward(T* out, T* scale, const T* x, const Lrn& l);
// grad_x written from grad_out, x, and the forward's out and scale, all (N, C, inner).
template <typename T>
void lrn_backward(T* grad_x, const T* grad_out, const T* x, const T* out, const T* scale, const Lrn& l);
}  // namespace cpu

namespace cuda {
void lrn_forward(float* out, float* scale, const float* x, const Lrn& l);
void lrn_backward(float* grad_x, const float* grad_out, const float* x, const float* out, const float* scale,
                  const Lrn& l);
}  // namespace cuda

}  // namespace leuko::kernels

// CUDA local response normalisation: one thread per element, each looping over its channel
// window (size is small: 5 in AlexNet and GoogLeNet). The backward gathers over the channels
// whose windows hold the element, so every thread writes only its own gradient.
#include "kernels/cuda/common.cuh"
#include "kernels/lrn.h"

namespace leuko::kernels::cuda {
namespace {

__global__ void lrn_forward_kernel(float* out, float* scale, const float* x, Lrn l, float coef, float k,
                                   float beta) {
  const int64_t total = l.N * l.C * l.inner;
  const int64_t before = l.size / 2, after = (l.size - 1) / 2;
  LEUKO_GRID_STRIDE(e, total) {
    const int64_t i = e % l.inner, c = (e / l.inner) % l.C, n = e / (l.inner * l.C);
    const float* xn = x + n * l.C * l.inner;  // (C, inner)
    const int64_t c0 = max(c - before, int64_t(0)), c1 = min(c + after, l.C - 1);
    float sq = 0.f;
    for (int64_t cc = c0; cc <= c1; cc++) sq += xn[cc * l.inner + i] * xn[cc * l.inner + i];
    const float s = k + coef * sq;
    scale[e] = s;
    out[e] = x[e] * powf(s, -beta);
  }
}

__global__ void lrn_backward_kernel(float* grad_x, const float* grad_out, const float* x, const float* out,
                                    const float* scale, Lrn l, float coef, float beta) {
  const int64_t total = l.N * l.C * l.inner;
  const int64_t before = l.size / 2, after = (l.size - 1) / 2;
  LEUKO_GRID_STRIDE(e, total) {
    const int64_t i = e % l.inner, j = (e / l.inner) % l.C, n = e / (l.inner * l.C);
    const int64_t base = n * l.C * l.inner + i;  // channel 0 of this (n, i) column; stride inner
    const int64_t c0 = max(j - after, int64_t(0)), c1 = min(j + before, l.C - 1);
    float acc = 0.f;  // sum over c of g[c] out[c] / scale[c]
    for (int64_t c = c0; c <= c1; c++) {
      const int64_t ce = base + c * l.inner;
      acc += grad_out[ce] * out[ce] / scale[ce];
    }
    grad_x[e] = grad_out[e] * powf(scale[e], -beta) - coef * x[e] * acc;
  }
}

}  // namespace

void lrn_forward(float* out, float* scale, const float* x, const Lrn& l) {
  const int64_t n = l.N * l.C * l.inner;
  if (n == 0) return;
  lrn_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, scale, x, l, float(l.alpha / double(l.size)),
                                                               float(l.k), float(l.beta));
  LEUKO_CUDA_LAUNCH_CHECK();
}

void lrn_backward(float* grad_x, const float* grad_out, const float* x, const float* out, const float* scale,
                  const Lrn& l) {
  const int64_t n = l.N * l.C * l.inner;
  if (n == 0) return;
  lrn_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, x, out, scale, l,
                                                                float(2.0 * l.alpha * l.beta / double(l.size)),
                                                                float(l.beta));
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda

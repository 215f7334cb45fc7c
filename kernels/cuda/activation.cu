// CUDA ReLU, the fused add + ReLU, and dropout: one thread per element in a grid-stride loop. Dropout draws its mask
// with the same inline hash as the CPU (kernels/activation.h), so both keep the same elements.
#include "kernels/activation.h"
#include "kernels/cuda/common.cuh"

namespace leuko::kernels::cuda {
namespace {

__global__ void relu_forward_kernel(float* out, const float* x, int64_t n) {
  LEUKO_GRID_STRIDE(i, n) {
    const float v = x[i];
    out[i] = !(v <= 0.f) ? v : 0.f;  // NaN passes through, as on the CPU
  }
}

__global__ void add_relu_forward_kernel(float* out, const float* a, const float* b, int64_t n) {
  LEUKO_GRID_STRIDE(i, n) {
    const float v = a[i] + b[i];
    out[i] = !(v <= 0.f) ? v : 0.f;
  }
}

__global__ void relu_backward_kernel(float* grad_x, const float* grad_out, const float* out, int64_t n) {
  LEUKO_GRID_STRIDE(i, n) grad_x[i] = out[i] > 0.f ? grad_out[i] : 0.f;
}

__global__ void dropout_kernel(float* out, const float* x, int64_t n, uint64_t seed, uint64_t threshold,
                               float scale) {
  LEUKO_GRID_STRIDE(i, n) out[i] = dropout_keep(seed, threshold, uint64_t(i)) ? x[i] * scale : 0.f;
}

}  // namespace

void relu_forward(float* out, const float* x, int64_t n) {
  if (n == 0) return;
  relu_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void add_relu_forward(float* out, const float* a, const float* b, int64_t n) {
  if (n == 0) return;
  add_relu_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, a, b, n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void relu_backward(float* grad_x, const float* grad_out, const float* out, int64_t n) {
  if (n == 0) return;
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, out, n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

void dropout(float* out, const float* x, int64_t n, uint64_t seed, uint64_t threshold, double scale) {
  if (n == 0) return;
  dropout_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, n, seed, threshold, float(scale));
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace leuko::kernels::cuda

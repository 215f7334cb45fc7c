// CUDA ReLU, the fused add + ReLU, and dropout: one thread per element in a grid-stride loop. Dropout draws its mask
// with the same inline hash as the CPU (kernels/activation.h), so both keep the same elements.
// Each kernel is templated on the storage type T (float, or __nv_bfloat16 for bf16 activations):
// it loads into float, computes in float and stores with one rounding (load/store, common.cuh).
// For float, load and store are the identity, so the float32 kernels compute what they always did.
#include "kernels/activation.h"
#include "kernels/cuda/common.cuh"
#include "kernels/random.h"

namespace leuko::kernels::cuda {
namespace {

template <typename T>
__global__ void relu_forward_kernel(T* out, const T* x, int64_t n) {
  LEUKO_GRID_STRIDE(i, n) {
    const float v = load(x[i]);
    out[i] = store<T>(!(v <= 0.f) ? v : 0.f);  // NaN passes through, as on the CPU
  }
}

template <typename T>
__global__ void add_relu_forward_kernel(T* out, const T* a, const T* b, int64_t n) {
  LEUKO_GRID_STRIDE(i, n) {
    const float v = load(a[i]) + load(b[i]);  // the sum in float, rounded once with the ReLU
    out[i] = store<T>(!(v <= 0.f) ? v : 0.f);
  }
}

template <typename T>
__global__ void relu_backward_kernel(T* grad_x, const T* grad_out, const T* out, int64_t n) {
  LEUKO_GRID_STRIDE(i, n) grad_x[i] = load(out[i]) > 0.f ? grad_out[i] : store<T>(0.f);
}

template <typename T>
__global__ void dropout_kernel(T* out, const T* x, int64_t n, uint64_t seed, uint64_t threshold, float scale,
                               ReplaySeed replay) {
  // In a CUDA graph: the seed of the replay's step, drawn here (a few integer operations).
  if (replay.step != nullptr) seed = xoshiro_draw(step_seed(replay.run_seed, *replay.step), replay.draw);
  LEUKO_GRID_STRIDE(i, n) out[i] = store<T>(dropout_keep(seed, threshold, uint64_t(i)) ? load(x[i]) * scale : 0.f);
}

// The launches, for either storage type (the public functions pass their pointers through dev()).
template <typename T>
void launch_relu_forward(T* out, const T* x, int64_t n) {
  if (n == 0) return;
  relu_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_add_relu_forward(T* out, const T* a, const T* b, int64_t n) {
  if (n == 0) return;
  add_relu_forward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, a, b, n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_relu_backward(T* grad_x, const T* grad_out, const T* out, int64_t n) {
  if (n == 0) return;
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(grad_x, grad_out, out, n);
  LEUKO_CUDA_LAUNCH_CHECK();
}

template <typename T>
void launch_dropout(T* out, const T* x, int64_t n, uint64_t seed, uint64_t threshold, double scale,
                    const ReplaySeed* replay) {
  if (n == 0) return;
  dropout_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(out, x, n, seed, threshold, float(scale),
                                                          replay != nullptr ? *replay : ReplaySeed{});
  LEUKO_CUDA_LAUNCH_CHECK();
}

}  // namespace

void relu_forward(float* out, const float* x, int64_t n) { launch_relu_forward(out, x, n); }
void relu_forward(bf16* out, const bf16* x, int64_t n) { launch_relu_forward(dev(out), dev(x), n); }

void add_relu_forward(float* out, const float* a, const float* b, int64_t n) { launch_add_relu_forward(out, a, b, n); }
void add_relu_forward(bf16* out, const bf16* a, const bf16* b, int64_t n) {
  launch_add_relu_forward(dev(out), dev(a), dev(b), n);
}

void relu_backward(float* grad_x, const float* grad_out, const float* out, int64_t n) {
  launch_relu_backward(grad_x, grad_out, out, n);
}
void relu_backward(bf16* grad_x, const bf16* grad_out, const bf16* out, int64_t n) {
  launch_relu_backward(dev(grad_x), dev(grad_out), dev(out), n);
}

void dropout(float* out, const float* x, int64_t n, uint64_t seed, uint64_t threshold, double scale,
             const ReplaySeed* replay) {
  launch_dropout(out, x, n, seed, threshold, scale, replay);
}
void dropout(bf16* out, const bf16* x, int64_t n, uint64_t seed, uint64_t threshold, double scale,
             const ReplaySeed* replay) {
  launch_dropout(dev(out), dev(x), n, seed, threshold, scale, replay);
}

}  // namespace leuko::kernels::cuda

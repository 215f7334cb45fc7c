// Activation kernels: ReLU, the fused add + ReLU, and dropout.
//
// Dropout's keep mask is never stored: it is a pure function of (seed, element index), a hash
// computed by the same inline code on the host and on the device. So the CPU and the GPU keep
// exactly the same elements for the same seed, and the backward recomputes the mask from the
// seed instead of saving it (the backward of dropout is dropout of the gradient, same seed).
//
// Every kernel here walks flat buffers, so it serves any memory order (NCHW or channels_last)
// as long as all its buffers share it. Dropout's mask, though, follows the storage index:
// layers/activation.cpp gives it NCHW buffers only, so a mask is the same for both orders.
#pragma once

#include <cstdint>

#include "kernels/host_device.h"
#include "tensor/dtype.h"

namespace leuko::kernels {

// 64 well-mixed bits for element i of the stream `seed`: splitmix64's output function applied
// to the i-th step of its counter. Counter-based, so any element can be drawn in any order by
// any thread, and only integer arithmetic, so host and device agree bit for bit.
LEUKO_HOST_DEVICE inline uint64_t dropout_hash(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Element i is kept when its hash, read as a uniform number in [0, 1) scaled by 2^64, is at
// least p * 2^64 = `threshold` (so P(keep) = 1 - p). Integers, not floats: no rounding can make
// the two devices disagree.
LEUKO_HOST_DEVICE inline bool dropout_keep(uint64_t seed, uint64_t threshold, uint64_t i) {
  return dropout_hash(seed, i) >= threshold;
}

// A dropout seed drawn on the device, for a step recorded as a CUDA graph (tensor/cuda/graph.h),
// whose host-drawn seed is frozen at the capture: the draw `draw` of the generator seeded with
// step_seed(run_seed, *step) (kernels/random.h), where *step is the step the replay runs. That is
// the seed the host draws for the same call of an eager step seeded by seed_step(run_seed, step)
// (tensor/random.h), so a replay drops the elements the eager step would.
struct ReplaySeed {
  uint64_t run_seed = 0;
  int64_t draw = 0;
  const int64_t* step = nullptr;  // device memory
};

namespace cpu {
// out = max(x, 0); a NaN stays NaN (as PyTorch's relu).
template <typename T> void relu_forward(T* out, const T* x, int64_t n);
// out = max(a + b, 0), a ResNet block's residual sum and its ReLU in one pass.
template <typename T> void add_relu_forward(T* out, const T* a, const T* b, int64_t n);
// grad_x = grad_out where out > 0, else 0 (also add_relu's gradient, for both inputs).
template <typename T> void relu_backward(T* grad_x, const T* grad_out, const T* out, int64_t n);
// out[i] = x[i] * scale if dropout_keep(seed, threshold, i), else 0.
template <typename T> void dropout(T* out, const T* x, int64_t n, uint64_t seed, uint64_t threshold, double scale);
}  // namespace cpu

namespace cuda {
void relu_forward(float* out, const float* x, int64_t n);
void add_relu_forward(float* out, const float* a, const float* b, int64_t n);
void relu_backward(float* grad_x, const float* grad_out, const float* out, int64_t n);
// With `replay`, the seed is drawn on the device as ReplaySeed says, and `seed` is unused.
void dropout(float* out, const float* x, int64_t n, uint64_t seed, uint64_t threshold, double scale,
             const ReplaySeed* replay = nullptr);
// bf16 activations (tensor/device.h bf16_activations()): every buffer bf16, the same formulas
// computed in float and rounded to bf16 once. ReLU and its backward only select, so they are
// exact; add_relu rounds the float sum; dropout uses the same mask and rounds x * scale.
void relu_forward(bf16* out, const bf16* x, int64_t n);
void add_relu_forward(bf16* out, const bf16* a, const bf16* b, int64_t n);
void relu_backward(bf16* grad_x, const bf16* grad_out, const bf16* out, int64_t n);
void dropout(bf16* out, const bf16* x, int64_t n, uint64_t seed, uint64_t threshold, double scale,
             const ReplaySeed* replay = nullptr);
}  // namespace cuda

}  // namespace leuko::kernels

// Optimizer updates, in place, as PyTorch's torch.optim (its single-tensor "for-loop" forms).
//
// SGD (momentum, dampening, Nesterov, weight decay):
//   g = grad + wd * p
//   buf = g on the first step, else momentum * buf + (1 - dampening) * g
//   g = nesterov ? g + momentum * buf : buf        (when momentum != 0)
//   p -= lr * g
// Adam / AdamW (bias correction, optional amsgrad), step t counted from 1:
//   Adam:  g = grad + wd * p          AdamW: p *= 1 - lr * wd
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  vmax = max(vmax, v) (amsgrad)
//   p -= lr / (1 - b1^t) * m / (sqrt(v or vmax) / sqrt(1 - b2^t) + eps)
// The CUDA versions update every parameter of a model in ONE launch: each block takes a chunk of
// one tensor, found through a table of (tensor, offset) chunks kept on the device.
#pragma once

#include <cstdint>
#include <vector>

namespace leuko::kernels {

struct SgdHyper {
  double lr = 0.01, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

struct AdamHyper {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool decoupled = false;  // AdamW: decay the weights directly instead of adding to the gradient
  bool amsgrad = false;
  double bias_correction1 = 1, bias_correction2 = 1;  // 1 - beta^t, computed by the caller
};

// One parameter for the fused CUDA update. state1/2/3: momentum buffer (SGD); exp_avg,
// exp_avg_sq, max_exp_avg_sq (Adam). `first` marks a momentum buffer not yet initialised.
struct ParamRef {
  float* p;
  const float* g;
  float* state1;
  float* state2;
  float* state3;
  int64_t n;
  int first;
};

namespace cpu {
// p, g, buf: (n,); buf may be null when momentum == 0. first: buf holds no history yet.
template <typename T> void sgd_update(T* p, const T* g, T* buf, int64_t n, const SgdHyper& h, bool first);
// p, g, m, v: (n,); vmax: (n,) or null without amsgrad.
template <typename T> void adam_update(T* p, const T* g, T* m, T* v, T* vmax, int64_t n, const AdamHyper& h);
}  // namespace cpu

// The CUDA updates read the scalars that change from step to step from device memory, so that a
// step recorded as a CUDA graph (tensor/cuda/graph.h) uses, at each replay, the values written
// for that step: [0] lr, [1] lr / bias_correction1 (Adam's step size), [2] sqrt(bias_correction2).
constexpr int kStepScalars = 3;

namespace cuda {
// Writes h's step scalars into `scalars` (device, kStepScalars floats), in stream order.
void write_step_scalars(float* scalars, const SgdHyper& h);
void write_step_scalars(float* scalars, const AdamHyper& h);
// The fused updates: h's other fields by value, the step scalars read from `scalars`.
void sgd_update_multi(const std::vector<ParamRef>& params, const SgdHyper& h, const float* scalars);
void adam_update_multi(const std::vector<ParamRef>& params, const AdamHyper& h, const float* scalars);
}  // namespace cuda

}  // namespace leuko::kernels

// Batch normalisation (torch.nn.functional.batch_norm, torch.nn.BatchNorm2d / BatchNorm1d).
#pragma once

#include <cstdint>
#include <string>

#include "layers/module.h"
#include "tensor/tensor.h"

namespace leuko {

// x: (N, C, *) (any rank >= 2; the statistics are per channel, over N and the trailing dims).
// weight, bias: (C,) or undefined (affine=false). running_mean, running_var: (C,) or undefined.
//
// training: normalises with the batch mean and the biased batch variance; when given, the
//   running statistics are updated in place: r = (1 - momentum) * r + momentum * batch value,
//   with the UNBIASED variance (M / (M - 1), M = N * spatial size) for running_var. The
//   backward goes through the mean and the variance. M must be > 1.
// eval: normalises with running_mean and running_var (both required); the backward is affine.
// y = (x - mean) / sqrt(var + eps) * weight + bias, exactly as PyTorch. Gradients for x, weight
// and bias; the running statistics are buffers, not inputs.
// bf16 activations (tensor/device.h, bf16_activations()): x may be bf16 with float32 weight, bias
// and running statistics; y and x's gradient are then bf16 (computed in float32, rounded once),
// the statistics and the weight and bias gradients float32, as PyTorch's autocast.
// channels_last (tensor/tensor.h MemoryFormat; float32 or bf16, 4-D): y is channels_last with
// the NCHW op's values, and x's gradient comes back in x's order (CUDA kernels on the (N, H, W, C)
// order; the CPU computes through NCHW).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
// relu(batch_norm(...)) as one op, "batch_norm_relu": the same values and gradients (a NaN
// stays NaN, the gradient is 0 where the output is not positive), with the ReLU folded into the
// batch norm's kernels, so the batch norm's own output is never written.
Tensor batch_norm_relu(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
// batch_norm on an (N, C, H, W) input (checked).
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);

// ---- Modules ------------------------------------------------------------------------------

// torch.nn's _BatchNorm: parameters weight (ones) and bias (zeros) when affine; buffers
// running_mean (zeros), running_var (ones) and num_batches_tracked (int64 scalar 0) when
// track_running_stats, with PyTorch's names. A training forward increments num_batches_tracked
// (on the GPU by a one-thread kernel: no host synchronisation) and updates the running
// statistics; an eval forward uses them. Without track_running_stats both modes use the batch
// statistics, as PyTorch. momentum=None (a cumulative average) is not supported.
// Undefined tensors stand for PyTorch's None (weight and bias without affine, the buffers
// without track_running_stats).
class BatchNormBase : public Module {
 public:
  BatchNormBase(int64_t num_features_, double eps_, double momentum_, bool affine_, bool track_running_stats_);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)) in one op (batch_norm_relu): Sequential and bn_relu() below call it.
  bool fuses_relu() const override { return true; }
  Tensor forward_relu(const Tensor& x) override;
  // "64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True"
  std::string extra_repr() const override;

  int64_t num_features;
  double eps, momentum;
  bool affine, track_running_stats;
  Tensor weight, bias;                                    // (C,) parameters
  Tensor running_mean, running_var, num_batches_tracked;  // (C,), (C,), int64 []

 protected:
  // Throws unless x has the rank this module takes.
  virtual void check_input_dim(const Tensor& x) const = 0;

 private:
  Tensor run(const Tensor& x, bool relu);
};

// relu(bn(x)) as one op, for a network's batch norm followed by a ReLU (ResNet's blocks,
// GoogLeNet's and Inception-v3's BasicConv2d): bn.forward_relu(x), while an active ModuleTrace
// sees the modules called, as if they had run one after the other. `relu` is the network's ReLU
// module, which has no state and is named only for the trace, or null where the network calls
// the functional relu.
Tensor bn_relu(BatchNormBase& bn, const Module* relu, const Tensor& x);

// On (N, C, H, W).
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t num_features_, double eps_ = 1e-5, double momentum_ = 0.1, bool affine_ = true,
                       bool track_running_stats_ = true)
      : BatchNormBase(num_features_, eps_, momentum_, affine_, track_running_stats_) {}
  std::string type_name() const override { return "BatchNorm2d"; }

 protected:
  void check_input_dim(const Tensor& x) const override;
};

// On (N, C) or (N, C, L).
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(int64_t num_features_, double eps_ = 1e-5, double momentum_ = 0.1, bool affine_ = true,
                       bool track_running_stats_ = true)
      : BatchNormBase(num_features_, eps_, momentum_, affine_, track_running_stats_) {}
  std::string type_name() const override { return "BatchNorm1d"; }

 protected:
  void check_input_dim(const Tensor& x) const override;
};

}  // namespace leuko

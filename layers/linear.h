// Fully connected layer: the differentiable op linear and the module Linear (torch.nn.Linear).
#pragma once

#include <cstdint>
#include <string>

#include "layers/module.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace leuko {

// y = x weight^T + bias, as torch.nn.functional.linear, through detail::gemm (the blocked CPU
// gemm, or cuBLAS on the GPU).
//   x: (N, in), weight: (out, in), bias: (out,) or undefined  ->  y: (N, out)
// Backward: dx = dy weight (N, out) @ (out, in), dweight = dy^T x (out, N) @ (N, in),
// dbias = the sum of dy over the batch.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
// relu(linear(...)) as one op, "linear_relu": the ReLU applied in the bias pass, its backward
// masking the gradient first. The same values and gradients as the two ops.
Tensor linear_relu(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// torch.nn.Linear: parameters "weight" (out, in) and "bias" (out,), initialised as PyTorch's
// reset_parameters: weight kaiming_uniform_(a = sqrt(5)), i.e. uniform within +-1/sqrt(in),
// and bias uniform within +-1/sqrt(in).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  bool fuses_relu() const override { return true; }
  Tensor forward_relu(const Tensor& x) override;  // linear_relu
  std::string type_name() const override { return "Linear"; }
  // "in_features=4096, out_features=1000, bias=True", as PyTorch prints it.
  std::string extra_repr() const override;

  const int64_t in_features, out_features;
  Tensor weight;  // (out, in): the registered parameter's handle
  Tensor bias;    // (out,), or undefined when made with bias = false
};

}  // namespace leuko

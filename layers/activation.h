// Differentiable activations and shape layers: relu, dropout, and their modules with Flatten.
#pragma once

#include <cstdint>
#include <string>

#include "layers/module.h"
#include "tensor/tensor.h"

namespace leuko {

// relu, add_relu and dropout keep their input's dtype: float32, float64 (CPU) or bf16 (bf16
// activations, tensor/device.h: computed in float, rounded once; the gradient is bf16 too).
// relu, add_relu and relu_grad also keep their input's memory order (NCHW or channels_last,
// tensor/tensor.h MemoryFormat); dropout gives NCHW (see below).

// max(x, 0), any shape. Backward: the gradient where the output is > 0, else 0 (at x == 0 the
// gradient is 0, as PyTorch's).
Tensor relu(const Tensor& x);
// ReLU's backward without recording: g where the ReLU's output `out` is > 0, else 0. The fused
// ops (add_relu, batch_norm_relu, conv2d_relu, linear_relu) apply it to their upstream gradient.
// g and out of one dtype (bf16 under bf16 activations) and shape, and so is the result, in
// out's memory order (g is converted to it if it differs).
Tensor relu_grad(const Tensor& g, const Tensor& out);
// relu(a + b) as one op, "add_relu" (a residual block's sum and its ReLU: one pass instead of
// two, and the sum itself is never stored). a and b of the same shape and dtype, no broadcasting;
// the output in a's memory order (a b of the other order, say an NCHW shortcut beside a
// channels_last body, is converted to it first). Backward: relu's gradient, to both inputs.
Tensor add_relu(const Tensor& a, const Tensor& b);

// Training: zeroes each element with probability p and scales the kept ones by 1 / (1 - p), so
// the expected output is x. Not training (or p == 0): x itself. p must be in [0, 1).
// Each call draws one 64-bit seed from default_generator(); the mask is a hash of (seed,
// element index), identical on the CPU and the GPU, so `manual_seed(s)` reproduces it exactly
// on either device. The backward applies the same mask to the gradient. The index is the NCHW
// one: a channels_last x is dropped as an NCHW copy, and the output is NCHW.
Tensor dropout(const Tensor& x, double p, bool training = true);

// ---- Modules ------------------------------------------------------------------------------

// torch.nn.ReLU. `inplace` is accepted (torchvision builds ReLU(inplace=True)) and printed,
// but leuko's ops are all out of place: the flag saves no memory here and changes nothing else.
class ReLU : public Module {
 public:
  explicit ReLU(bool inplace_ = false) : inplace(inplace_) {}
  Tensor forward(const Tensor& x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
  std::string extra_repr() const override { return inplace ? "inplace=True" : ""; }
  bool inplace;
};

// torch.nn.Dropout: dropout(x, p, is_training()). `inplace` as for ReLU.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, bool inplace = false);
  Tensor forward(const Tensor& x) override { return dropout(x, p, is_training()); }
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;  // "p=0.5, inplace=False"
  double p;
  bool inplace;
};

// torch.nn.Flatten with end_dim = -1 (the only form the networks use): merges the dims from
// start_dim on, as a view (Tensor::flatten).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim_ = 1) : start_dim(start_dim_) {}
  Tensor forward(const Tensor& x) override { return x.flatten(start_dim); }
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;  // "start_dim=1, end_dim=-1"
  int64_t start_dim;
};

}  // namespace leuko

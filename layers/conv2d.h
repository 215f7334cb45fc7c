// 2-D convolution: the differentiable op conv2d and the module Conv2d (torch.nn.Conv2d).
#pragma once

#include <cstdint>
#include <string>

#include "layers/module.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace leuko {

struct Conv2dOptions {
  // A (height, width) pair; one number means both, as PyTorch's int arguments.
  struct Pair {
    int64_t h = 1, w = 1;
    Pair(int64_t both) : h(both), w(both) {}  // implicit on purpose: `stride = 2`
    Pair(int64_t h_, int64_t w_) : h(h_), w(w_) {}
    bool operator==(const Pair& o) const { return h == o.h && w == o.w; }
  };
  // In F.conv2d's order, so Conv2dOptions{4, 2} is stride 4, padding 2.
  Pair stride = 1;
  Pair padding = 0;  // zeros added on each side
  Pair dilation = 1;
  int64_t groups = 1;  // input and output channels split into `groups` independent convolutions
};

// y = conv2d(x, weight) + bias, as torch.nn.functional.conv2d (cross-correlation, zero padding).
//   x: (N, C, H, W), weight: (K, C / groups, R, S), bias: (K,) or undefined  ->  y: (N, K, P, Q)
//   P = floor((H + 2 pad_h - dil_h (R - 1) - 1) / stride_h) + 1, Q likewise.
// CPU (float32 or float64): im2col + gemm. GPU (float32): cuDNN, algorithms chosen once per
// shape (kernels/cuda/conv2d.cpp). The backward computes the input's gradient only when the
// input requires grad (not for the first layer, whose input is data).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dOptions& options = {});
// relu(conv2d(...)) as one op, "conv2d_relu": the ReLU applied in the bias pass (one write of
// the output instead of two), its backward masking the gradient before the convolution's.
// The same values and gradients as the two ops.
Tensor conv2d_relu(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                   const Conv2dOptions& options = {});

// How many cuDNN algorithm searches have run in this process (one per new geometry, precision
// and direction; a repeated shape reuses the cached choice). 0 in a CPU-only build.
int64_t conv2d_algorithm_searches();

// torch.nn.Conv2d: parameters "weight" (out, in / groups, kh, kw) and "bias" (out,), initialised
// as PyTorch's reset_parameters: weight kaiming_uniform_(a = sqrt(5)), i.e. uniform within
// +-1/sqrt(fan_in), and bias uniform within +-1/sqrt(fan_in), fan_in = in / groups * kh * kw.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Conv2dOptions::Pair kernel_size,
         const Conv2dOptions& options = {}, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  bool fuses_relu() const override { return true; }
  Tensor forward_relu(const Tensor& x) override;  // conv2d_relu
  std::string type_name() const override { return "Conv2d"; }
  // "3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2)", as PyTorch prints it.
  std::string extra_repr() const override;

  const int64_t in_channels, out_channels;
  const Conv2dOptions::Pair kernel_size;
  const Conv2dOptions options;
  Tensor weight;  // (out, in / groups, kh, kw): the registered parameter's handle
  Tensor bias;    // (out,), or undefined when made with bias = false
};

}  // namespace leuko

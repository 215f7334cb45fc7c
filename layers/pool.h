// Differentiable 2-D pooling: max, average and adaptive average, with their modules.
//
// All take x: (N, C, H, W) and follow PyTorch's semantics exactly (output sizes, ceil_mode,
// padding, tie-breaking, divisors), so a torchvision network pools to the same shapes and values.
// x may be bf16 (tensor/device.h bf16_activations()): the output, and x's gradient, are bf16.
// x may be channels_last (tensor/tensor.h MemoryFormat): the output, and x's gradient, are too.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "layers/module.h"
#include "tensor/tensor.h"

namespace leuko {

// The output length of a pooling along one axis (PyTorch's pooling_output_shape):
//   floor or ceil((in + 2 * pad - kernel) / stride) + 1,
// where in ceil_mode the last window must start inside the input or its left padding
// ((out - 1) * stride < in + pad), else it is dropped.
int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad, bool ceil_mode);

// Max over each kernel x kernel window. Padding (at most kernel / 2) is never the maximum.
// Ties go to the first maximum in row-major window order, as PyTorch's. Backward sends each
// output's gradient to its argmax (saved in the forward); overlapping windows add up.
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0, bool ceil_mode = false);
// The same, also returning the argmax of each output as an int64 (N, C, OH, OW) tensor of flat
// positions h * W + w within the input plane (PyTorch's return_indices=True). For a
// channels_last x the indices are a channels_last tensor: the same values, in the output's order.
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, int64_t kernel, int64_t stride,
                                                  int64_t padding = 0, bool ceil_mode = false);

// Mean over each window. count_include_pad: divide by the window's size counting padding
// (clipped, in ceil_mode, to the padded input's end), else by the number of real inputs.
Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0, bool ceil_mode = false,
                  bool count_include_pad = true);

// Mean over the window [floor(i * H / out_h), ceil((i + 1) * H / out_h)) along each axis: any
// input size to a fixed output size (windows overlap when H is not a multiple of out_h, and
// repeat inputs when out_h > H).
Tensor adaptive_avg_pool2d(const Tensor& x, int64_t out_h, int64_t out_w);

// ---- Modules ------------------------------------------------------------------------------

// torch.nn.MaxPool2d. stride 0 means stride = kernel_size (PyTorch's stride=None).
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  int64_t kernel_size, stride, padding;
  bool ceil_mode;
};

// torch.nn.AvgPool2d. stride 0 means stride = kernel_size.
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0, bool ceil_mode = false,
                     bool count_include_pad = true);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  int64_t kernel_size, stride, padding;
  bool ceil_mode, count_include_pad;
};

// torch.nn.AdaptiveAvgPool2d: AdaptiveAvgPool2d(1) or AdaptiveAvgPool2d(6, 6) (PyTorch's (6, 6)).
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(int64_t size) : out_h(size), out_w(size), square_(true) {}
  AdaptiveAvgPool2d(int64_t h, int64_t w) : out_h(h), out_w(w) {}
  Tensor forward(const Tensor& x) override { return adaptive_avg_pool2d(x, out_h, out_w); }
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;  // "output_size=1" or "output_size=(6, 6)", as given
  int64_t out_h, out_w;

 private:
  bool square_ = false;  // built from one int: printed as PyTorch prints an int output_size
};

}  // namespace leuko

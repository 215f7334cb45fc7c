// Small builders shared by the networks: a convolution with PyTorch-style arguments, and the
// initialisation loops torchvision runs over a model's modules after building it.
#pragma once

#include <memory>

#include "layers/activation.h"
#include "layers/batchnorm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/pool.h"

namespace leuko::nets {

inline std::shared_ptr<Conv2d> conv(int64_t in, int64_t out, Conv2dOptions::Pair kernel, Conv2dOptions::Pair stride = 1,
                                    Conv2dOptions::Pair padding = 0, bool bias = true) {
  Conv2dOptions o;
  o.stride = stride;
  o.padding = padding;
  return std::make_shared<Conv2d>(in, out, kernel, o, bias);
}

// Conv2d weights kaiming_normal_(fan_out, relu) and zero biases; BatchNorm weight 1, bias 0
// (VGG's and ResNet's init). Linear layers: normal(0, linear_std) and zero bias when
// linear_std > 0, else left at PyTorch's default.
void init_kaiming_fan_out(Module& model, double linear_std);

// Conv2d and Linear weights trunc_normal_(0, std, -2, 2) with std from `std_of` (GoogLeNet:
// 0.01 everywhere; Inception-v3: 0.1 unless a layer sets its own); BatchNorm weight 1, bias 0.
void init_trunc_normal(Module& model, double std, const std::vector<std::pair<const Module*, double>>& overrides = {});

}  // namespace leuko::nets

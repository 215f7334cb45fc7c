// BasicConv2d, the unit of GoogLeNet and Inception-v3: convolution without bias, batch norm
// (eps 1e-3, as torchvision), relu. Children "conv" and "bn", as torchvision names them.
#pragma once

#include "nets/blocks.h"

namespace leuko::nets {

class BasicConv2d : public Module {
 public:
  BasicConv2d(int64_t in, int64_t out, Conv2dOptions::Pair kernel, Conv2dOptions::Pair stride = 1,
              Conv2dOptions::Pair padding = 0) {
    conv_ = register_module("conv", conv(in, out, kernel, stride, padding, false));
    bn_ = register_module("bn", std::make_shared<BatchNorm2d>(out, 1e-3));
  }
  std::string type_name() const override { return "BasicConv2d"; }
  // relu(bn(conv(x))), the batch norm and the ReLU in one op (layers/batchnorm.h bn_relu).
  Tensor forward(const Tensor& x) override { return bn_relu(*bn_, nullptr, (*conv_)(x)); }
  Conv2d& conv_layer() { return *conv_; }

 private:
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<BatchNorm2d> bn_;
};

}  // namespace leuko::nets

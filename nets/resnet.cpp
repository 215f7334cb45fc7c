// ResNet-18 and ResNet-50 (He et al. 2016) as torchvision builds them (v1.5: in a bottleneck
// the stride sits on the 3x3 convolution):
//   conv1 7x7/2 64 - bn1 - relu - maxpool 3/2 pad 1 - layer1..layer4 - avgpool 1x1 - fc
// layerK holds blocks; the first block of layers 2-4 halves the resolution and, where the
// shape changes, projects the shortcut with `downsample` (1x1 conv + batch norm).
//   BasicBlock (ResNet-18, [2, 2, 2, 2]):  3x3 - bn - relu - 3x3 - bn, + shortcut, relu
//   Bottleneck (ResNet-50, [3, 4, 6, 3]):  1x1 - bn - relu - 3x3 - bn - relu - 1x1 (x4) - bn,
//                                          + shortcut, relu
// Init as torchvision: conv kaiming_normal_(fan_out, relu), batch norm 1 and 0; fc keeps
// PyTorch's default. Each batch norm followed by the ReLU runs as one op (bn_relu), and so does
// each residual sum with its ReLU (add_relu): the same values and gradients as torchvision's
// separate modules, with fewer passes over the activations.
#include "layers/activation.h"
#include "layers/batchnorm.h"
#include "layers/elementwise.h"
#include "nets/blocks.h"
#include "nets/nets.h"

namespace leuko::nets {

namespace {

// relu(h + shortcut) in one op (add_relu), the block's ReLU module seen by a trace as called.
Tensor residual_relu(const Tensor& h, const Tensor& shortcut, const Module& relu) {
  Tensor y = add_relu(h, shortcut);
  trace_call(relu, y.shape(), y.shape());
  return y;
}

class BasicBlock : public Module {
 public:
  static constexpr int64_t kExpansion = 1;
  BasicBlock(int64_t in, int64_t planes, int64_t stride, std::shared_ptr<Sequential> downsample) {
    conv1_ = register_module("conv1", conv(in, planes, 3, stride, 1, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
    relu_ = register_module("relu", std::make_shared<ReLU>(true));
    conv2_ = register_module("conv2", conv(planes, planes, 3, 1, 1, false));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
    if (downsample) downsample_ = register_module("downsample", downsample);
  }
  std::string type_name() const override { return "BasicBlock"; }
  Tensor forward(const Tensor& x) override {
    Tensor h = bn_relu(*bn1_, relu_.get(), (*conv1_)(x));
    h = (*bn2_)((*conv2_)(h));
    Tensor shortcut = downsample_ ? (*downsample_)(x) : x;
    return residual_relu(h, shortcut, *relu_);
  }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Sequential> downsample_;
};

class Bottleneck : public Module {
 public:
  static constexpr int64_t kExpansion = 4;
  Bottleneck(int64_t in, int64_t planes, int64_t stride, std::shared_ptr<Sequential> downsample) {
    conv1_ = register_module("conv1", conv(in, planes, 1, 1, 0, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(planes));
    conv2_ = register_module("conv2", conv(planes, planes, 3, stride, 1, false));
    bn2_ = register_module("bn2", std::make_shared<BatchNorm2d>(planes));
    conv3_ = register_module("conv3", conv(planes, planes * kExpansion, 1, 1, 0, false));
    bn3_ = register_module("bn3", std::make_shared<BatchNorm2d>(planes * kExpansion));
    relu_ = register_module("relu", std::make_shared<ReLU>(true));
    if (downsample) downsample_ = register_module("downsample", downsample);
  }
  std::string type_name() const override { return "Bottleneck"; }
  Tensor forward(const Tensor& x) override {
    Tensor h = bn_relu(*bn1_, relu_.get(), (*conv1_)(x));
    h = bn_relu(*bn2_, relu_.get(), (*conv2_)(h));
    h = (*bn3_)((*conv3_)(h));
    Tensor shortcut = downsample_ ? (*downsample_)(x) : x;
    return residual_relu(h, shortcut, *relu_);
  }

 private:
  std::shared_ptr<Conv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<BatchNorm2d> bn1_, bn2_, bn3_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<Sequential> downsample_;
};

template <typename Block>
class ResNet : public Net {
 public:
  ResNet(const NetOptions& o, const int64_t (&layers)[4]) {
    conv1_ = register_module("conv1", conv(3, 64, 7, 2, 3, false));
    bn1_ = register_module("bn1", std::make_shared<BatchNorm2d>(64));
    relu_ = register_module("relu", std::make_shared<ReLU>(true));
    maxpool_ = register_module("maxpool", std::make_shared<MaxPool2d>(3, 2, 1));
    const int64_t planes[4] = {64, 128, 256, 512};
    for (int i = 0; i < 4; i++) {
      stages_[i] = register_module("layer" + std::to_string(i + 1), make_layer(planes[i], layers[i], i == 0 ? 1 : 2));
    }
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
    fc_ = register_module("fc", std::make_shared<Linear>(512 * Block::kExpansion, o.num_classes));
    init_kaiming_fan_out(*this, 0);
  }
  std::string type_name() const override { return "ResNet"; }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*maxpool_)(bn_relu(*bn1_, relu_.get(), (*conv1_)(x)));  // (N, 64, 56, 56) at 224x224
    for (auto& stage : stages_) h = (*stage)(h);             // (N, 512 * expansion, 7, 7)
    h = (*avgpool_)(h);
    return (*fc_)(h.flatten(1));
  }

 private:
  std::shared_ptr<Sequential> make_layer(int64_t planes, int64_t blocks, int64_t stride) {
    std::shared_ptr<Sequential> downsample;
    if (stride != 1 || in_ != planes * Block::kExpansion) {
      downsample = std::make_shared<Sequential>();
      downsample->push_back(conv(in_, planes * Block::kExpansion, 1, stride, 0, false));
      downsample->push_back(std::make_shared<BatchNorm2d>(planes * Block::kExpansion));
    }
    auto layer = std::make_shared<Sequential>();
    layer->push_back(std::make_shared<Block>(in_, planes, stride, downsample));
    in_ = planes * Block::kExpansion;
    for (int64_t i = 1; i < blocks; i++) layer->push_back(std::make_shared<Block>(in_, planes, 1, nullptr));
    return layer;
  }

  int64_t in_ = 64;
  std::shared_ptr<Conv2d> conv1_;
  std::shared_ptr<BatchNorm2d> bn1_;
  std::shared_ptr<ReLU> relu_;
  std::shared_ptr<MaxPool2d> maxpool_;
  std::shared_ptr<Sequential> stages_[4];
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace

std::shared_ptr<Net> make_resnet18(const NetOptions& o) {
  static const int64_t layers[4] = {2, 2, 2, 2};
  return std::make_shared<ResNet<BasicBlock>>(o, layers);
}

std::shared_ptr<Net> make_resnet50(const NetOptions& o) {
  static const int64_t layers[4] = {3, 4, 6, 3};
  return std::make_shared<ResNet<Bottleneck>>(o, layers);
}

}  // namespace leuko::nets

// VGG16 (configuration D of Simonyan and Zisserman 2015), with or without batch norm, as
// torchvision builds it: 13 3x3 convolutions in five stages separated by 2x2 max pools
// (features), adaptive average pooling to 7x7, and three fully connected layers (classifier).
// Init as torchvision: conv kaiming_normal_(fan_out, relu), zero bias; batch norm 1 and 0;
// linear normal(0, 0.01), zero bias.
#include "nets/blocks.h"
#include "nets/nets.h"

namespace leuko::nets {

namespace {
// Output channels per conv; 0 is a max pool.
const int64_t kVgg16[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};

class VGG : public Net {
 public:
  VGG(const NetOptions& o, bool batch_norm) {
    const double p = o.dropout < 0 ? 0.5 : o.dropout;
    features_ = register_module("features", std::make_shared<Sequential>());
    int64_t in = 3;
    for (int64_t v : kVgg16) {
      if (v == 0) {
        features_->push_back(std::make_shared<MaxPool2d>(2, 2));
        continue;
      }
      features_->push_back(conv(in, v, 3, 1, 1));
      if (batch_norm) features_->push_back(std::make_shared<BatchNorm2d>(v));
      features_->push_back(std::make_shared<ReLU>(true));
      in = v;
    }
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(7, 7));
    classifier_ = register_module("classifier", std::make_shared<Sequential>());
    classifier_->push_back(std::make_shared<Linear>(512 * 7 * 7, 4096));
    classifier_->push_back(std::make_shared<ReLU>(true));
    classifier_->push_back(std::make_shared<Dropout>(p));
    classifier_->push_back(std::make_shared<Linear>(4096, 4096));
    classifier_->push_back(std::make_shared<ReLU>(true));
    classifier_->push_back(std::make_shared<Dropout>(p));
    classifier_->push_back(std::make_shared<Linear>(4096, o.num_classes));
    init_kaiming_fan_out(*this, 0.01);
  }
  std::string type_name() const override { return "VGG"; }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*features_)(x);  // (N, 512, 7, 7) at 224x224
    h = (*avgpool_)(h);
    return (*classifier_)(h.flatten(1));
  }

 private:
  std::shared_ptr<Sequential> features_, classifier_;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
};
}  // namespace

std::shared_ptr<Net> make_vgg16(const NetOptions& o, bool batch_norm) { return std::make_shared<VGG>(o, batch_norm); }

}  // namespace leuko::nets

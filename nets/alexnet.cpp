// AlexNet in torchvision's single-tower form (Krizhevsky 2014, "One weird trick"):
//   features:   conv 11x11/4 64 - relu - maxpool 3/2 - conv 5x5 192 - relu - maxpool 3/2 -
//               conv 3x3 384 - relu - conv 3x3 256 - relu - conv 3x3 256 - relu - maxpool 3/2
//   avgpool:    adaptive average to 6x6
//   classifier: dropout - fc 9216->4096 - relu - dropout - fc 4096->4096 - relu - fc 4096->classes
// With `lrn`, the original's local response normalisation (size 5, alpha 1e-4, beta 0.75, k 2)
// follows the first two ReLUs, as in Krizhevsky et al. 2012 (the state_dict indices shift).
// torchvision keeps PyTorch's default initialisation for AlexNet; so does leuko.
#include "layers/lrn.h"
#include "nets/blocks.h"
#include "nets/nets.h"

namespace leuko::nets {

namespace {
class AlexNet : public Net {
 public:
  AlexNet(const NetOptions& o, bool lrn) {
    const double p = o.dropout < 0 ? 0.5 : o.dropout;
    features_ = register_module("features", std::make_shared<Sequential>());
    features_->push_back(conv(3, 64, 11, 4, 2));
    features_->push_back(std::make_shared<ReLU>(true));
    if (lrn) features_->push_back(std::make_shared<LocalResponseNorm>(5, 1e-4, 0.75, 2.0));
    features_->push_back(std::make_shared<MaxPool2d>(3, 2));
    features_->push_back(conv(64, 192, 5, 1, 2));
    features_->push_back(std::make_shared<ReLU>(true));
    if (lrn) features_->push_back(std::make_shared<LocalResponseNorm>(5, 1e-4, 0.75, 2.0));
    features_->push_back(std::make_shared<MaxPool2d>(3, 2));
    features_->push_back(conv(192, 384, 3, 1, 1));
    features_->push_back(std::make_shared<ReLU>(true));
    features_->push_back(conv(384, 256, 3, 1, 1));
    features_->push_back(std::make_shared<ReLU>(true));
    features_->push_back(conv(256, 256, 3, 1, 1));
    features_->push_back(std::make_shared<ReLU>(true));
    features_->push_back(std::make_shared<MaxPool2d>(3, 2));
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(6, 6));
    classifier_ = register_module("classifier", std::make_shared<Sequential>());
    classifier_->push_back(std::make_shared<Dropout>(p));
    classifier_->push_back(std::make_shared<Linear>(256 * 6 * 6, 4096));
    classifier_->push_back(std::make_shared<ReLU>(true));
    classifier_->push_back(std::make_shared<Dropout>(p));
    classifier_->push_back(std::make_shared<Linear>(4096, 4096));
    classifier_->push_back(std::make_shared<ReLU>(true));
    classifier_->push_back(std::make_shared<Linear>(4096, o.num_classes));
  }
  std::string type_name() const override { return "AlexNet"; }
  Tensor forward(const Tensor& x) override {
    Tensor h = (*features_)(x);  // (N, 256, 6, 6) at 224x224
    h = (*avgpool_)(h);          // (N, 256, 6, 6)
    return (*classifier_)(h.flatten(1));
  }

 private:
  std::shared_ptr<Sequential> features_, classifier_;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
};
}  // namespace

std::shared_ptr<Net> make_alexnet(const NetOptions& o, bool lrn) { return std::make_shared<AlexNet>(o, lrn); }

}  // namespace leuko::nets

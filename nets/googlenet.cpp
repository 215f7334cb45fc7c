// GoogLeNet (Inception v1, Szegedy et al. 2015) as torchvision builds it: every convolution is
// a BasicConv2d (conv without bias, batch norm with eps 1e-3, relu), nine Inception blocks of
// four parallel branches concatenated along channels, and two auxiliary classifiers on 4a and
// 4d that are active in training (their losses weighted 0.3) and dropped in evaluation.
// torchvision's quirk is kept for weight compatibility: the "5x5" branch uses a 3x3 kernel.
// Init as torchvision: conv and linear weights trunc_normal_(0, 0.01, -2, 2), batch norm 1 and 0.
#include "layers/concat.h"
#include "nets/blocks.h"
#include "nets/inception_blocks.h"
#include "nets/nets.h"

namespace leuko::nets {

namespace {

class Inception : public Module {
 public:
  Inception(int64_t in, int64_t ch1x1, int64_t ch3x3red, int64_t ch3x3, int64_t ch5x5red, int64_t ch5x5,
            int64_t pool_proj) {
    branch1_ = register_module("branch1", std::make_shared<BasicConv2d>(in, ch1x1, 1));
    branch2_ = register_module("branch2", std::make_shared<Sequential>());
    branch2_->push_back(std::make_shared<BasicConv2d>(in, ch3x3red, 1));
    branch2_->push_back(std::make_shared<BasicConv2d>(ch3x3red, ch3x3, 3, 1, 1));
    branch3_ = register_module("branch3", std::make_shared<Sequential>());
    branch3_->push_back(std::make_shared<BasicConv2d>(in, ch5x5red, 1));
    branch3_->push_back(std::make_shared<BasicConv2d>(ch5x5red, ch5x5, 3, 1, 1));
    branch4_ = register_module("branch4", std::make_shared<Sequential>());
    branch4_->push_back(std::make_shared<MaxPool2d>(3, 1, 1, true));
    branch4_->push_back(std::make_shared<BasicConv2d>(in, pool_proj, 1));
  }
  std::string type_name() const override { return "Inception"; }
  Tensor forward(const Tensor& x) override {
    return cat({(*branch1_)(x), (*branch2_)(x), (*branch3_)(x), (*branch4_)(x)}, 1);
  }

 private:
  std::shared_ptr<BasicConv2d> branch1_;
  std::shared_ptr<Sequential> branch2_, branch3_, branch4_;
};

// On 4a (512 channels) and 4d (528): average to 4x4, 1x1 conv to 128, fc 2048 -> 1024,
// relu, dropout 0.7, fc 1024 -> classes.
class InceptionAux : public Module {
 public:
  InceptionAux(int64_t in, int64_t num_classes, double p) {
    conv_ = register_module("conv", std::make_shared<BasicConv2d>(in, 128, 1));
    fc1_ = register_module("fc1", std::make_shared<Linear>(2048, 1024));
    fc2_ = register_module("fc2", std::make_shared<Linear>(1024, num_classes));
    dropout_ = register_module("dropout", std::make_shared<Dropout>(p));
  }
  std::string type_name() const override { return "InceptionAux"; }
  Tensor forward(const Tensor& x) override {
    Tensor h = adaptive_avg_pool2d(x, 4, 4);  // (N, in, 4, 4)
    h = (*conv_)(h).flatten(1);               // (N, 2048)
    h = relu((*fc1_)(h));                     // (N, 1024)
    return (*fc2_)((*dropout_)(h));
  }

 private:
  std::shared_ptr<BasicConv2d> conv_;
  std::shared_ptr<Linear> fc1_, fc2_;
  std::shared_ptr<Dropout> dropout_;
};

class GoogLeNet : public Net {
 public:
  explicit GoogLeNet(const NetOptions& o) {
    conv1_ = register_module("conv1", std::make_shared<BasicConv2d>(3, 64, 7, 2, 3));
    maxpool1_ = register_module("maxpool1", std::make_shared<MaxPool2d>(3, 2, 0, true));
    conv2_ = register_module("conv2", std::make_shared<BasicConv2d>(64, 64, 1));
    conv3_ = register_module("conv3", std::make_shared<BasicConv2d>(64, 192, 3, 1, 1));
    maxpool2_ = register_module("maxpool2", std::make_shared<MaxPool2d>(3, 2, 0, true));
    i3a_ = register_module("inception3a", std::make_shared<Inception>(192, 64, 96, 128, 16, 32, 32));
    i3b_ = register_module("inception3b", std::make_shared<Inception>(256, 128, 128, 192, 32, 96, 64));
    maxpool3_ = register_module("maxpool3", std::make_shared<MaxPool2d>(3, 2, 0, true));
    i4a_ = register_module("inception4a", std::make_shared<Inception>(480, 192, 96, 208, 16, 48, 64));
    i4b_ = register_module("inception4b", std::make_shared<Inception>(512, 160, 112, 224, 24, 64, 64));
    i4c_ = register_module("inception4c", std::make_shared<Inception>(512, 128, 128, 256, 24, 64, 64));
    i4d_ = register_module("inception4d", std::make_shared<Inception>(512, 112, 144, 288, 32, 64, 64));
    i4e_ = register_module("inception4e", std::make_shared<Inception>(528, 256, 160, 320, 32, 128, 128));
    maxpool4_ = register_module("maxpool4", std::make_shared<MaxPool2d>(2, 2, 0, true));
    i5a_ = register_module("inception5a", std::make_shared<Inception>(832, 256, 160, 320, 32, 128, 128));
    i5b_ = register_module("inception5b", std::make_shared<Inception>(832, 384, 192, 384, 48, 128, 128));
    if (o.aux_logits) {
      const double p_aux = o.aux_dropout < 0 ? 0.7 : o.aux_dropout;
      aux1_ = register_module("aux1", std::make_shared<InceptionAux>(512, o.num_classes, p_aux));
      aux2_ = register_module("aux2", std::make_shared<InceptionAux>(528, o.num_classes, p_aux));
    }
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
    dropout_ = register_module("dropout", std::make_shared<Dropout>(o.dropout < 0 ? 0.2 : o.dropout));
    fc_ = register_module("fc", std::make_shared<Linear>(1024, o.num_classes));
    init_trunc_normal(*this, 0.01);
  }
  std::string type_name() const override { return "GoogLeNet"; }
  std::vector<double> aux_weights() const override {
    return aux1_ ? std::vector<double>{0.3, 0.3} : std::vector<double>{};
  }
  Tensor forward(const Tensor& x) override { return run(x, false)[0]; }
  std::vector<Tensor> forward_train(const Tensor& x) override { return run(x, is_training() && aux1_ != nullptr); }

 private:
  // Main logits, then (with aux) the logits of aux1 (on 4a) and aux2 (on 4d).
  std::vector<Tensor> run(const Tensor& x, bool aux) {
    Tensor h = (*maxpool1_)((*conv1_)(x));                    // (N, 64, 56, 56) at 224
    h = (*maxpool2_)((*conv3_)((*conv2_)(h)));                // (N, 192, 28, 28)
    h = (*maxpool3_)((*i3b_)((*i3a_)(h)));                    // (N, 480, 14, 14)
    h = (*i4a_)(h);                                           // (N, 512, 14, 14)
    Tensor a1 = aux ? (*aux1_)(h) : Tensor();
    h = (*i4d_)((*i4c_)((*i4b_)(h)));                         // (N, 528, 14, 14)
    Tensor a2 = aux ? (*aux2_)(h) : Tensor();
    h = (*maxpool4_)((*i4e_)(h));                             // (N, 832, 7, 7)
    h = (*i5b_)((*i5a_)(h));                                  // (N, 1024, 7, 7)
    h = (*dropout_)((*avgpool_)(h).flatten(1));               // (N, 1024)
    Tensor logits = (*fc_)(h);
    if (!aux) return {logits};
    return {logits, a1, a2};
  }

  std::shared_ptr<BasicConv2d> conv1_, conv2_, conv3_;
  std::shared_ptr<MaxPool2d> maxpool1_, maxpool2_, maxpool3_, maxpool4_;
  std::shared_ptr<Inception> i3a_, i3b_, i4a_, i4b_, i4c_, i4d_, i4e_, i5a_, i5b_;
  std::shared_ptr<InceptionAux> aux1_, aux2_;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace

std::shared_ptr<Net> make_googlenet(const NetOptions& o) { return std::make_shared<GoogLeNet>(o); }

std::shared_ptr<Module> make_googlenet_inception(int64_t in, int64_t ch1x1, int64_t ch3x3red, int64_t ch3x3,
                                                 int64_t ch5x5red, int64_t ch5x5, int64_t pool_proj) {
  return std::make_shared<Inception>(in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj);
}

}  // namespace leuko::nets

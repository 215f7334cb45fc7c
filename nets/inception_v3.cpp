// Inception-v3 (Szegedy et al. 2016) as torchvision builds it, for 299x299 inputs. The study's
// notebook trained this network under the name GoogLeNet; its auxiliary classifier (on
// Mixed_6e, active in training) is weighted 0.4 in the loss.
//   stem: 3x3/2 32 - 3x3 32 - 3x3 64 - maxpool 3/2 - 1x1 80 - 3x3 192 - maxpool 3/2
//   Mixed_5b..5d (InceptionA), 6a (B, reduction), 6b..6e (C, factorised 7x7),
//   7a (D, reduction), 7b..7c (E, expanded 3x3) - avgpool - dropout 0.5 - fc 2048 -> classes
// Init as torchvision: conv and linear weights trunc_normal_(0, 0.1, -2, 2), except the aux
// head's conv1 (0.01) and fc (0.001); batch norm 1 and 0.
#include "layers/concat.h"
#include "nets/blocks.h"
#include "nets/inception_blocks.h"
#include "nets/nets.h"

namespace leuko::nets {

namespace {

using P = Conv2dOptions::Pair;

// The base of the blocks below: registers a BasicConv2d under its torchvision name.
class Block : public Module {
 protected:
  std::shared_ptr<BasicConv2d> add(const std::string& name, int64_t in, int64_t out, P kernel, P stride = 1,
                                   P padding = 0) {
    return register_module(name, std::make_shared<BasicConv2d>(in, out, kernel, stride, padding));
  }
  static Tensor run(const std::shared_ptr<BasicConv2d>& m, const Tensor& x) { return (*m)(x); }
};

class InceptionA : public Block {
 public:
  InceptionA(int64_t in, int64_t pool_features) {
    b1x1_ = add("branch1x1", in, 64, 1);
    b5x5_1_ = add("branch5x5_1", in, 48, 1);
    b5x5_2_ = add("branch5x5_2", 48, 64, 5, 1, 2);
    b3dbl_1_ = add("branch3x3dbl_1", in, 64, 1);
    b3dbl_2_ = add("branch3x3dbl_2", 64, 96, 3, 1, 1);
    b3dbl_3_ = add("branch3x3dbl_3", 96, 96, 3, 1, 1);
    bpool_ = add("branch_pool", in, pool_features, 1);
  }
  std::string type_name() const override { return "InceptionA"; }
  Tensor forward(const Tensor& x) override {
    Tensor a = run(b1x1_, x);
    Tensor b = run(b5x5_2_, run(b5x5_1_, x));
    Tensor c = run(b3dbl_3_, run(b3dbl_2_, run(b3dbl_1_, x)));
    Tensor d = run(bpool_, avg_pool2d(x, 3, 1, 1));
    return cat({a, b, c, d}, 1);
  }

 private:
  std::shared_ptr<BasicConv2d> b1x1_, b5x5_1_, b5x5_2_, b3dbl_1_, b3dbl_2_, b3dbl_3_, bpool_;
};

class InceptionB : public Block {  // grid reduction 35x35 -> 17x17
 public:
  explicit InceptionB(int64_t in) {
    b3x3_ = add("branch3x3", in, 384, 3, 2);
    b3dbl_1_ = add("branch3x3dbl_1", in, 64, 1);
    b3dbl_2_ = add("branch3x3dbl_2", 64, 96, 3, 1, 1);
    b3dbl_3_ = add("branch3x3dbl_3", 96, 96, 3, 2);
  }
  std::string type_name() const override { return "InceptionB"; }
  Tensor forward(const Tensor& x) override {
    Tensor a = run(b3x3_, x);
    Tensor b = run(b3dbl_3_, run(b3dbl_2_, run(b3dbl_1_, x)));
    return cat({a, b, max_pool2d(x, 3, 2)}, 1);
  }

 private:
  std::shared_ptr<BasicConv2d> b3x3_, b3dbl_1_, b3dbl_2_, b3dbl_3_;
};

class InceptionC : public Block {  // 7x7 factorised into 1x7 and 7x1
 public:
  InceptionC(int64_t in, int64_t c7) {
    b1x1_ = add("branch1x1", in, 192, 1);
    b7_1_ = add("branch7x7_1", in, c7, 1);
    b7_2_ = add("branch7x7_2", c7, c7, P(1, 7), 1, P(0, 3));
    b7_3_ = add("branch7x7_3", c7, 192, P(7, 1), 1, P(3, 0));
    b7dbl_1_ = add("branch7x7dbl_1", in, c7, 1);
    b7dbl_2_ = add("branch7x7dbl_2", c7, c7, P(7, 1), 1, P(3, 0));
    b7dbl_3_ = add("branch7x7dbl_3", c7, c7, P(1, 7), 1, P(0, 3));
    b7dbl_4_ = add("branch7x7dbl_4", c7, c7, P(7, 1), 1, P(3, 0));
    b7dbl_5_ = add("branch7x7dbl_5", c7, 192, P(1, 7), 1, P(0, 3));
    bpool_ = add("branch_pool", in, 192, 1);
  }
  std::string type_name() const override { return "InceptionC"; }
  Tensor forward(const Tensor& x) override {
    Tensor a = run(b1x1_, x);
    Tensor b = run(b7_3_, run(b7_2_, run(b7_1_, x)));
    Tensor c = run(b7dbl_5_, run(b7dbl_4_, run(b7dbl_3_, run(b7dbl_2_, run(b7dbl_1_, x)))));
    Tensor d = run(bpool_, avg_pool2d(x, 3, 1, 1));
    return cat({a, b, c, d}, 1);
  }

 private:
  std::shared_ptr<BasicConv2d> b1x1_, b7_1_, b7_2_, b7_3_, b7dbl_1_, b7dbl_2_, b7dbl_3_, b7dbl_4_, b7dbl_5_, bpool_;
};

class InceptionD : public Block {  // grid reduction 17x17 -> 8x8
 public:
  explicit InceptionD(int64_t in) {
    b3_1_ = add("branch3x3_1", in, 192, 1);
    b3_2_ = add("branch3x3_2", 192, 320, 3, 2);
    b7x3_1_ = add("branch7x7x3_1", in, 192, 1);
    b7x3_2_ = add("branch7x7x3_2", 192, 192, P(1, 7), 1, P(0, 3));
    b7x3_3_ = add("branch7x7x3_3", 192, 192, P(7, 1), 1, P(3, 0));
    b7x3_4_ = add("branch7x7x3_4", 192, 192, 3, 2);
  }
  std::string type_name() const override { return "InceptionD"; }
  Tensor forward(const Tensor& x) override {
    Tensor a = run(b3_2_, run(b3_1_, x));
    Tensor b = run(b7x3_4_, run(b7x3_3_, run(b7x3_2_, run(b7x3_1_, x))));
    return cat({a, b, max_pool2d(x, 3, 2)}, 1);
  }

 private:
  std::shared_ptr<BasicConv2d> b3_1_, b3_2_, b7x3_1_, b7x3_2_, b7x3_3_, b7x3_4_;
};

class InceptionE : public Block {  // 3x3 expanded into parallel 1x3 and 3x1
 public:
  explicit InceptionE(int64_t in) {
    b1x1_ = add("branch1x1", in, 320, 1);
    b3_1_ = add("branch3x3_1", in, 384, 1);
    b3_2a_ = add("branch3x3_2a", 384, 384, P(1, 3), 1, P(0, 1));
    b3_2b_ = add("branch3x3_2b", 384, 384, P(3, 1), 1, P(1, 0));
    b3dbl_1_ = add("branch3x3dbl_1", in, 448, 1);
    b3dbl_2_ = add("branch3x3dbl_2", 448, 384, 3, 1, 1);
    b3dbl_3a_ = add("branch3x3dbl_3a", 384, 384, P(1, 3), 1, P(0, 1));
    b3dbl_3b_ = add("branch3x3dbl_3b", 384, 384, P(3, 1), 1, P(1, 0));
    bpool_ = add("branch_pool", in, 192, 1);
  }
  std::string type_name() const override { return "InceptionE"; }
  Tensor forward(const Tensor& x) override {
    Tensor a = run(b1x1_, x);
    Tensor t = run(b3_1_, x);
    Tensor b = cat({run(b3_2a_, t), run(b3_2b_, t)}, 1);
    Tensor u = run(b3dbl_2_, run(b3dbl_1_, x));
    Tensor c = cat({run(b3dbl_3a_, u), run(b3dbl_3b_, u)}, 1);
    Tensor d = run(bpool_, avg_pool2d(x, 3, 1, 1));
    return cat({a, b, c, d}, 1);
  }

 private:
  std::shared_ptr<BasicConv2d> b1x1_, b3_1_, b3_2a_, b3_2b_, b3dbl_1_, b3dbl_2_, b3dbl_3a_, b3dbl_3b_, bpool_;
};

// On Mixed_6e (768 channels, 17x17): avgpool 5/3 - 1x1 128 - 5x5 768 - avgpool to 1x1 - fc.
class InceptionAux : public Block {
 public:
  InceptionAux(int64_t in, int64_t num_classes) {
    conv0_ = add("conv0", in, 128, 1);
    conv1_ = add("conv1", 128, 768, 5);
    fc_ = register_module("fc", std::make_shared<Linear>(768, num_classes));
  }
  std::string type_name() const override { return "InceptionAux"; }
  Tensor forward(const Tensor& x) override {
    Tensor h = avg_pool2d(x, 5, 3);            // (N, 768, 5, 5)
    h = run(conv1_, run(conv0_, h));           // (N, 768, 1, 1)
    h = adaptive_avg_pool2d(h, 1, 1).flatten(1);
    return (*fc_)(h);
  }
  const Module* conv1() const { return conv1_.get(); }
  const Module* fc() const { return fc_.get(); }

 private:
  std::shared_ptr<BasicConv2d> conv0_, conv1_;
  std::shared_ptr<Linear> fc_;
};

class Inception3 : public Net {
 public:
  explicit Inception3(const NetOptions& o) {
    c1a_ = reg("Conv2d_1a_3x3", 3, 32, 3, 2);
    c2a_ = reg("Conv2d_2a_3x3", 32, 32, 3);
    c2b_ = reg("Conv2d_2b_3x3", 32, 64, 3, 1, 1);
    maxpool1_ = register_module("maxpool1", std::make_shared<MaxPool2d>(3, 2));
    c3b_ = reg("Conv2d_3b_1x1", 64, 80, 1);
    c4a_ = reg("Conv2d_4a_3x3", 80, 192, 3);
    maxpool2_ = register_module("maxpool2", std::make_shared<MaxPool2d>(3, 2));
    mixed_.push_back(register_module("Mixed_5b", std::make_shared<InceptionA>(192, 32)));
    mixed_.push_back(register_module("Mixed_5c", std::make_shared<InceptionA>(256, 64)));
    mixed_.push_back(register_module("Mixed_5d", std::make_shared<InceptionA>(288, 64)));
    mixed_.push_back(register_module("Mixed_6a", std::make_shared<InceptionB>(288)));
    mixed_.push_back(register_module("Mixed_6b", std::make_shared<InceptionC>(768, 128)));
    mixed_.push_back(register_module("Mixed_6c", std::make_shared<InceptionC>(768, 160)));
    mixed_.push_back(register_module("Mixed_6d", std::make_shared<InceptionC>(768, 160)));
    mixed_.push_back(register_module("Mixed_6e", std::make_shared<InceptionC>(768, 192)));
    if (o.aux_logits) aux_ = register_module("AuxLogits", std::make_shared<InceptionAux>(768, o.num_classes));
    late_.push_back(register_module("Mixed_7a", std::make_shared<InceptionD>(768)));
    late_.push_back(register_module("Mixed_7b", std::make_shared<InceptionE>(1280)));
    late_.push_back(register_module("Mixed_7c", std::make_shared<InceptionE>(2048)));
    avgpool_ = register_module("avgpool", std::make_shared<AdaptiveAvgPool2d>(1, 1));
    dropout_ = register_module("dropout", std::make_shared<Dropout>(o.dropout < 0 ? 0.5 : o.dropout));
    fc_ = register_module("fc", std::make_shared<Linear>(2048, o.num_classes));
    std::vector<std::pair<const Module*, double>> overrides;
    if (aux_) {
      // torchvision sets `stddev` on the aux head's conv1 (0.01) and fc (0.001); the conv's
      // stddev applies to the Conv2d inside the BasicConv2d.
      for (auto& [n, m] : aux_->named_modules()) {
        if (n == "conv1.conv") overrides.emplace_back(m, 0.01);
        if (n == "fc") overrides.emplace_back(m, 0.001);
      }
    }
    init_trunc_normal(*this, 0.1, overrides);
  }
  std::string type_name() const override { return "Inception3"; }
  int64_t default_input_size() const override { return 299; }
  std::vector<double> aux_weights() const override { return aux_ ? std::vector<double>{0.4} : std::vector<double>{}; }
  Tensor forward(const Tensor& x) override { return run(x, false)[0]; }
  std::vector<Tensor> forward_train(const Tensor& x) override { return run(x, is_training() && aux_ != nullptr); }

 private:
  std::shared_ptr<BasicConv2d> reg(const std::string& key, int64_t in, int64_t out, P k, P s = 1, P p = 0) {
    return register_module(key, std::make_shared<BasicConv2d>(in, out, k, s, p));
  }

  std::vector<Tensor> run(const Tensor& x, bool aux) {
    Tensor h = (*c2b_)((*c2a_)((*c1a_)(x)));   // (N, 64, 147, 147) at 299
    h = (*maxpool1_)(h);                      // (N, 64, 73, 73)
    h = (*maxpool2_)((*c4a_)((*c3b_)(h)));    // (N, 192, 35, 35)
    for (auto& m : mixed_) h = (*m)(h);       // (N, 768, 17, 17)
    Tensor a = aux ? (*aux_)(h) : Tensor();
    for (auto& m : late_) h = (*m)(h);        // (N, 2048, 8, 8)
    h = (*dropout_)((*avgpool_)(h).flatten(1));  // (N, 2048)
    Tensor logits = (*fc_)(h);
    if (!aux) return {logits};
    return {logits, a};
  }

  std::shared_ptr<BasicConv2d> c1a_, c2a_, c2b_, c3b_, c4a_;
  std::shared_ptr<MaxPool2d> maxpool1_, maxpool2_;
  std::vector<std::shared_ptr<Module>> mixed_, late_;
  std::shared_ptr<InceptionAux> aux_;
  std::shared_ptr<AdaptiveAvgPool2d> avgpool_;
  std::shared_ptr<Dropout> dropout_;
  std::shared_ptr<Linear> fc_;
};

}  // namespace

std::shared_ptr<Net> make_inception_v3(const NetOptions& o) { return std::make_shared<Inception3>(o); }

}  // namespace leuko::nets

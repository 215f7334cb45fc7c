// The networks' structure: parameter counts equal torchvision's, state_dict keys carry
// torchvision's names, forward shapes, auxiliary heads, and the initialisation schemes.
#include <cmath>
#include <map>
#include <set>

#include "helpers.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "nets/net.h"

namespace leuko::test {

namespace {
// Each network is built once for the whole file (VGG16 alone has 134M parameters to draw).
std::shared_ptr<Net> net_2(const std::string& name) {
  static std::map<std::string, std::shared_ptr<Net>> cache;
  auto& n = cache[name];
  if (!n) n = make_net(name, {});
  return n;
}

std::set<std::string> keys(const Module& m) {
  std::set<std::string> k;
  for (const auto& [n, t] : m.state_dict()) k.insert(n);
  return k;
}

// Standard deviation of a tensor's values.
double stddev(const Tensor& t) {
  std::vector<double> v = t.to_double_vector();
  double mean = 0, sq = 0;
  for (double x : v) mean += x;
  mean /= double(v.size());
  for (double x : v) sq += (x - mean) * (x - mean);
  return std::sqrt(sq / double(v.size()));
}
}  // namespace

TEST_CASE("parameter counts equal torchvision's (2 classes)") {
  // torchvision 0.14: sum(p.numel() for p in models.<name>(num_classes=2).parameters())
  const std::vector<std::pair<std::string, int64_t>> expected = {
      {"alexnet", 57012034},  {"vgg16", 134268738},  {"vgg16_bn", 134277186}, {"resnet50", 23512130},
      {"resnet18", 11177538}, {"googlenet", 9936038}, {"inception_v3", 24348900}};
  for (const auto& [name, count] : expected) {
    CAPTURE(name);
    CHECK(net_2(name)->parameter_count() == count);
  }
  NetOptions no_aux;
  no_aux.aux_logits = false;
  CHECK(make_net("googlenet", no_aux)->parameter_count() == 5601954);
}

TEST_CASE("state_dict keys are torchvision's") {
  SUBCASE("alexnet") {
    auto k = keys(*net_2("alexnet"));
    for (const char* key : {"features.0.weight", "features.0.bias", "features.3.weight", "features.10.bias",
                            "classifier.1.weight", "classifier.4.weight", "classifier.6.bias"})
      CHECK(k.count(key));
    CHECK(k.size() == 16);
  }
  SUBCASE("vgg16_bn") {
    auto k = keys(*net_2("vgg16_bn"));
    for (const char* key : {"features.0.weight", "features.1.running_mean", "features.1.num_batches_tracked",
                            "features.41.running_var", "classifier.0.weight", "classifier.6.bias"})
      CHECK(k.count(key));
  }
  SUBCASE("resnet50") {
    auto k = keys(*net_2("resnet50"));
    for (const char* key : {"conv1.weight", "bn1.running_mean", "bn1.num_batches_tracked", "layer1.0.conv1.weight",
                            "layer1.0.downsample.0.weight", "layer1.0.downsample.1.running_var",
                            "layer4.2.bn3.bias", "fc.weight", "fc.bias"})
      CHECK(k.count(key));
    CHECK(k.size() == 320);  // len(torchvision.models.resnet50().state_dict())
  }
  SUBCASE("googlenet") {
    auto k = keys(*net_2("googlenet"));
    for (const char* key : {"conv1.conv.weight", "conv1.bn.running_mean", "inception3a.branch1.conv.weight",
                            "inception3a.branch2.1.bn.weight", "inception4e.branch4.1.conv.weight",
                            "aux1.conv.conv.weight", "aux1.fc1.weight", "aux2.fc2.bias", "fc.weight"})
      CHECK(k.count(key));
    CHECK(k.size() == 364);  // len(torchvision.models.googlenet(aux_logits=True, init_weights=True).state_dict())
  }
  SUBCASE("inception_v3") {
    auto k = keys(*net_2("inception_v3"));
    for (const char* key : {"Conv2d_1a_3x3.conv.weight", "Mixed_5b.branch_pool.bn.running_var",
                            "Mixed_6e.branch7x7dbl_5.conv.weight", "AuxLogits.conv1.conv.weight", "AuxLogits.fc.bias",
                            "Mixed_7c.branch3x3dbl_3b.bn.num_batches_tracked", "fc.weight"})
      CHECK(k.count(key));
    CHECK(k.size() == 580);  // len(torchvision.models.inception_v3(aux_logits=True, init_weights=True).state_dict())
  }
}

TEST_CASE("forward shapes at small inputs, and the auxiliary heads in training only") {
  autograd::NoGradGuard no_grad;
  NetOptions o;
  o.num_classes = 3;
  {
    auto net = make_net("resnet18", o);
    net->eval();
    CHECK((*net)(Tensor::zeros({2, 3, 64, 64})).shape() == Shape{2, 3});
  }
  {
    auto net = make_net("googlenet", o);
    net->train();
    std::vector<Tensor> outs = net->forward_train(randn({2, 3, 96, 96}));
    REQUIRE(outs.size() == 3);
    for (const Tensor& t : outs) CHECK(t.shape() == Shape{2, 3});
    CHECK(net->aux_weights() == std::vector<double>{0.3, 0.3});
    net->eval();
    CHECK(net->forward_train(randn({1, 3, 96, 96})).size() == 1);
  }
  {
    auto net = make_net("inception_v3", o);
    CHECK(net->default_input_size() == 299);
    CHECK(net->aux_weights() == std::vector<double>{0.4});
  }
}

TEST_CASE("initialisation follows torchvision's schemes") {
  auto find = [](Module& m, const std::string& name) -> Module* {
    for (auto& [n, mod] : m.named_modules())
      if (n == name) return mod;
    FAIL("no module " << name);
    return nullptr;
  };
  SUBCASE("vgg16: conv kaiming_normal(fan_out, relu), linear normal(0, 0.01), zero biases") {
    auto net = net_2("vgg16");
    auto* c = dynamic_cast<Conv2d*>(find(*net, "features.28"));  // (512, 512, 3, 3): fan_out 4608
    REQUIRE(c != nullptr);
    CHECK(stddev(c->weight) == doctest::Approx(std::sqrt(2.0 / 4608)).epsilon(0.02));
    CHECK(max_abs_diff(c->bias, Tensor::zeros({512})) == 0.0);
    auto* l = dynamic_cast<Linear*>(find(*net, "classifier.3"));
    REQUIRE(l != nullptr);
    CHECK(stddev(l->weight) == doctest::Approx(0.01).epsilon(0.02));
  }
  SUBCASE("googlenet: trunc_normal(0, 0.01) within [-2, 2]") {
    auto net = net_2("googlenet");
    auto* c = dynamic_cast<Conv2d*>(find(*net, "inception4a.branch2.1.conv"));
    REQUIRE(c != nullptr);
    CHECK(stddev(c->weight) == doctest::Approx(0.01).epsilon(0.03));
  }
  SUBCASE("inception_v3: 0.1, the aux head's conv1 0.01 and fc 0.001") {
    auto net = net_2("inception_v3");
    auto* c = dynamic_cast<Conv2d*>(find(*net, "Mixed_6b.branch1x1.conv"));
    auto* aux_conv = dynamic_cast<Conv2d*>(find(*net, "AuxLogits.conv1.conv"));
    auto* aux_fc = dynamic_cast<Linear*>(find(*net, "AuxLogits.fc"));
    REQUIRE((c && aux_conv && aux_fc));
    // trunc_normal(0, 0.1, -2, 2) is barely truncated: std 0.1.
    CHECK(stddev(c->weight) == doctest::Approx(0.1).epsilon(0.03));
    CHECK(stddev(aux_conv->weight) == doctest::Approx(0.01).epsilon(0.03));
    CHECK(stddev(aux_fc->weight) == doctest::Approx(0.001).epsilon(0.05));
  }
  SUBCASE("alexnet keeps PyTorch's default: uniform within 1/sqrt(fan_in)") {
    auto net = net_2("alexnet");
    auto* c = dynamic_cast<Conv2d*>(find(*net, "features.0"));  // fan_in 3 * 11 * 11 = 363
    REQUIRE(c != nullptr);
    std::vector<double> v = c->weight.to_double_vector();
    const double bound = 1 / std::sqrt(363.0);
    double mx = 0;
    for (double x : v) mx = std::max(mx, std::fabs(x));
    CHECK(mx <= bound);
    CHECK(mx > 0.95 * bound);
  }
}

TEST_CASE("unknown networks and bad class counts are named") {
  CHECK_THROWS_WITH_AS(make_net("lenet", {}), doctest::Contains("--model: unknown network 'lenet'"), Error);
  NetOptions o;
  o.num_classes = 0;
  CHECK_THROWS_WITH_AS(make_net("resnet18", o), doctest::Contains("--classes"), Error);
}

}  // namespace leuko::test

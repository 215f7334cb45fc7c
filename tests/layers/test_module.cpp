// Module: names and order of parameters and buffers as PyTorch's, train/eval, state loading
// and its errors, saving to a file, placement, printing.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "helpers.h"
#include "layers/module.h"
#include "tensor/safetensors.h"

using namespace leuko;
using doctest::Contains;
namespace fs = std::filesystem;

namespace {

// y = x * weight + bias over the last dimension, with a buffer as batch norm's.
class Affine : public Module {
 public:
  explicit Affine(int64_t n) : n_(n) {
    weight = register_parameter("weight", Tensor::ones({n}));
    bias = register_parameter("bias", Tensor::zeros({n}));
    running_mean = register_buffer("running_mean", Tensor::zeros({n}));
  }
  Tensor forward(const Tensor& x) override { return add(mul(x, weight), bias); }
  std::string type_name() const override { return "Affine"; }
  std::string extra_repr() const override { return std::to_string(n_); }
  Tensor weight, bias, running_mean;

 private:
  int64_t n_;
};

// Counts its train() calls: the mode reaches every module through the virtual train().
class ModeProbe : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "ModeProbe"; }
  void train(bool on) override {
    calls++;
    Module::train(on);
  }
  int calls = 0;
};

// A child registered before the module's own parameter and buffer: PyTorch still lists its own
// tensors first.
class Net : public Module {
 public:
  Net() {
    features = register_module("features", std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                                               std::make_shared<Affine>(3), std::make_shared<Affine>(3)}));
    scale = register_parameter("scale", Tensor::full({1}, 2.0));
    count = register_buffer("count", Tensor::zeros({}, DType::i64));
    head = register_module("head", std::make_shared<Affine>(3));
  }
  Tensor forward(const Tensor& x) override { return (*head)(mul((*features)(x), scale)); }
  std::string type_name() const override { return "Net"; }
  std::string extra_repr() const override { return "scaled=True"; }
  std::shared_ptr<Sequential> features;
  std::shared_ptr<Affine> head;
  Tensor scale, count;
};

std::vector<std::string> names(const NamedTensors& nt) {
  std::vector<std::string> out;
  for (const auto& [n, t] : nt) out.push_back(n);
  return out;
}

// Every value of every state tensor, to see that a failed load changed nothing.
std::vector<std::vector<double>> snapshot(const Module& m) {
  std::vector<std::vector<double>> out;
  for (const auto& [n, t] : m.state_dict()) out.push_back(t.to_double_vector());
  return out;
}

// A state dict with every value of `m` replaced (v + 10), as new tensors.
NamedTensors shifted_state(const Module& m) {
  NamedTensors out;
  for (const auto& [n, t] : m.state_dict()) {
    Tensor c = t.detach().clone();
    c.copy_(add(t.detach().to(DType::f64), 10.0).to(t.dtype()));
    out.emplace_back(n, c);
  }
  return out;
}

NamedTensors without(NamedTensors s, const std::string& key) {
  s.erase(std::remove_if(s.begin(), s.end(), [&](const auto& p) { return p.first == key; }), s.end());
  return s;
}

}  // namespace

TEST_CASE("state_dict, parameters and buffers: PyTorch's names and order") {
  // The same module in PyTorch (features = nn.Sequential(Affine(3), Affine(3)), then
  // scale, count, head) lists exactly these keys, in this order.
  Net net;
  CHECK(names(net.state_dict()) == std::vector<std::string>{"scale", "count", "features.0.weight", "features.0.bias",
                                                            "features.0.running_mean", "features.1.weight",
                                                            "features.1.bias", "features.1.running_mean", "head.weight",
                                                            "head.bias", "head.running_mean"});
  CHECK(names(net.named_parameters()) == std::vector<std::string>{"scale", "features.0.weight", "features.0.bias",
                                                                  "features.1.weight", "features.1.bias", "head.weight",
                                                                  "head.bias"});
  CHECK(names(net.named_buffers()) ==
        std::vector<std::string>{"count", "features.0.running_mean", "features.1.running_mean", "head.running_mean"});
  CHECK(names(net.state_dict("model.")).front() == "model.scale");
  std::vector<std::string> modules;
  for (const auto& [n, m] : net.named_modules()) modules.push_back(n);
  CHECK(modules == std::vector<std::string>{"", "features", "features.0", "features.1", "head"});
  CHECK(net.named_modules()[4].second == net.head.get());

  // Parameters are leaves that require grad; buffers do not require grad.
  for (const Tensor& p : net.parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  for (const auto& [n, b] : net.named_buffers()) CHECK_FALSE(b.requires_grad());
  CHECK(net.parameters().size() == 7);
  CHECK(net.parameter_count() == 1 + 3 * 6);  // scale, then 3 Affines of 3 + 3

  // The registry holds the very tensors the members hold.
  CHECK(net.state_dict()[8].second.impl_ptr() == net.head->weight.impl_ptr());
  CHECK(net.named_buffers()[0].second.impl_ptr() == net.count.impl_ptr());

  CHECK(net.children().size() == 2);
  CHECK(net.features->size() == 2);
  CHECK(&(*net.features)[1] == net.features->children()[1].second.get());
}

TEST_CASE("forward runs the children; Sequential names them 0, 1, ...") {
  Net net;
  net.head->bias.fill_(1.0);
  // features: x * 1 + 0 twice, times scale 2, then head: * 1 + 1.
  Tensor y = net(Tensor::from_vector(std::vector<float>{1, 2, 3}, {1, 3}));
  CHECK(y.to_vector() == std::vector<float>{3, 5, 7});

  Sequential seq;
  seq.push_back(std::make_shared<Affine>(2));
  seq.add("named", std::make_shared<Affine>(2));
  seq.push_back(std::make_shared<Affine>(2));
  CHECK(names(seq.named_parameters()) ==
        std::vector<std::string>{"0.weight", "0.bias", "named.weight", "named.bias", "2.weight", "2.bias"});
  CHECK(seq.type_name() == "Sequential");

  // Backward reaches every parameter; zero_grad drops them all.
  sum(net(Tensor::ones({2, 3}))).backward();
  for (const Tensor& p : net.parameters()) CHECK(p.grad().defined());
  net.zero_grad();
  for (const Tensor& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("train and eval reach every module") {
  Net net;
  auto probe = std::make_shared<ModeProbe>();
  net.features->push_back(probe);
  CHECK(net.is_training());  // modules start in training mode, as PyTorch's
  net.eval();
  for (const auto& [n, m] : net.named_modules()) {
    CAPTURE(n);
    CHECK_FALSE(m->is_training());
  }
  CHECK(probe->calls == 1);
  net.train();
  for (const auto& [n, m] : net.named_modules()) CHECK(m->is_training());
  CHECK(probe->calls == 2);
  net.train(false);
  CHECK_FALSE(probe->is_training());
}

TEST_CASE("load_state_dict copies into the same tensors") {
  Net net;
  const void* storage = net.head->weight.raw_data();
  NamedTensors state = shifted_state(net);
  net.load_state_dict(state);
  CHECK(net.head->weight.to_vector() == std::vector<float>{11, 11, 11});
  CHECK(net.head->weight.raw_data() == storage);  // in place: optimizers keep their handles
  CHECK(net.count.data<int64_t>()[0] == 10);
  CHECK(net.scale.item() == 12.0);
  CHECK(net.head->weight.requires_grad());
  CHECK(net.head->weight.is_leaf());  // loading records no graph

  // float64 values load into float32 parameters (converted), in any order.
  NamedTensors f64;
  for (auto it = state.rbegin(); it != state.rend(); ++it) {
    f64.emplace_back(it->first, it->second.dtype() == DType::i64 ? it->second : it->second.to(DType::f64));
  }
  f64[0].second.fill_(5.0);  // head.running_mean
  net.load_state_dict(f64);
  CHECK(net.head->running_mean.to_vector() == std::vector<float>{5, 5, 5});
}

TEST_CASE("load_state_dict errors name the key and change nothing") {
  Net net;
  const auto before = snapshot(net);
  const NamedTensors good = shifted_state(net);  // every value differs from the model's

  SUBCASE("missing key") {
    CHECK_THROWS_WITH_AS(net.load_state_dict(without(good, "head.bias")),
                         Contains("missing key 'head.bias' (float32[3] on cpu)"), Error);
  }
  SUBCASE("unexpected key") {
    NamedTensors s = good;
    s.emplace_back("head.extra", Tensor::ones({3}));
    CHECK_THROWS_WITH_AS(net.load_state_dict(s), Contains("unexpected key 'head.extra'"), Error);
  }
  SUBCASE("shape mismatch") {
    NamedTensors s = good;
    s[9].second = Tensor::ones({4});  // head.bias
    CHECK_THROWS_WITH_AS(net.load_state_dict(s), Contains("key 'head.bias' has shape [4] where the model has [3]"),
                         Error);
  }
  SUBCASE("integer where the model has float") {
    NamedTensors s = good;
    s[10].second = Tensor::zeros({3}, DType::i64);  // head.running_mean
    CHECK_THROWS_WITH_AS(net.load_state_dict(s),
                         Contains("key 'head.running_mean' is int64 where the model has float32"), Error);
  }
  SUBCASE("file: the message starts with the path") {
    const std::string path =
        (fs::temp_directory_path() / ("leuko_test_module_" + std::to_string(::getpid()) + ".safetensors")).string();
    save_safetensors(path, without(good, "features.1.bias"));
    const std::string msg = [&] {
      try {
        net.load(path);
      } catch (const Error& e) {
        return std::string(e.what());
      }
      return std::string();
    }();
    fs::remove(path);
    CHECK(msg.find(path + ": missing key 'features.1.bias'") == 0);
  }
  CHECK(snapshot(net) == before);  // nothing loaded, not even the keys before the bad one
}

TEST_CASE("load_state_dict, not strict: loads what matches, skips the rest") {
  Net net;
  NamedTensors s = without(shifted_state(net), "scale");
  s.emplace_back("unknown.weight", Tensor::ones({7}));
  net.load_state_dict(s, /*strict=*/false);
  CHECK(net.scale.item() == 2.0);  // missing: kept
  CHECK(net.head->weight.to_vector() == std::vector<float>{11, 11, 11});
  // A shape mismatch is an error even when not strict.
  NamedTensors bad = {{"head.weight", Tensor::ones({2})}};
  CHECK_THROWS_WITH_AS(net.load_state_dict(bad, false), Contains("key 'head.weight' has shape [2]"), Error);
}

TEST_CASE("save and load through a file") {
  const std::string path =
      (fs::temp_directory_path() / ("leuko_test_module_rt_" + std::to_string(::getpid()) + ".safetensors")).string();
  Net a;
  a.load_state_dict(shifted_state(a));
  a.head->weight.copy_(Tensor::from_vector(std::vector<float>{0.5f, -1.5f, 1e-7f}, {3}));
  a.save(path, {{"epoch", "7"}});
  SafetensorsFile f = load_safetensors(path);
  CHECK(f.metadata.at("epoch") == "7");
  CHECK(f.tensors.size() == a.state_dict().size());

  Net b;
  b.load(path);
  fs::remove(path);
  const NamedTensors sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); i++) {
    CAPTURE(sa[i].first);
    CHECK(sb[i].second.dtype() == sa[i].second.dtype());
    CHECK(sb[i].second.to_double_vector() == sa[i].second.to_double_vector());
  }
}

TEST_CASE("to(Device::CPU) on a CPU module changes nothing") {
  Net net;
  std::vector<const void*> ptrs;
  for (const auto& [n, t] : net.state_dict()) ptrs.push_back(t.raw_data());
  net.to(Device::CPU);
  size_t i = 0;
  for (const auto& [n, t] : net.state_dict()) CHECK(t.raw_data() == ptrs[i++]);
  Tensor t = Tensor::ones({2});
  move_tensor_to(t, Device::CPU);
  Tensor undefined;
  move_tensor_to(undefined, Device::CPU);  // an undefined tensor is left alone
  CHECK_FALSE(undefined.defined());
}

TEST_CASE("repr prints the tree as PyTorch does") {
  // PyTorch prints this module (with the same extra_repr) exactly so.
  Net net;
  CHECK(net.repr() ==
        "Net(\n"
        "  scaled=True\n"
        "  (features): Sequential(\n"
        "    (0): Affine(3)\n"
        "    (1): Affine(3)\n"
        "  )\n"
        "  (head): Affine(3)\n"
        ")");
  CHECK(Affine(5).repr() == "Affine(5)");
  CHECK(Sequential().repr() == "Sequential()");
}

// bf16 activations on the GPU (tensor/device.h bf16_activations()): conv2d through cuDNN on bf16
// tensors and linear through cuBLAS on bf16 operands, against the CPU reference (the float32 op
// on the same rounded values, tests/layers/test_bf16_conv_linear.cpp); autocast on the GPU; a
// whole ResNet-18 step in bf16 against the CPU's; and the point of it all, a lower peak memory.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "nets/nets.h"
#include "tensor/allocator.h"
#include "tensor/device.h"
#include "tensor/random.h"

using namespace leuko;
using leuko::test::PrecisionScope;
using V = const std::vector<Tensor>&;

namespace {

struct Config {
  std::string name;
  Shape x, w;
  Conv2dOptions opt;
};

const std::vector<Config> kConfigs = {
    {"3x3", {2, 3, 9, 9}, {4, 3, 3, 3}, {}},
    {"stride 2, padding 1", {3, 5, 17, 15}, {7, 5, 3, 3}, {2, 1}},
    {"groups 2, (2, 3) kernel, stride (1, 2)", {2, 6, 11, 12}, {4, 3, 2, 3}, {{1, 2}, {1, 0}, 1, 2}},
    {"1x1", {4, 16, 7, 9}, {8, 16, 1, 1}, {}},
    {"11x11 stride 4 padding 2 (AlexNet's first), 3 channels", {2, 3, 67, 67}, {16, 3, 11, 11}, {4, 2}},
    {"7x7 stride 2 padding 3 (ResNet's stem), 3 channels", {2, 3, 32, 32}, {8, 3, 7, 7}, {2, 3}},
    {"1x1 stride 2 (a ResNet projection)", {2, 32, 14, 14}, {64, 32, 1, 1}, {2, 0}},
    {"wide: 64 -> 128 channels, 28x28, batch 8", {8, 64, 28, 28}, {128, 64, 3, 3}, {1, 1}},
};

// Sums of bf16 products in another order and the GPU's second rounding (cuDNN writes bf16, the
// bias is added after): about one bf16 step (2^-8) on some elements, 1e-2 in relative norm.
constexpr double kTol = 1e-2;

}  // namespace

TEST_CASE("bf16 conv2d and conv2d_relu on the GPU match the CPU reference, NCHW and channels_last") {
  uint64_t seed = 300;
  // channels_last: cuDNN's NHWC kernels with the filter as (K, R, S, Cg), what the networks run
  // under --precision bf16; the 3-channel first convolutions are the unusual NHWC case.
  for (bool cl : {false, true}) {
    for (const Config& c : kConfigs) {
      INFO("config: " << c.name << (cl ? ", channels_last" : ", NCHW"));
      const Conv2dOptions o = c.opt;
      std::vector<Tensor> in = {test::leaf(test::randn_t(c.x, seed, DType::f32)),
                                test::leaf(test::randn_t(c.w, seed + 1, DType::f32)),
                                test::leaf(test::randn_t({c.w[0]}, seed + 2, DType::f32))};
      test::check_bf16_gpu_matches_cpu([o](V a) { return conv2d(a[0], a[1], a[2], o); }, in, {true, false, false}, kTol,
                                       seed + 3, cl);
      test::check_bf16_gpu_matches_cpu([o](V a) { return conv2d_relu(a[0], a[1], a[2], o); }, in, {true, false, false},
                                       kTol, seed + 4, cl);
      test::check_bf16_gpu_matches_cpu([o](V a) { return conv2d(a[0], a[1], Tensor(), o); }, {in[0], in[1]},
                                       {true, false}, kTol, seed + 5, cl);
      seed += 10;
    }
  }
}

TEST_CASE("bf16 linear and linear_relu on the GPU match the CPU reference") {
  // Odd leading dimensions, and a classifier's size (tensor-core tiles, several of them).
  for (const Shape& xw : std::vector<Shape>{{6, 37, 11}, {64, 512, 1000}}) {
    INFO("x (" << xw[0] << ", " << xw[1] << "), " << xw[2] << " outputs");
    std::vector<Tensor> in = {test::leaf(test::randn_t({xw[0], xw[1]}, 1, DType::f32)),
                              test::leaf(test::randn_t({xw[2], xw[1]}, 2, DType::f32)),
                              test::leaf(test::randn_t({xw[2]}, 3, DType::f32))};
    test::check_bf16_gpu_matches_cpu([](V a) { return linear(a[0], a[1], a[2]); }, in, {true, false, false}, kTol);
    test::check_bf16_gpu_matches_cpu([](V a) { return linear_relu(a[0], a[1], a[2]); }, in, {true, false, false}, kTol);
    test::check_bf16_gpu_matches_cpu([](V a) { return linear(a[0], a[1], Tensor()); }, {in[0], in[1]}, {true, false},
                                     kTol);
  }
}

TEST_CASE("bf16 autocast on the GPU: a float32 input to conv2d gives a bf16 output, float32 gradients") {
  PrecisionScope bf16(Precision::bf16);
  Tensor x = test::leaf(test::randn_t({2, 3, 8, 8}, 5, DType::f32).cuda());
  Tensor w = test::leaf(test::randn_t({4, 3, 3, 3}, 6, DType::f32).cuda());
  Tensor y = conv2d(x, w, Tensor());
  CHECK(y.dtype() == DType::bf16);
  Tensor loss = cross_entropy(linear(y.flatten(1), test::randn_t({3, 4 * 6 * 6}, 7, DType::f32).cuda(), Tensor()),
                              Tensor::from_vector(std::vector<int64_t>{0, 2}, {2}, Device::CUDA));
  CHECK(loss.dtype() == DType::f32);
  loss.backward();
  CHECK(x.grad().dtype() == DType::f32);
  CHECK(w.grad().dtype() == DType::f32);
}

namespace {
// One ResNet-18 training step's loss and parameter gradients, on `dev`, with the same weights.
struct Step {
  double loss = 0;
  std::vector<Tensor> grads;  // CPU copies, float32
  Tensor logits;              // CPU copy
};
Step resnet_step(Device dev, int64_t batch, int64_t size) {
  NetOptions o;
  o.num_classes = 3;
  manual_seed(42);  // make_net draws from the default generator: the same weights on every call
  auto net = make_net("resnet18", o);
  if (dev == Device::CUDA) net->to(Device::CUDA);
  net->train();
  Tensor x = test::randn_t({batch, 3, size, size}, 11, DType::f32);
  std::vector<int64_t> lab;
  for (int64_t i = 0; i < batch; i++) lab.push_back(i % 3);
  Tensor labels = Tensor::from_vector(lab, {batch});
  if (dev == Device::CUDA) x = x.cuda(), labels = labels.cuda();
  Tensor logits = (*net)(x);
  Tensor loss = cross_entropy(logits, labels);
  loss.backward();
  Step s;
  s.loss = loss.item();
  s.logits = logits.detach().cpu().to(DType::f32);  // bf16 under bf16 activations
  for (auto& [name, p] : net->named_parameters()) s.grads.push_back(p.grad().cpu());
  return s;
}
}  // namespace

// The distance of all gradients together from a reference step's (relative norm).
double grads_distance(const Step& a, const Step& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.grads.size(); i++) {
    const std::vector<double> x = a.grads[i].to_double_vector(), y = ref.grads[i].to_double_vector();
    for (size_t j = 0; j < y.size(); j++) num += (x[j] - y[j]) * (x[j] - y[j]), den += y[j] * y[j];
  }
  return std::sqrt(num / den);
}

TEST_CASE("bf16 ResNet-18 step on the GPU: as close to the float32 step as the CPU's bf16 step") {
  // A network's gradient at initialisation moves far under any rounding (batch norm's backward
  // cancels, max pool's ties: tests/nets/test_nets_bf16.cpp measures it), and the two devices
  // sum in different orders, so the GPU's bf16 step cannot be held element by element to the
  // CPU's. It must be bf16's kind of error, though: no farther from the CPU's float32 step than
  // twice the CPU's own bf16 step is.
  Step fp32, cpu, gpu;
  {
    PrecisionScope p(Precision::fp32);
    fp32 = resnet_step(Device::CPU, 8, 64);
  }
  {
    PrecisionScope p(Precision::bf16);
    cpu = resnet_step(Device::CPU, 8, 64);
    gpu = resnet_step(Device::CUDA, 8, 64);
  }
  REQUIRE(gpu.grads.size() == fp32.grads.size());
  for (const Tensor& g : gpu.grads) CHECK(g.dtype() == DType::f32);
  CHECK(std::fabs(gpu.loss - fp32.loss) <= 2e-2 * std::fabs(fp32.loss));
  const double d_cpu = grads_distance(cpu, fp32), d_gpu = grads_distance(gpu, fp32);
  MESSAGE("gradient distance from the CPU's float32 step: CPU bf16 " << d_cpu << ", GPU bf16 " << d_gpu);
  CHECK(d_gpu <= 2 * d_cpu + 0.02);
  const double l_cpu = test::rel_error(cpu.logits, fp32.logits), l_gpu = test::rel_error(gpu.logits, fp32.logits);
  MESSAGE("logits' distance from the CPU's float32 step: CPU bf16 " << l_cpu << ", GPU bf16 " << l_gpu);
  CHECK(l_gpu <= 2 * l_cpu + 1e-2);
}

TEST_CASE("bf16 activations lower the peak memory of a training step") {
  // A first step of each precision chooses cuDNN's algorithms, whose search grows the shared
  // workspace; the measured steps come after both, so neither pays for it.
  for (Precision p : {Precision::fp32, Precision::bf16}) {
    PrecisionScope scope(p);
    resnet_step(Device::CUDA, 32, 112);
  }
  auto peak = [](Precision p) {
    PrecisionScope scope(p);
    cuda_synchronize();
    reset_peak_memory(Device::CUDA);
    const double before = double(memory_stats(Device::CUDA).current);
    resnet_step(Device::CUDA, 32, 112);
    cuda_synchronize();
    return (double(memory_stats(Device::CUDA).peak) - before) / double(1 << 20);  // MiB
  };
  const double fp32 = peak(Precision::fp32), bf16 = peak(Precision::bf16);
  MESSAGE("ResNet-18, batch 32 at 112x112, peak above the start: fp32 " << fp32 << " MiB, bf16 " << bf16 << " MiB");
  CHECK(bf16 < fp32);
}

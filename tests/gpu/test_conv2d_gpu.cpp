// conv2d on the GPU (cuDNN, float32) against the CPU (float64): forward, data, weight and bias
// gradients, on the configurations of the CPU tests and on random odd shapes; strict fp32 and
// TF32; the algorithm cache.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/activation.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "tensor/allocator.h"
#include "tensor/device.h"

using namespace leuko;
using leuko::test::PrecisionScope;
using V = const std::vector<Tensor>&;

namespace {

struct Config {
  std::string name;
  Shape x, w;
  Conv2dOptions opt;
  bool bias = true;
  bool x_grad = true;
};

const std::vector<Config> kConfigs = {
    {"3x3", {2, 3, 9, 9}, {4, 3, 3, 3}, {}},
    {"stride 2, padding 1", {3, 5, 17, 15}, {7, 5, 3, 3}, {2, 1}},
    {"padding 2, 5x5", {2, 3, 11, 13}, {6, 3, 5, 5}, {1, 2}},
    {"dilation 2, padding 2", {2, 4, 15, 13}, {5, 4, 3, 3}, {1, 2, 2}},
    {"groups 2, (2, 3) kernel, stride (1, 2)", {2, 6, 11, 12}, {4, 3, 2, 3}, {{1, 2}, {1, 0}, 1, 2}},
    {"depthwise", {3, 8, 13, 13}, {8, 1, 3, 3}, {1, 1, 1, 8}},
    {"1x1, no bias", {4, 16, 7, 9}, {8, 16, 1, 1}, {}, false},
    {"1x1 stride 2", {2, 6, 9, 11}, {5, 6, 1, 1}, {2}},
    {"11x11 stride 4 padding 2 (AlexNet conv1 on 67x67)", {2, 3, 67, 67}, {16, 3, 11, 11}, {4, 2}},
    {"first layer: input without grad", {2, 3, 19, 17}, {8, 3, 3, 3}, {1, 1}, true, false},
    {"wide: 64 -> 128 channels, 28x28, batch 8", {8, 64, 28, 28}, {128, 64, 3, 3}, {1, 1}},
};

void run(const Config& c, double tol, uint64_t seed) {
  INFO("config: " << c.name);
  Tensor x = test::randn_t(c.x, seed, DType::f32);
  if (c.x_grad) x.set_requires_grad(true);
  std::vector<Tensor> inputs = {x, test::leaf(test::randn_t(c.w, seed + 1, DType::f32))};
  const Conv2dOptions opt = c.opt;
  if (c.bias) {
    inputs.push_back(test::leaf(test::randn_t({c.w[0]}, seed + 2, DType::f32)));
    test::check_gpu_matches_cpu([opt](V in) { return conv2d(in[0], in[1], in[2], opt); }, inputs, tol, seed + 3);
  } else {
    test::check_gpu_matches_cpu([opt](V in) { return conv2d(in[0], in[1], Tensor(), opt); }, inputs, tol, seed + 3);
  }
}

// A random geometry with odd sizes: N 1..4, C and K 1..9, H and W 5..26, kernels 1..5, stride
// 1..3, padding 0..2, dilation 1..2, groups 1..3 (channels made divisible); resized until the
// output is at least 1x1.
Config random_config(Generator& g) {
  auto pick = [&](int64_t lo, int64_t hi) { return lo + int64_t(g.below(uint64_t(hi - lo + 1))); };
  Config c;
  const int64_t groups = pick(1, 3);
  const int64_t cg = pick(1, 3), kg = pick(1, 3), R = pick(1, 5), S = pick(1, 5);
  c.opt = Conv2dOptions{{pick(1, 3), pick(1, 3)}, {pick(0, 2), pick(0, 2)}, {pick(1, 2), pick(1, 2)}, groups};
  const int64_t min_h = c.opt.dilation.h * (R - 1) + 1, min_w = c.opt.dilation.w * (S - 1) + 1;
  c.x = {pick(1, 4), cg * groups, std::max(min_h, pick(5, 26)), std::max(min_w, pick(5, 26))};
  c.w = {kg * groups, cg, R, S};
  c.bias = g.below(2) == 0;
  c.name = "random x " + shape_str(c.x) + " w " + shape_str(c.w) + " stride (" + std::to_string(c.opt.stride.h) +
           ", " + std::to_string(c.opt.stride.w) + ") padding (" + std::to_string(c.opt.padding.h) + ", " +
           std::to_string(c.opt.padding.w) + ") dilation (" + std::to_string(c.opt.dilation.h) + ", " +
           std::to_string(c.opt.dilation.w) + ") groups " + std::to_string(groups);
  return c;
}

}  // namespace

TEST_CASE("conv2d GPU: strict fp32 matches the CPU on every configuration") {
  PrecisionScope fp32(Precision::fp32);
  uint64_t seed = 100;
  // Strict float32 (FMA math, no TF32) against float64: rounding of sums of up to ~600 terms
  // (forward and data gradient) or N*P*Q terms (weight gradient), measured as the relative
  // norm of the difference: 1e-5.
  for (const Config& c : kConfigs) run(c, 1e-5, seed += 10);
}

TEST_CASE("conv2d GPU: strict fp32 matches the CPU on random odd shapes") {
  PrecisionScope fp32(Precision::fp32);
  Generator g(2024);
  uint64_t seed = 1000;
  for (int i = 0; i < 12; i++) run(random_config(g), 1e-5, seed += 10);  // as above: 1e-5 relative
}

TEST_CASE("conv2d GPU: TF32 is close to the CPU") {
  PrecisionScope tf32(Precision::tf32);
  uint64_t seed = 2000;
  // TF32 keeps 10 bits of mantissa in the products (relative rounding ~5e-4 per term): 1e-2
  // on the relative norm of the difference.
  for (const Config& c : kConfigs) run(c, 1e-2, seed += 10);
}

TEST_CASE("conv2d GPU: the algorithm is searched once per shape, and a second call gives the same result") {
  PrecisionScope fp32(Precision::fp32);
  // A geometry no other test uses, so its first call must search.
  const Conv2dOptions opt{{1, 2}, {2, 1}, {1, 1}, 1};
  Tensor x = test::leaf(test::randn_t({3, 5, 21, 19}, 3001, DType::f32, Device::CUDA));
  Tensor w = test::leaf(test::randn_t({7, 5, 3, 4}, 3002, DType::f32, Device::CUDA));
  Tensor b = test::leaf(test::randn_t({7}, 3003, DType::f32, Device::CUDA));
  const int64_t s0 = conv2d_algorithm_searches();
  Tensor y1 = conv2d(x, w, b, opt);
  const int64_t s1 = conv2d_algorithm_searches();
  CHECK(s1 == s0 + 1);  // the forward direction, searched once
  Tensor y2 = conv2d(x, w, b, opt);
  CHECK(conv2d_algorithm_searches() == s1);  // cached: no second search
  CHECK(test::max_abs_diff(y1, y2) == 0.0);  // the same algorithm on the same data: bitwise equal

  Tensor dy = test::randn_t(y1.shape(), 3004, DType::f32, Device::CUDA);
  y1.backward(dy);
  const int64_t s2 = conv2d_algorithm_searches();
  CHECK(s2 == s1 + 2);  // backward data and backward filter, once each
  Tensor gx = x.grad().clone(), gw = w.grad().clone(), gb = b.grad().clone();
  x.zero_grad();
  w.zero_grad();
  b.zero_grad();
  y2.backward(dy);
  CHECK(conv2d_algorithm_searches() == s2);
  // Without set_deterministic the backward may add with atomics (cuDNN's algorithms 0 and 3,
  // allowed when timing finds them fastest): the same values up to float32 rounding. Bit for
  // bit under set_deterministic: the test case below.
  CHECK(test::rel_error(x.grad(), gx) <= 1e-5);
  CHECK(test::rel_error(w.grad(), gw) <= 1e-5);
  CHECK(test::max_abs_diff(b.grad(), gb) == 0.0);  // leuko's own bias kernel: no atomics

  // Another precision is another key: TF32 searches again for the same shape.
  {
    PrecisionScope tf32(Precision::tf32);
    Tensor y3 = conv2d(x.detach(), w.detach(), b.detach(), opt);
    CHECK(conv2d_algorithm_searches() == s2 + 1);
    CHECK(test::rel_error(y3, y1) <= 1e-2);  // TF32 against fp32: 1e-2 relative
  }
}

TEST_CASE("conv2d GPU: the cuDNN workspace is freed once each call is queued") {
  // A convolution's workspace lives for its call only (layers/conv2d.cpp WorkspaceScope): once
  // a forward and backward are done and their tensors dropped, the memory in use is what it
  // was before (a buffer kept between calls would stay). The first round searches the
  // algorithms (its scratch is freed too); the second runs the chosen ones.
  PrecisionScope fp32(Precision::fp32);
  Tensor x = test::leaf(test::randn_t({8, 64, 56, 56}, 3101, DType::f32, Device::CUDA));
  Tensor w = test::leaf(test::randn_t({64, 64, 3, 3}, 3102, DType::f32, Device::CUDA));
  Tensor dy = test::randn_t({8, 64, 56, 56}, 3103, DType::f32, Device::CUDA);
  const Conv2dOptions opt{{1, 1}, {1, 1}, {1, 1}, 1};
  for (int round = 0; round < 2; round++) {
    CAPTURE(round);
    cuda_synchronize();
    const size_t base = memory_stats(Device::CUDA).current;
    reset_peak_memory(Device::CUDA);
    conv2d(x, w, Tensor(), opt).backward(dy);
    x.zero_grad();
    w.zero_grad();
    const MemoryStats m = memory_stats(Device::CUDA);
    CHECK(m.current == base);
    // Above the output and the two gradients at the peak: the workspaces (and the search's
    // scratch in round 0). Said, so that a run whose algorithms need none is seen to test less.
    const size_t tensors = 8 * 64 * 56 * 56 * 4 * 2 + 64 * 64 * 9 * 4;
    MESSAGE("round " << round << ": peak " << (m.peak - base) / 1024 << " KiB above the start, tensors "
                     << tensors / 1024 << " KiB");
  }
}

TEST_CASE("conv2d GPU: with set_deterministic the backward repeats bit for bit") {
  PrecisionScope fp32(Precision::fp32);
  const bool was = deterministic();
  set_deterministic(true);  // cuDNN's deterministic algorithms only, chosen by its heuristics
  // Shapes where cuDNN's atomics-based backward algorithms are candidates: many images summed
  // into few filter weights, a 1x1 convolution as in ResNet's bottlenecks.
  for (const Conv2dOptions& opt : {Conv2dOptions{1, 1}, Conv2dOptions{1, 0}}) {
    const int64_t k = opt.padding.h == 1 ? 3 : 1;
    Tensor x = test::leaf(test::randn_t({16, 32, 28, 28}, 3101, DType::f32, Device::CUDA));
    Tensor w = test::leaf(test::randn_t({64, 32, k, k}, 3102, DType::f32, Device::CUDA));
    Tensor dy = test::randn_t({16, 64, 28, 28}, 3103, DType::f32, Device::CUDA);
    conv2d(x, w, Tensor(), opt).backward(dy);
    Tensor gx = x.grad().clone(), gw = w.grad().clone();
    for (int repeat = 0; repeat < 3; repeat++) {
      x.zero_grad();
      w.zero_grad();
      conv2d(x, w, Tensor(), opt).backward(dy);
      CAPTURE(k);
      CHECK(test::max_abs_diff(x.grad(), gx) == 0.0);
      CHECK(test::max_abs_diff(w.grad(), gw) == 0.0);
    }
  }
  set_deterministic(was);
}

TEST_CASE("conv2d GPU: Conv2d module moved to the GPU matches its CPU copy") {
  PrecisionScope fp32(Precision::fp32);
  Generator gen(9);
  Conv2d m(3, 8, {5, 3}, {2, {2, 1}}, true, gen);
  Tensor x = test::randn_t({2, 3, 17, 14}, 4001, DType::f32);
  Tensor y_cpu = m(x);
  m.to(Device::CUDA);
  CHECK(m.weight.is_cuda());
  Tensor y_gpu = m(x.cuda());
  CHECK(test::rel_error(y_gpu, y_cpu) <= 1e-5);  // float32 on both sides, different sum orders: 1e-5
}

TEST_CASE("conv2d_relu and linear_relu: on the GPU, relu of the op bit for bit, values and gradients") {
  // conv2d and linear are held to the CPU above; the fused ops must give the unfused bits.
  PrecisionScope fp32(Precision::fp32);
  for (bool with_bias : {true, false}) {
    CAPTURE(with_bias);
    const Tensor x0 = test::randn_t({4, 8, 17, 15}, 3201, DType::f32, Device::CUDA);
    const Tensor w0 = test::randn_t({16, 8, 3, 3}, 3202, DType::f32, Device::CUDA);
    const Tensor b0 = test::randn_t({16}, 3203, DType::f32, Device::CUDA);
    const Tensor dy = test::randn_t({4, 16, 17, 15}, 3204, DType::f32, Device::CUDA);
    auto run = [&](bool fused) {
      Tensor x = test::leaf(x0.clone()), w = test::leaf(w0.clone()), b = with_bias ? test::leaf(b0.clone()) : Tensor();
      Tensor y = fused ? conv2d_relu(x, w, b, Conv2dOptions{1, 1}) : relu(conv2d(x, w, b, Conv2dOptions{1, 1}));
      y.backward(dy);
      return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), with_bias ? b.grad() : x.grad()};
    };
    const std::vector<Tensor> fused = run(true), plain = run(false);
    for (size_t i = 0; i < fused.size(); i++) {
      CAPTURE(i);
      // The same algorithms (cached per shape) on the same data: bitwise, unless timing chose an
      // atomics-based backward (allowed without set_deterministic): then rounding only.
      CHECK(test::rel_error(fused[i], plain[i]) <= 1e-6);
      if (i == 0) CHECK(test::max_abs_diff(fused[i], plain[i]) == 0.0);
    }
    const Tensor lx = test::randn_t({32, 100}, 3205, DType::f32, Device::CUDA);
    const Tensor lw = test::randn_t({50, 100}, 3206, DType::f32, Device::CUDA);
    const Tensor lb = test::randn_t({50}, 3207, DType::f32, Device::CUDA);
    const Tensor ldy = test::randn_t({32, 50}, 3208, DType::f32, Device::CUDA);
    auto run_linear = [&](bool fuse) {
      Tensor x = test::leaf(lx.clone()), w = test::leaf(lw.clone()), b = with_bias ? test::leaf(lb.clone()) : Tensor();
      Tensor y = fuse ? linear_relu(x, w, b) : relu(linear(x, w, b));
      y.backward(ldy);
      return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), with_bias ? b.grad() : x.grad()};
    };
    const std::vector<Tensor> lf = run_linear(true), lp = run_linear(false);
    for (size_t i = 0; i < lf.size(); i++) CHECK(test::max_abs_diff(lf[i], lp[i]) == 0.0);
  }
}

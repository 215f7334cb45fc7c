// conv2d through cuDNN's graph (backend) API (LEUKO_CUDNN_API=graph, kernels/cuda/conv2d_graph.cpp)
// against the CPU: strict fp32 (no tensor-core engine may run), TF32, bf16 in NCHW and
// channels_last, grouped and strided shapes; that the graph API planned these convolutions
// rather than handing them all to the legacy path; bit-for-bit repeats under set_deterministic;
// and a CUDA graph of a whole step replaying it bit for bit.
// CUDA builds only (the API switch is a CUDA symbol).
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/conv2d.h"
#include "tensor/device.h"
#include "tools/leuko/bench.h"

#if LEUKO_WITH_CUDA
#include "kernels/conv2d.h"

using namespace leuko;
using leuko::test::PrecisionScope;
using V = const std::vector<Tensor>&;
namespace kc = leuko::kernels::cuda;

namespace {

// Sets the cuDNN interface for a scope, then puts back the one before.
struct ApiScope {
  kc::ConvApi was = kc::conv_api();
  explicit ApiScope(kc::ConvApi api) { kc::set_conv_api(api); }
  ~ApiScope() { kc::set_conv_api(was); }
};

struct Shape4 {
  std::string name;
  Shape x, w;
  Conv2dOptions opt;
};

// The networks' kinds of convolution, at small sizes, and the odd ones: 3 input channels in
// NHWC, groups, a rectangular kernel with unequal strides, dilation.
const std::vector<Shape4> kShapes = {
    {"3x3 padding 1, 16 -> 32 (VGG, ResNet)", {4, 16, 14, 14}, {32, 16, 3, 3}, {1, 1}},
    {"1x1, 32 -> 64 (bottleneck, Inception)", {4, 32, 9, 9}, {64, 32, 1, 1}, {}},
    {"1x1 stride 2 (a ResNet projection)", {2, 32, 14, 14}, {64, 32, 1, 1}, {2, 0}},
    {"7x7 stride 2 padding 3, 3 channels (the stems)", {2, 3, 30, 30}, {16, 3, 7, 7}, {2, 3}},
    {"5x5 padding 2 (Inception)", {2, 8, 12, 12}, {16, 8, 5, 5}, {1, 2}},
    {"groups 2, (2, 3) kernel, stride (1, 2)", {2, 6, 11, 12}, {4, 3, 2, 3}, {{1, 2}, {1, 0}, 1, 2}},
    {"dilation 2, padding 2", {2, 4, 15, 13}, {8, 4, 3, 3}, {1, 2, 2}},
};

void check_float32(double tol, uint64_t seed) {
  for (const Shape4& c : kShapes) {
    INFO("shape: " << c.name);
    const Conv2dOptions o = c.opt;
    std::vector<Tensor> in = {test::leaf(test::randn_t(c.x, seed, DType::f32)),
                              test::leaf(test::randn_t(c.w, seed + 1, DType::f32)),
                              test::leaf(test::randn_t({c.w[0]}, seed + 2, DType::f32))};
    test::check_gpu_matches_cpu([o](V a) { return conv2d(a[0], a[1], a[2], o); }, in, tol, seed + 3);
    seed += 10;
  }
}

}  // namespace

TEST_CASE("graph API conv2d: strict fp32 matches the CPU as the legacy path does") {
  ApiScope api(kc::ConvApi::graph);
  PrecisionScope fp32(Precision::fp32);
  const int64_t plans = kc::conv2d_graph_plans();
  // As tests/gpu/test_conv2d_gpu.cpp: 1e-5 relative, which TF32 (10-bit products) would miss:
  // an engine with the tensor-core note must not run for strict fp32.
  check_float32(1e-5, 4000);
  // Every direction of the common shapes has a float32 engine without tensor cores.
  CHECK(kc::conv2d_graph_plans() > plans);
}

TEST_CASE("graph API conv2d: TF32 is close to the CPU") {
  ApiScope api(kc::ConvApi::graph);
  PrecisionScope tf32(Precision::tf32);
  check_float32(1e-2, 4100);  // as test_conv2d_gpu.cpp's TF32 case
}

TEST_CASE("graph API conv2d: bf16, NCHW and channels_last, matches the CPU reference and plans every direction") {
  ApiScope api(kc::ConvApi::graph);
  uint64_t seed = 4200;
  for (bool cl : {false, true}) {
    for (const Shape4& c : kShapes) {
      INFO("shape: " << c.name << (cl ? ", channels_last" : ", NCHW"));
      const int64_t plans = kc::conv2d_graph_plans();
      const Conv2dOptions o = c.opt;
      std::vector<Tensor> in = {test::leaf(test::randn_t(c.x, seed, DType::f32)),
                                test::leaf(test::randn_t(c.w, seed + 1, DType::f32)),
                                test::leaf(test::randn_t({c.w[0]}, seed + 2, DType::f32))};
      // As tests/gpu/test_bf16_conv_gpu.cpp: one bf16 step on some elements, 1e-2 relative.
      test::check_bf16_gpu_matches_cpu([o](V a) { return conv2d(a[0], a[1], a[2], o); }, in, {true, false, false},
                                       1e-2, seed + 3, cl);
      // The tensor-core shapes of the networks (channels a multiple of 8, no groups or
      // dilation): forward, backward data and backward filter all planned by the graph API.
      if (c.x[1] % 8 == 0 && c.opt.groups == 1 && c.opt.dilation.h == 1) CHECK(kc::conv2d_graph_plans() == plans + 3);
      seed += 10;
    }
  }
}

TEST_CASE("graph API conv2d: with set_deterministic the backward repeats bit for bit") {
  ApiScope api(kc::ConvApi::graph);
  PrecisionScope fp32(Precision::fp32);
  test::DeterministicScope deterministic;
  Tensor x = test::leaf(test::randn_t({16, 32, 28, 28}, 4301, DType::f32, Device::CUDA));
  Tensor w = test::leaf(test::randn_t({64, 32, 1, 1}, 4302, DType::f32, Device::CUDA));
  Tensor dy = test::randn_t({16, 64, 28, 28}, 4303, DType::f32, Device::CUDA);
  conv2d(x, w, Tensor(), Conv2dOptions{}).backward(dy);
  const Tensor gx = x.grad().clone(), gw = w.grad().clone();
  for (int repeat = 0; repeat < 3; repeat++) {
    x.zero_grad();
    w.zero_grad();
    conv2d(x, w, Tensor(), Conv2dOptions{}).backward(dy);
    CHECK(test::max_abs_diff(x.grad(), gx) == 0.0);
    CHECK(test::max_abs_diff(w.grad(), gw) == 0.0);
  }
}

TEST_CASE("graph API conv2d: `bench --graph` replays a GoogLeNet bf16 step with the eager step's loss") {
  ApiScope api(kc::ConvApi::graph);
  // As tests/gpu/test_graph_gpu.cpp's bench case: deterministic engines chosen by heuristics,
  // the same in both runs, and steps seeded per step, so the replay's loss is the eager one.
  test::DeterministicScope deterministic;
  cli::BenchOptions o;
  o.model = "googlenet";
  o.batch = 4;
  o.input = 64;
  o.precision = "bf16";
  o.device = "cuda";
  o.warmup = 2;
  o.steps = 3;
  o.windows = 2;
  o.graph = true;
  const int64_t plans = kc::conv2d_graph_plans();
  const double graph_loss = cli::run_bench(o)["loss"].get<double>();
  CHECK(kc::conv2d_graph_plans() > plans);  // the network's convolutions went through the graph API
  CHECK(std::isfinite(graph_loss));
  o.graph = false;
  CHECK(cli::run_bench(o)["loss"].get<double>() == graph_loss);
}

#endif  // LEUKO_WITH_CUDA

// Batch normalisation on the GPU (float32) against the CPU (float64): training (batch
// statistics, the running statistics moved, the backward through the statistics) and eval, on
// odd shapes (C = 3, H*W = 1, N = 1, 2-D and 3-D inputs) and on channels long enough to be split
// over many blocks; the module with num_batches_tracked counted on the device; bitwise
// reproducible results (block reductions in a fixed order, no atomics).
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/activation.h"
#include "layers/batchnorm.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

namespace {

struct Config {
  std::string name;
  Shape x;
};

const std::vector<Config> kConfigs = {
    {"odd (2, 3, 5, 7)", {2, 3, 5, 7}},
    {"H*W = 1 (4, 3, 1, 1)", {4, 3, 1, 1}},
    {"N = 1 (1, 5, 3, 3)", {1, 5, 3, 3}},
    {"(N, C) = (37, 6)", {37, 6}},
    {"(N, C, L) = (3, 4, 33)", {3, 4, 33}},
    {"H*W = 323 > N (2, 3, 17, 19)", {2, 3, 17, 19}},
    // 65536 values per channel: 16 blocks per channel, merged by the finishing kernel.
    {"many blocks per channel (16, 3, 64, 64)", {16, 3, 64, 64}},
    {"ResNet-like (8, 64, 28, 28)", {8, 64, 28, 28}},
};

// Runs batch_norm through check_gpu_matches_cpu with inputs {x, weight, bias, running_mean,
// running_var}, then compares the running statistics each device was left with.
void check_bn(const Shape& s, bool training, bool affine, uint64_t seed, double tol, double base = 0.0) {
  const int64_t C = s[1];
  Tensor x = test::leaf(test::per_channel_randn(s, seed, base));
  Tensor w = test::leaf(test::uniform_t({C}, 0.5, 2.0, seed + 1, DType::f32));
  Tensor b = test::leaf(test::randn_t({C}, seed + 2, DType::f32));
  Tensor rm = test::randn_t({C}, seed + 3, DType::f32), rv = test::uniform_t({C}, 0.5, 2.0, seed + 4, DType::f32);
  std::vector<Tensor> stats;  // the running statistics each run was given (and moved): CPU, then GPU
  auto f = [&](V in) {
    stats.push_back(in[3]);
    stats.push_back(in[4]);
    return affine ? batch_norm(in[0], in[1], in[2], in[3], in[4], training, 0.1, 1e-5)
                  : batch_norm(in[0], Tensor(), Tensor(), in[3], in[4], training, 0.1, 1e-5);
  };
  // Without affine, weight and bias are passed along unused, so they must not ask for gradients.
  test::check_gpu_matches_cpu(f, {x, affine ? w : w.detach(), affine ? b : b.detach(), rm, rv}, tol, seed + 5);
  REQUIRE(stats.size() == 4);
  REQUIRE(stats[2].is_cuda());
  // Running statistics: float32 means and variances of O(1) values against float64.
  CHECK(test::rel_error(stats[2], stats[0]) < 1e-5);
  CHECK(test::rel_error(stats[3], stats[1]) < 1e-5);
}

}  // namespace

TEST_CASE("batch_norm: GPU matches CPU in training, running statistics included") {
  uint64_t seed = 2000;
  for (const Config& c : kConfigs) {
    INFO("config: " << c.name);
    // float32 against float64: outputs O(1) to ~1e-6; dx through float32 sums of up to 65536
    // values: 1e-5 relative (norm-wise).
    check_bn(c.x, true, true, seed, 1e-5);
    seed += 10;
  }
}

TEST_CASE("batch_norm: GPU matches CPU in eval") {
  uint64_t seed = 3000;
  for (const Config& c : kConfigs) {
    INFO("config: " << c.name);
    // Eval forward and dx are elementwise; dweight, dbias are float32 sums: 1e-5 relative.
    check_bn(c.x, false, true, seed, 1e-5);
    seed += 10;
  }
}

TEST_CASE("batch_norm: GPU matches CPU without affine") {
  // Same tolerance as with affine (1e-5): weight and bias simply drop out.
  check_bn({3, 3, 9, 7}, true, false, 4000, 1e-5);
  check_bn({3, 3, 9, 7}, false, false, 4010, 1e-5);
}

TEST_CASE("batch_norm: GPU statistics keep their precision at a large mean (Welford)") {
  // 100 + a spread of 0.5 to 1.5 per channel: E[x^2] - E[x]^2 summed in float32 would be off
  // by 1e-3 or more relative to the variance; Welford's merge keeps the error near the float32
  // rounding of the mean (ulp(100) / 2 ~ 4e-6 against the spread): 1e-4 relative.
  check_bn({16, 3, 64, 64}, true, true, 5000, 1e-4, 100.0);
  check_bn({4, 3, 5, 5}, true, true, 5010, 1e-4, 100.0);
}

TEST_CASE("BatchNorm2d: the module on the GPU matches the module on the CPU, counter included") {
  BatchNorm2d cpu_bn(5, 1e-5, 0.3), gpu_bn(5, 1e-5, 0.3);
  gpu_bn.to(Device::CUDA);
  REQUIRE(gpu_bn.num_batches_tracked.is_cuda());
  for (int step = 0; step < 3; step++) {
    INFO("training step " << step);
    Tensor x = test::per_channel_randn({6, 5, 7, 3}, 6000 + uint64_t(step));
    // Both float32: the CPU sums in float64, the GPU in float32 blocks: 1e-5 relative.
    CHECK(test::rel_error(gpu_bn(x.cuda()), cpu_bn(x)) < 1e-5);
  }
  CHECK(gpu_bn.num_batches_tracked.item() == 3.0);  // counted on the device, read once here
  CHECK(test::rel_error(gpu_bn.running_mean, cpu_bn.running_mean) < 1e-5);
  CHECK(test::rel_error(gpu_bn.running_var, cpu_bn.running_var) < 1e-5);
  gpu_bn.eval();
  cpu_bn.eval();
  Tensor x = test::per_channel_randn({2, 5, 4, 4}, 6100);
  CHECK(test::rel_error(gpu_bn(x.cuda()), cpu_bn(x)) < 1e-5);  // elementwise: float32 rounding
  CHECK(gpu_bn.num_batches_tracked.item() == 3.0);
}

TEST_CASE("batch_norm: the GPU gives the same bits on every run") {
  const Shape s{16, 3, 64, 64};
  Tensor x0 = test::per_channel_randn(s, 7000);
  Tensor g = test::randn_t(s, 7001, DType::f32).cuda();
  std::vector<std::vector<float>> runs;
  for (int r = 0; r < 2; r++) {
    Tensor x = x0.cuda().set_requires_grad(true);
    Tensor w = Tensor::ones({3}, DType::f32, Device::CUDA).set_requires_grad(true);
    Tensor rm = Tensor::zeros({3}, DType::f32, Device::CUDA), rv = Tensor::ones({3}, DType::f32, Device::CUDA);
    Tensor y = batch_norm(x, w, Tensor(), rm, rv, true);
    y.backward(g);
    runs.push_back(test::all_values({y, x.grad(), w.grad(), rm, rv}));
  }
  CHECK(runs[0] == runs[1]);  // bitwise: no atomics, fixed reduction order
}

TEST_CASE("batch_norm_relu: on the GPU, relu(batch_norm) bit for bit, values and gradients, training and eval") {
  // batch_norm itself is held to the CPU above; the fused op must give the unfused op's bits on
  // the GPU (the same arithmetic, the ReLU applied in the kernels instead of after them), in
  // either memory order (channels_last: the `_nhwc` kernels).
  const std::vector<std::pair<MemoryFormat, bool>> runs = {{MemoryFormat::nchw, true},
                                                           {MemoryFormat::nchw, false},
                                                           {MemoryFormat::channels_last, true},
                                                           {MemoryFormat::channels_last, false}};
  for (const auto& r : runs) {
    const MemoryFormat f = r.first;
    const bool training = r.second;  // a plain variable: lambdas capture no structured bindings in C++17
    for (const Config& c : {kConfigs[1], kConfigs[5], kConfigs[7]}) {
      INFO("config: " << c.name << (training ? ", training" : ", eval") << ", " << memory_format_name(f));
      const int64_t C = c.x[1];
      const Tensor x0 = test::per_channel_randn(c.x, 5101).cuda().to(f);
      const Tensor dy = test::randn_t(c.x, 5102, DType::f32, Device::CUDA).to(f);
      const Tensor w0 = test::uniform_t({C}, 0.5, 2.0, 5103, DType::f32, Device::CUDA);
      const Tensor b0 = test::randn_t({C}, 5104, DType::f32, Device::CUDA);
      auto run = [&](bool fused) {
        Tensor x = test::leaf(x0.clone()), w = test::leaf(w0.clone()), b = test::leaf(b0.clone());
        Tensor rm = Tensor::zeros({C}, DType::f32, Device::CUDA), rv = Tensor::ones({C}, DType::f32, Device::CUDA);
        Tensor y = fused ? batch_norm_relu(x, w, b, rm, rv, training) : relu(batch_norm(x, w, b, rm, rv, training));
        y.backward(dy);
        return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
      };
      const std::vector<Tensor> fused = run(true), plain = run(false);
      for (size_t i = 0; i < fused.size(); i++) {
        CAPTURE(i);
        CHECK(test::max_abs_diff(fused[i], plain[i]) == 0.0);
      }
    }
  }
}

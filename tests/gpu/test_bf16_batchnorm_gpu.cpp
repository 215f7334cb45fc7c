// Batch normalisation with bf16 activations on the GPU (the bf16 kernels: x, y, dy, dx bf16,
// statistics and parameters float32) against the CPU (the float32 op on the same bf16 values,
// rounded once), training and eval, with and without the fused ReLU; and the float32 running
// statistics each device moved.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gpu/gpu_helpers.h"
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
    {"(N, C, L) = (3, 4, 33)", {3, 4, 33}},
    // 65536 values per channel: several blocks per channel, merged by the finishing kernel.
    {"many blocks per channel (16, 3, 64, 64)", {16, 3, 64, 64}},
};

// batch_norm or batch_norm_relu through check_bf16_gpu_matches_cpu with inputs {x (as bf16),
// weight, bias, running_mean, running_var} (float32), then the running statistics each device
// was left with.
void check_bn(const Shape& s, bool training, bool relu, uint64_t seed) {
  const int64_t C = s[1];
  Tensor x = test::leaf(test::per_channel_randn(s, seed));
  Tensor w = test::leaf(test::uniform_t({C}, 0.5, 2.0, seed + 1, DType::f32));
  Tensor b = test::leaf(test::randn_t({C}, seed + 2, DType::f32));
  Tensor rm = test::randn_t({C}, seed + 3, DType::f32), rv = test::uniform_t({C}, 0.5, 2.0, seed + 4, DType::f32);
  std::vector<Tensor> stats;  // the running statistics each run moved: CPU, then GPU
  auto f = [&](V in) {
    // Copies: the CPU run's float32 inputs share the caller's storage, and the GPU run must
    // start from the same running statistics as the CPU run.
    Tensor run_mean = in[3].clone(), run_var = in[4].clone();
    stats.push_back(run_mean);
    stats.push_back(run_var);
    return relu ? batch_norm_relu(in[0], in[1], in[2], run_mean, run_var, training, 0.1, 1e-5)
                : batch_norm(in[0], in[1], in[2], run_mean, run_var, training, 0.1, 1e-5);
  };
  // A reduction in another order (float32 blocks against the CPU's float64 sums, then one
  // rounding): an element near a rounding boundary may land one bf16 step (2^-8) apart.
  test::check_bf16_gpu_matches_cpu(f, {x, w, b, rm, rv}, {true, false, false, false, false}, 1e-2, seed + 5);
  REQUIRE(stats.size() == 4);
  REQUIRE(stats[2].is_cuda());
  CHECK(stats[2].dtype() == DType::f32);
  // The running statistics are float32 on both devices, from the same bf16 values: the float32
  // block sums against the CPU's float64 ones, 1e-5 relative.
  CHECK(test::rel_error(stats[2].cpu(), stats[0]) < 1e-5);
  CHECK(test::rel_error(stats[3].cpu(), stats[1]) < 1e-5);
}

}  // namespace

TEST_CASE("batch_norm, bf16 x: GPU matches CPU in training, running statistics included") {
  uint64_t seed = 8000;
  for (const Config& c : kConfigs) {
    for (bool relu : {false, true}) {
      INFO("config: " << c.name << (relu ? ", fused ReLU" : ""));
      check_bn(c.x, true, relu, seed);
      seed += 10;
    }
  }
}

TEST_CASE("batch_norm, bf16 x: GPU matches CPU in eval") {
  uint64_t seed = 9000;
  for (const Config& c : kConfigs) {
    for (bool relu : {false, true}) {
      INFO("config: " << c.name << (relu ? ", fused ReLU" : ""));
      check_bn(c.x, false, relu, seed);
      seed += 10;
    }
  }
}

TEST_CASE("BatchNorm2d, bf16 x: the module on the GPU keeps bf16 and moves float32 statistics as on the CPU") {
  BatchNorm2d cpu_bn(5, 1e-5, 0.3), gpu_bn(5, 1e-5, 0.3);
  gpu_bn.to(Device::CUDA);
  for (int step = 0; step < 2; step++) {
    INFO("training step " << step);
    const Tensor x = test::per_channel_randn({6, 5, 7, 3}, 9500 + uint64_t(step)).to(DType::bf16);
    Tensor y = step == 0 ? gpu_bn(x.cuda()) : bn_relu(gpu_bn, nullptr, x.cuda());
    Tensor ref = step == 0 ? cpu_bn(x) : bn_relu(cpu_bn, nullptr, x);
    CHECK(y.dtype() == DType::bf16);
    CHECK(test::rel_error(y.cpu(), ref) < 1e-2);
  }
  CHECK(gpu_bn.num_batches_tracked.item() == 2.0);
  CHECK(gpu_bn.running_mean.dtype() == DType::f32);
  CHECK(test::rel_error(gpu_bn.running_mean.cpu(), cpu_bn.running_mean) < 1e-5);
  CHECK(test::rel_error(gpu_bn.running_var.cpu(), cpu_bn.running_var) < 1e-5);
}

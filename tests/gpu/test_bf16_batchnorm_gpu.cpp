// Batch normalisation with bf16 activations on the GPU (the bf16 kernels: x, y, dy, dx bf16,
// statistics and parameters float32) against the CPU (the float32 op on the same bf16 values,
// rounded once), training and eval, with and without the fused ReLU; and the float32 running
// statistics each device moved.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gpu/batchnorm_bf16_check.h"
#include "gpu/gpu_helpers.h"
#include "layers/batchnorm.h"

using namespace leuko;

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

}  // namespace

TEST_CASE("batch_norm, bf16 x: GPU matches CPU in training, running statistics included") {
  uint64_t seed = 8000;
  for (const Config& c : kConfigs) {
    for (bool relu : {false, true}) {
      INFO("config: " << c.name << (relu ? ", fused ReLU" : ""));
      test::check_batch_norm_bf16(c.x, true, relu, seed, false);
      seed += 10;
    }
  }
}

TEST_CASE("batch_norm, bf16 x: GPU matches CPU in eval") {
  uint64_t seed = 9000;
  for (const Config& c : kConfigs) {
    for (bool relu : {false, true}) {
      INFO("config: " << c.name << (relu ? ", fused ReLU" : ""));
      test::check_batch_norm_bf16(c.x, false, relu, seed, false);
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

// Pooling on the GPU (float32) against the CPU (float64): forward and the gather-form backward
// on the networks' configurations and odd shapes; max-pool argmax identical to the CPU's, ties
// included; bitwise-reproducible backward (no atomics).
#include <doctest/doctest.h>

#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/pool.h"
#include "pool_configs.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

TEST_CASE("max_pool2d: GPU matches CPU") {
  uint64_t seed = 1000;
  for (const test::PoolConfig& c : test::kGpuPools) {
    INFO("config: " << c.name);
    Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32));
    const int64_t k = c.k, s = c.s, p = c.p;
    const bool ceil = c.ceil;
    // The forward picks the same float32 values on both devices (exact); the backward adds at
    // most a few float32 gradients per element: 1e-6 relative.
    test::check_gpu_matches_cpu([=](V in) { return max_pool2d(in[0], k, s, p, ceil); }, {x}, 1e-6, seed + 1);
    seed += 10;
  }
}

TEST_CASE("avg_pool2d: GPU matches CPU, with and without count_include_pad") {
  uint64_t seed = 2000;
  for (const test::PoolConfig& c : test::kGpuPools) {
    for (bool include_pad : {true, false}) {
      INFO("config: " << c.name << ", count_include_pad " << include_pad);
      Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32));
      const int64_t k = c.k, s = c.s, p = c.p;
      const bool ceil = c.ceil;
      // Float32 sums of at most 25 terms against float64: 1e-5 relative.
      test::check_gpu_matches_cpu([=](V in) { return avg_pool2d(in[0], k, s, p, ceil, include_pad); }, {x}, 1e-5,
                                  seed + 1);
      seed += 10;
    }
  }
}

TEST_CASE("adaptive_avg_pool2d: GPU matches CPU") {
  uint64_t seed = 3000;
  for (const test::AdaptiveConfig& a : test::kGpuAdaptive) {
    INFO("input " << shape_str(a.x) << " to " << a.oh << "x" << a.ow);
    Tensor x = test::leaf(test::randn_t(a.x, seed, DType::f32));
    const int64_t oh = a.oh, ow = a.ow;
    // Float32 sums of at most 49 terms against float64: 1e-5 relative.
    test::check_gpu_matches_cpu([=](V in) { return adaptive_avg_pool2d(in[0], oh, ow); }, {x}, 1e-5, seed + 1);
    seed += 10;
  }
}

TEST_CASE("max_pool2d: GPU argmax equals the CPU's, ties included") {
  // Values in {0, 1, 2}: most windows hold several equal maxima; both take the first.
  Tensor x = (test::uniform_t({3, 5, 19, 17}, 0.0, 3.0, 4000, DType::f32));
  std::vector<float> v = x.to_vector();
  for (float& f : v) f = float(int(f));
  x = Tensor::from_vector(v, x.shape());
  for (bool ceil : {false, true}) {
    INFO("ceil_mode " << ceil);
    auto [y_cpu, i_cpu] = max_pool2d_with_indices(x, 3, 2, 1, ceil);
    auto [y_gpu, i_gpu] = max_pool2d_with_indices(x.cuda(), 3, 2, 1, ceil);
    CHECK(i_gpu.to_double_vector() == i_cpu.to_double_vector());  // int64 indices: exact
    CHECK(test::max_abs_diff(y_gpu, y_cpu) == 0.0);               // selected values: exact
  }
}

TEST_CASE("pooling backward on the GPU is bitwise reproducible") {
  Tensor x = test::randn_t({4, 32, 27, 27}, 5000, DType::f32).cuda().set_requires_grad();
  Tensor g = test::randn_t({4, 32, 13, 13}, 5001, DType::f32).cuda();
  std::vector<std::vector<float>> grads;
  for (int run = 0; run < 2; run++) {
    x.zero_grad();
    max_pool2d(x, 3, 2).backward(g);
    grads.push_back(x.grad().to_vector());
    x.zero_grad();
    avg_pool2d(x, 3, 2).backward(g);
    grads.push_back(x.grad().to_vector());
  }
  CHECK(grads[0] == grads[2]);  // no atomics: the same bits on every run
  CHECK(grads[1] == grads[3]);
}

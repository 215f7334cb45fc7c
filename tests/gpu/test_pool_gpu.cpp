// Pooling on the GPU (float32) against the CPU (float64): forward and the gather-form backward
// on the networks' configurations and odd shapes; max-pool argmax identical to the CPU's, ties
// included; bitwise-reproducible backward (no atomics).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/pool.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

namespace {

struct Config {
  std::string name;
  Shape x;
  int64_t k, s, p;
  bool ceil;
};

const std::vector<Config> kConfigs = {
    {"3/2 ceil_mode (GoogLeNet)", {2, 5, 17, 15}, 3, 2, 0, true},
    {"3/1 padding 1 ceil_mode (GoogLeNet branch)", {3, 7, 13, 11}, 3, 1, 1, true},
    {"3/2 (AlexNet), 55x55", {2, 16, 55, 55}, 3, 2, 0, false},
    {"3/2 padding 1 (ResNet), 57x49", {2, 9, 57, 49}, 3, 2, 1, false},
    {"2/2 (VGG), odd 29x31", {3, 6, 29, 31}, 2, 2, 0, false},
    {"5/3 (Inception-v3 aux), 17x17", {2, 11, 17, 17}, 5, 3, 0, false},
    {"2/2 padding 1 ceil_mode, last window dropped", {1, 3, 5, 9}, 2, 2, 1, true},
    {"4/3 padding 2 ceil_mode", {2, 3, 14, 19}, 4, 3, 2, true},
    {"large: 3/2 padding 1 on (8, 64, 56, 56)", {8, 64, 56, 56}, 3, 2, 1, false},
};

}  // namespace

TEST_CASE("max_pool2d: GPU matches CPU") {
  uint64_t seed = 1000;
  for (const Config& c : kConfigs) {
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
  for (const Config& c : kConfigs) {
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
  struct A {
    Shape x;
    int64_t oh, ow;
  };
  const std::vector<A> cases = {{{2, 7, 13, 13}, 6, 6}, {{3, 5, 5, 5}, 6, 6},   {{4, 33, 7, 7}, 1, 1},
                                {{2, 3, 9, 11}, 4, 5},  {{2, 4, 3, 17}, 7, 2},   {{8, 512, 7, 7}, 1, 1},
                                {{2, 16, 6, 6}, 6, 6},  {{1, 3, 31, 29}, 4, 4}};
  uint64_t seed = 3000;
  for (const A& a : cases) {
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

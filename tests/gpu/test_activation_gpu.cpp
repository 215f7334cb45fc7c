// ReLU, dropout and flatten on the GPU (float32) against the CPU (float64), and dropout's mask
// identical on both devices for the same seed.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/activation.h"
#include "layers/elementwise.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

namespace {
// dropout with the default generator seeded: the CPU and the GPU run draw the same seed.
Tensor seeded_dropout(const Tensor& x, double p, uint64_t seed) {
  manual_seed(seed);
  return dropout(x, p, true);
}
// float32 normal values rounded to multiples of 1/64.
Tensor sixty_fourths(const Shape& s, uint64_t seed) {
  std::vector<double> v = test::randn_t(s, seed).to_double_vector();
  for (double& x : v) x = std::round(x * 64.0) / 64.0;
  return Tensor::from_vector(v, s, DType::f32);
}
}  // namespace

TEST_CASE("relu: GPU matches CPU on odd sizes") {
  uint64_t seed = 100;
  for (const Shape& s : std::vector<Shape>{{1}, {7}, {3, 5, 7}, {1023}, {2, 33, 17, 19}, {(1 << 20) + 3}}) {
    INFO("shape " << shape_str(s));
    Tensor x = test::leaf(test::randn_t(s, seed++, DType::f32));
    // The forward is exact; the gradient passes float32-rounded upstream values: 1e-6 relative.
    test::check_gpu_matches_cpu([](V in) { return relu(in[0]); }, {x}, 1e-6, seed++);
  }
}

TEST_CASE("dropout: the GPU keeps exactly the CPU's elements for the same seed") {
  for (int64_t n : {int64_t(1), int64_t(1000), int64_t(12345), int64_t(3 << 20) + 1}) {
    for (double p : {0.1, 0.5, 0.9}) {
      INFO("n " << n << " p " << p);
      Tensor x = test::randn_t({n}, uint64_t(n), DType::f32);
      std::vector<float> cpu = seeded_dropout(x, p, 77).to_vector();
      std::vector<float> gpu = seeded_dropout(x.cuda(), p, 77).to_vector();
      CHECK(cpu == gpu);  // same mask and the same float32 multiply: bitwise equal
    }
  }
}

TEST_CASE("dropout: GPU forward and backward match the CPU") {
  uint64_t seed = 200;
  for (const Shape& s : std::vector<Shape>{{5, 7}, {2, 33, 13, 11}, {4, 4096}}) {
    INFO("shape " << shape_str(s));
    Tensor x = test::leaf(test::randn_t(s, seed++, DType::f32));
    // The same mask on both sides; values differ by float32 rounding of x * 1/(1-p): 1e-6.
    test::check_gpu_matches_cpu([](V in) { return seeded_dropout(in[0], 0.5, 31); }, {x}, 1e-6, seed++);
  }
  // Eval mode: the input itself, on the GPU too.
  Tensor x = test::randn_t({3, 4}, 9, DType::f32).cuda();
  CHECK(dropout(x, 0.5, false).shares_storage(x));
}

TEST_CASE("flatten and relu on the GPU") {
  Tensor x = test::leaf(test::randn_t({3, 5, 7, 9}, 300, DType::f32));
  Flatten flat;
  // A view then an exact relu: 1e-6 relative for the rounded upstream gradient.
  test::check_gpu_matches_cpu([&flat](V in) { return relu(flat(in[0])); }, {x}, 1e-6, 301);
}

TEST_CASE("add_relu: GPU matches CPU, and relu(add) on the GPU bit for bit") {
  uint64_t seed = 300;
  for (const Shape& s : std::vector<Shape>{{7}, {2, 33, 17, 19}, {(1 << 20) + 3}}) {
    INFO("shape " << shape_str(s));
    // Multiples of 1/64: a + b is exact in float32 as in float64, so no sum near 0 can fall on
    // the other side of the ReLU on one device only (which would cut one gradient element).
    Tensor a = test::leaf(sixty_fourths(s, seed++)), b = test::leaf(sixty_fourths(s, seed++));
    test::check_gpu_matches_cpu([](V in) { return add_relu(in[0], in[1]); }, {a, b}, 1e-6, seed++);
    const Tensor dy = test::randn_t(s, seed++, DType::f32, Device::CUDA);
    auto run = [&](bool fused) {
      Tensor ag = test::leaf(a.detach().cuda()), bg = test::leaf(b.detach().cuda());
      Tensor y = fused ? add_relu(ag, bg) : relu(add(ag, bg));
      y.backward(dy);
      return std::vector<Tensor>{y.detach(), ag.grad(), bg.grad()};
    };
    const std::vector<Tensor> fused = run(true), plain = run(false);
    for (size_t i = 0; i < fused.size(); i++) CHECK(test::max_abs_diff(fused[i], plain[i]) == 0.0);
  }
}

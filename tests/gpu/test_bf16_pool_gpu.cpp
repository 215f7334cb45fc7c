// bf16 activations on the GPU: the bf16 pooling and concatenation kernels against the CPU's
// reference (the float32 op on the same bf16 values, rounded once: test_bf16_pool.cpp), output
// and gradients; and the bf16 sum_to kernel (a bf16 layer's bias gradient) against a float64 sum.
//
// Why the poolings are held to tol 0: each output (forward) and each input gradient (backward)
// is the same float32 computation on both devices, then one rounding to bf16. The forwards sum
// a window in the same row-major order from 0 and divide by the same float divisor. The CPU
// backward scatters the outputs' gradients in row-major output order into a zeroed plane; the
// GPU gathers, for each input, the windows that contain it in the same row-major order, so the
// float additions are the same ones in the same order. No multiply-adds to contract, and no
// fast-math: IEEE division and addition on both. A max is a selection: exact.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/concat.h"
#include "layers/pool.h"
#include "pool_configs.h"

#if LEUKO_WITH_CUDA
#include "kernels/reduce.h"
#endif

using namespace leuko;
using V = const std::vector<Tensor>&;

TEST_CASE("max_pool2d on bf16: GPU matches CPU exactly") {
  uint64_t seed = 1000;
  for (const test::PoolConfig& c : test::kGpuPools) {
    INFO("config: " << c.name);
    Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32));
    const int64_t k = c.k, s = c.s, p = c.p;
    const bool ceil = c.ceil;
    test::check_bf16_gpu_matches_cpu([=](V in) { return max_pool2d(in[0], k, s, p, ceil); }, {x}, {true}, 0.0,
                                     seed + 1);
    seed += 10;
  }
}

TEST_CASE("avg_pool2d on bf16: GPU matches CPU exactly, with and without count_include_pad") {
  uint64_t seed = 2000;
  for (const test::PoolConfig& c : test::kGpuPools) {
    for (bool include_pad : {true, false}) {
      INFO("config: " << c.name << ", count_include_pad " << include_pad);
      Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32));
      const int64_t k = c.k, s = c.s, p = c.p;
      const bool ceil = c.ceil;
      // The same float sums in the same order on both devices (top of the file): tol 0.
      test::check_bf16_gpu_matches_cpu([=](V in) { return avg_pool2d(in[0], k, s, p, ceil, include_pad); }, {x}, {true},
                                       0.0, seed + 1);
      seed += 10;
    }
  }
}

TEST_CASE("adaptive_avg_pool2d on bf16: GPU matches CPU exactly") {
  uint64_t seed = 3000;
  for (const test::AdaptiveConfig& a : test::kGpuAdaptive) {
    INFO("input " << shape_str(a.x) << " to " << a.oh << "x" << a.ow);
    Tensor x = test::leaf(test::randn_t(a.x, seed, DType::f32));
    const int64_t oh = a.oh, ow = a.ow;
    test::check_bf16_gpu_matches_cpu([=](V in) { return adaptive_avg_pool2d(in[0], oh, ow); }, {x}, {true}, 0.0,
                                     seed + 1);
    seed += 10;
  }
}

TEST_CASE("max_pool2d on bf16: the GPU's argmax is the CPU's, ties included") {
  // Values in {0, 1, 2}: exact in bf16, most windows hold several equal maxima.
  std::vector<float> v = test::uniform_t({3, 5, 19, 17}, 0.0, 3.0, 4000, DType::f32).to_vector();
  for (float& f : v) f = float(int(f));
  Tensor x = Tensor::from_vector(v, {3, 5, 19, 17}).to(DType::bf16);
  auto [y_cpu, i_cpu] = max_pool2d_with_indices(x, 3, 2, 1, true);
  auto [y_gpu, i_gpu] = max_pool2d_with_indices(x.cuda(), 3, 2, 1, true);
  CHECK(y_gpu.dtype() == DType::bf16);
  CHECK(i_gpu.to_double_vector() == i_cpu.to_double_vector());
  CHECK(test::max_abs_diff(y_gpu.cpu(), y_cpu) == 0.0);
}

TEST_CASE("cat on bf16 along the channels: GPU matches CPU exactly") {
  const std::vector<std::vector<Shape>> cfgs = {
      {{2, 64, 28, 28}, {2, 128, 28, 28}, {2, 32, 28, 28}, {2, 32, 28, 28}},  // GoogLeNet inception3a
      {{3, 5, 7, 9}, {3, 1, 7, 9}, {3, 11, 7, 9}},
  };
  uint64_t seed = 500;
  for (const std::vector<Shape>& shapes : cfgs) {
    INFO("first input " << shape_str(shapes[0]));
    std::vector<Tensor> xs;
    for (size_t i = 0; i < shapes.size(); i++) {
      Tensor x = test::randn_t(shapes[i], seed++, DType::f32);
      if (i != 1) x.set_requires_grad(true);  // input 1 needs no gradient
      xs.push_back(x);
    }
    // Copies of bf16 values and of the bf16 upstream gradient: no arithmetic, tol 0.
    test::check_bf16_gpu_matches_cpu([](V in) { return cat(in, 1); }, xs, std::vector<bool>(xs.size(), true), 0.0,
                                     seed++);
  }
  Tensor a = Tensor::zeros({2, 3}, DType::bf16, Device::CUDA), b = Tensor::zeros({2, 3}, DType::f32, Device::CUDA);
  CHECK_THROWS_WITH_AS(cat({a, b}, 0), doctest::Contains("cat: inputs of different dtypes"), Error);
}

#if LEUKO_WITH_CUDA
TEST_CASE("sum_to with a bf16 input: float32 sums, as a float64 sum of the same values") {
  // A bf16 layer's bias gradient: (N, C, H, W) bf16 -> (C,) float32, and other reductions,
  // through each of the kernel's paths: one thread per output (<= 32 inputs each), one block per
  // output, and several blocks per output with a second pass over their partial sums.
  struct Case {
    std::string name;
    Shape in, out;
    double scale;
  };
  const std::vector<Case> cases = {
      {"one thread per output: (64, 3, 5) -> (64, 1, 5)", {64, 3, 5}, {64, 1, 5}, 1.0},
      {"one block per output: (4, 96, 14, 14) -> (1, 96, 1, 1)", {4, 96, 14, 14}, {1, 96, 1, 1}, 1.0},
      {"blocks per output: (32, 16, 56, 56) -> (1, 16, 1, 1)", {32, 16, 56, 56}, {1, 16, 1, 1}, 1.0},
      {"scaled (a mean): (8, 1000) -> (1, 1000)", {8, 1000}, {1, 1000}, 1.0 / 8},
      {"everything: (3, 7, 11, 13) -> (1, 1, 1, 1)", {3, 7, 11, 13}, {1, 1, 1, 1}, 0.5},
  };
  uint64_t seed = 6000;
  for (const Case& c : cases) {
    INFO(c.name);
    // Values near 1 plus noise: bias gradients have a mean; the sums are large against each term.
    Tensor x = test::uniform_t(c.in, -0.5, 1.5, seed++, DType::f32).to(DType::bf16);
    const std::vector<double> xv = x.to_double_vector();  // the bf16 values, exactly
    const kernels::Reduction r = kernels::make_reduction(c.in.data(), c.out.data(), int(c.in.size()));

    Tensor xg = x.cuda();
    Tensor out = Tensor::empty(c.out, DType::f32, Device::CUDA);  // (r.outputs,) float32
    const int64_t scratch_n = kernels::cuda::sum_to_scratch(r);
    Tensor scratch = Tensor::empty({std::max<int64_t>(scratch_n, 1)}, DType::f32, Device::CUDA);
    kernels::cuda::sum_to(out.data<float>(), xg.data<bf16>(), r, c.scale, scratch.data<float>());
    const std::vector<double> got = out.cpu().to_double_vector();

    // The reference: each output's inputs summed in float64 on the CPU, in the same index map.
    REQUIRE(int64_t(got.size()) == r.outputs);
    double num = 0, den = 0;
    for (int64_t o = 0; o < r.outputs; o++) {
      int64_t base = 0, rest = o;
      for (int d = r.kept_rank - 1; d >= 0; d--) {
        base += (rest % r.kept_shape[d]) * r.kept_stride[d];
        rest /= r.kept_shape[d];
      }
      double sum = 0;
      for (int64_t j = 0; j < r.per_output; j++) {
        int64_t off = base, rj = j;
        for (int d = r.red_rank - 1; d >= 0; d--) {
          off += (rj % r.red_shape[d]) * r.red_stride[d];
          rj /= r.red_shape[d];
        }
        sum += xv[size_t(off)];
      }
      const double want = c.scale * sum;
      num += (got[size_t(o)] - want) * (got[size_t(o)] - want);
      den += want * want;
    }
    const double err = std::sqrt(num) / std::max(std::sqrt(den), 1e-30);
    INFO("relative error " << err);
    CHECK(err <= 1e-5);  // float32 accumulation, never rounded to bf16 (which would be ~1e-3)
  }
}
#endif

// bf16 activations on the CPU (tensor/device.h bf16_activations()): pooling, concatenation and
// the reductions keep a bf16 input's dtype, and give the float32 op on the same values with the
// output rounded once; their gradients come back through a float32 leaf and leaf.to(bf16),
// rounded once as they pass the bf16 tensor. tests/gpu/test_bf16_pool_gpu.cpp holds the GPU's
// bf16 kernels to these results.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "helpers.h"
#include "layers/concat.h"
#include "layers/pool.h"
#include "layers/reduce.h"
#include "pool_configs.h"

using namespace leuko;
using doctest::Contains;
using leuko::test::leaf;
using leuko::test::max_abs_diff;
using leuko::test::randn_t;

namespace {

using Op = std::function<Tensor(const Tensor&)>;

Tensor rounded(const Tensor& t) { return t.detach().to(DType::bf16).to(DType::f32); }  // float32 on the bf16 grid

// op on x.to(bf16) against op on a float32 copy of the rounded values: a bf16 output equal to
// the reference rounded once, and x's gradient equal to the reference's rounded once (the
// upstream gradient is bf16, as an activation's; it reaches x through the bf16 tensor).
void check_against_float(const Op& op, const Shape& shape, uint64_t seed) {
  Tensor x = leaf(randn_t(shape, seed, DType::f32));
  Tensor y = op(x.to(DType::bf16));
  REQUIRE(y.dtype() == DType::bf16);

  Tensor xr = leaf(rounded(x));
  Tensor yr = op(xr);
  REQUIRE(yr.dtype() == DType::f32);
  REQUIRE(y.shape() == yr.shape());
  CHECK(max_abs_diff(y, rounded(yr)) == 0);

  Tensor up = randn_t(y.shape(), seed + 1, DType::f32).to(DType::bf16);
  y.backward(up);
  yr.backward(up.to(DType::f32));
  REQUIRE(x.grad().dtype() == DType::f32);
  CHECK(max_abs_diff(x.grad(), rounded(xr.grad())) == 0);
}

}  // namespace

TEST_CASE("max_pool2d on bf16: the float32 op on the same values, exact") {
  uint64_t seed = 100;
  for (const test::PoolConfig& c : test::kSmallPools) {
    INFO("input " << shape_str(c.x) << ", kernel " << c.k << ", stride " << c.s << ", padding " << c.p);
    check_against_float([&](const Tensor& x) { return max_pool2d(x, c.k, c.s, c.p, c.ceil); }, c.x, seed);
    seed += 10;
  }
  // The argmax is the float32 op's (int64), and the pooled values are inputs, not roundings.
  Tensor x = rounded(randn_t({2, 3, 9, 9}, 150, DType::f32));
  auto [y, idx] = max_pool2d_with_indices(x.to(DType::bf16), 3, 2, 1);
  auto [yr, idxr] = max_pool2d_with_indices(x, 3, 2, 1);
  CHECK(idx.dtype() == DType::i64);
  CHECK(idx.to_double_vector() == idxr.to_double_vector());
  CHECK(max_abs_diff(y, yr) == 0);
}

TEST_CASE("avg_pool2d on bf16: the float32 op on the same values, rounded once") {
  uint64_t seed = 200;
  for (const test::PoolConfig& c : test::kSmallPools) {
    for (bool include_pad : {true, false}) {
      INFO("input " << shape_str(c.x) << ", kernel " << c.k << ", padding " << c.p << ", count_include_pad "
                    << include_pad);
      check_against_float([&](const Tensor& x) { return avg_pool2d(x, c.k, c.s, c.p, c.ceil, include_pad); }, c.x,
                          seed);
      seed += 10;
    }
  }
  // One rounding of the exact mean: within half a bf16 step of the float64 op (half of 2^-7
  // relative, where the value is at the bottom of its binade), plus float32's error on a few terms.
  Tensor x = rounded(randn_t({2, 4, 10, 10}, 250, DType::f32));
  std::vector<float> y = avg_pool2d(x.to(DType::bf16), 3, 2, 1).to_vector();
  std::vector<double> exact = avg_pool2d(x.to(DType::f64), 3, 2, 1).to_double_vector();
  REQUIRE(y.size() == exact.size());
  for (size_t i = 0; i < y.size(); i++) CHECK(std::fabs(y[i] - exact[i]) <= std::ldexp(std::fabs(exact[i]), -8) + 1e-7);
}

TEST_CASE("adaptive_avg_pool2d on bf16: the float32 op on the same values, rounded once") {
  uint64_t seed = 300;
  for (const test::AdaptiveConfig& a : test::kSmallAdaptive) {
    INFO("input " << shape_str(a.x) << " to " << a.oh << "x" << a.ow);
    check_against_float([&](const Tensor& x) { return adaptive_avg_pool2d(x, a.oh, a.ow); }, a.x, seed);
    seed += 10;
  }
}

TEST_CASE("pooling modules keep a bf16 input's dtype") {
  Tensor x = randn_t({1, 2, 8, 8}, 400, DType::f32).to(DType::bf16);
  CHECK(MaxPool2d(2).forward(x).dtype() == DType::bf16);
  CHECK(AvgPool2d(2).forward(x).dtype() == DType::bf16);
  CHECK(AdaptiveAvgPool2d(1).forward(x).dtype() == DType::bf16);
}

TEST_CASE("cat on bf16: the values copied as they are, gradients sliced as they are") {
  struct Cfg {
    std::vector<Shape> shapes;
    int64_t dim;
  };
  const std::vector<Cfg> cfgs = {
      {{{2, 4, 3, 3}, {2, 1, 3, 3}, {2, 5, 3, 3}}, 1},  // Inception's channel concatenation
      {{{2, 3}, {4, 3}}, 0},
      {{{3, 2, 2}, {3, 2, 5}}, -1},
  };
  uint64_t seed = 500;
  for (const Cfg& c : cfgs) {
    INFO("dim " << c.dim << ", first input " << shape_str(c.shapes[0]));
    std::vector<Tensor> xs, xrs, bf;
    for (const Shape& s : c.shapes) {
      xs.push_back(leaf(randn_t(s, seed++, DType::f32)));
      xrs.push_back(leaf(rounded(xs.back())));
      bf.push_back(xs.back().to(DType::bf16));
    }
    Tensor y = cat(bf, c.dim), yr = cat(xrs, c.dim);
    REQUIRE(y.dtype() == DType::bf16);
    CHECK(max_abs_diff(y, yr) == 0);  // a copy: no rounding at all
    Tensor up = randn_t(y.shape(), seed++, DType::f32).to(DType::bf16);
    y.backward(up);
    yr.backward(up.to(DType::f32));
    for (size_t i = 0; i < xs.size(); i++) {
      REQUIRE(xs[i].grad().dtype() == DType::f32);
      CHECK(max_abs_diff(xs[i].grad(), xrs[i].grad()) == 0);
    }
  }
}

TEST_CASE("cat: all inputs share one dtype") {
  Tensor a = Tensor::zeros({2, 3}, DType::bf16), b = Tensor::zeros({2, 3}, DType::f32);
  CHECK_THROWS_WITH_AS(cat({a, b}, 0), Contains("cat: inputs of different dtypes (bfloat16[2, 3]"), Error);
  CHECK_THROWS_WITH_AS(cat({b, a}, 0), Contains("cat: inputs of different dtypes (float32[2, 3]"), Error);
  CHECK_THROWS_WITH_AS(cat({a, Tensor::zeros({3, 3}, DType::bf16)}, 1), Contains("differ outside dimension 1"), Error);
}

TEST_CASE("sum, mean, sum_to and expand on bf16: the float32 op, rounded once") {
  const Shape s{3, 4, 5};
  check_against_float([](const Tensor& x) { return sum(x); }, s, 600);
  check_against_float([](const Tensor& x) { return mean(x); }, s, 610);
  check_against_float([](const Tensor& x) { return sum(x, {1}); }, s, 620);
  check_against_float([](const Tensor& x) { return sum(x, {0, 2}, true); }, s, 630);
  check_against_float([](const Tensor& x) { return mean(x, {-1}); }, s, 640);
  check_against_float([](const Tensor& x) { return sum_to(x, {4, 1}); }, s, 650);
  check_against_float([](const Tensor& x) { return expand(x, {2, 3, 4, 5}); }, s, 660);
  check_against_float([](const Tensor& x) { return expand(x, {3, 4, 5}); }, s, 670);  // the same shape: x itself
}

// channels_last on the CPU (tensor/tensor.h MemoryFormat): pooling, concatenation and the
// reductions given channels_last tensors return what the NCHW op returns, exactly (the CPU runs
// the NCHW op on a converted copy, and cat copies the same values in another order), with the
// output channels_last where it is an image of the same layout, and every input's gradient in
// that input's memory order. float32, float64 and bf16. tests/gpu/test_channels_last_pool_gpu.cpp
// holds the GPU's channels_last kernels to these results.
#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "helpers.h"
#include "layers/concat.h"
#include "layers/pool.h"
#include "layers/reduce.h"
#include "pool_configs.h"

using namespace leuko;
using leuko::test::max_abs_diff;
using leuko::test::randn_t;

namespace {

using Op = std::function<Tensor(const Tensor&)>;
constexpr MemoryFormat kNchw = MemoryFormat::nchw, kLast = MemoryFormat::channels_last;

// op on x (dtype dt) in NCHW and in channels_last, from the same float values: the same output
// values bit for bit, the output channels_last when 4-D (`image`) and NCHW otherwise, and the
// same gradient for each, which reaches a channels_last leaf as channels_last.
void check_same_as_nchw(const Op& op, const Shape& shape, DType dt, uint64_t seed, bool image = true) {
  INFO("input " << shape_str(shape) << " " << dtype_name(dt));
  // The leaves: float32 or float64 (bf16 inputs are converted from them, as activations are).
  const DType leaf_dt = dt == DType::bf16 ? DType::f32 : dt;
  Tensor base = randn_t(shape, seed, leaf_dt);
  Tensor a = base.detach().set_requires_grad();            // NCHW leaf
  Tensor b = base.detach().to(kLast).set_requires_grad();  // channels_last leaf
  Tensor ya = op(a.to(dt)), yb = op(b.to(dt));
  CHECK(yb.dtype() == ya.dtype());
  CHECK(ya.memory_format() == kNchw);
  CHECK(yb.memory_format() == (image ? kLast : kNchw));
  REQUIRE(yb.shape() == ya.shape());
  CHECK(max_abs_diff(yb, ya) == 0);

  Tensor up = randn_t(ya.shape(), seed + 1, DType::f32).to(ya.dtype());  // NCHW
  ya.backward(up);
  yb.backward(yb.dim() == 4 ? up.to(yb.memory_format()) : up);
  REQUIRE(b.grad().defined());
  CHECK(b.grad().memory_format() == kLast);
  CHECK(a.grad().memory_format() == kNchw);
  CHECK(max_abs_diff(b.grad(), a.grad()) == 0);
}

const std::vector<DType> kDtypes = {DType::f32, DType::bf16, DType::f64};

}  // namespace

TEST_CASE("max_pool2d on channels_last: the NCHW op's values, argmax and gradient, channels_last") {
  uint64_t seed = 100;
  for (DType dt : kDtypes) {
    for (const test::PoolConfig& c : test::kSmallPools) {
      INFO("kernel " << c.k << ", stride " << c.s << ", padding " << c.p << ", ceil_mode " << c.ceil);
      check_same_as_nchw([&](const Tensor& x) { return max_pool2d(x, c.k, c.s, c.p, c.ceil); }, c.x, dt, seed);
      seed += 10;
    }
  }
}

TEST_CASE("max_pool2d_with_indices on channels_last: the same argmax, stored in the output's order") {
  // Values in {0, 1, 2}: most windows hold several equal maxima, and the first must win.
  std::vector<float> v = test::uniform_t({2, 5, 11, 9}, 0.0, 3.0, 150, DType::f32).to_vector();
  for (float& f : v) f = float(int(f));
  Tensor x = Tensor::from_vector(v, {2, 5, 11, 9});
  for (DType dt : {DType::f32, DType::bf16}) {
    INFO(dtype_name(dt));
    auto [y, idx] = max_pool2d_with_indices(x.to(dt), 3, 2, 1, true);
    auto [yc, idxc] = max_pool2d_with_indices(x.to(dt).to(kLast), 3, 2, 1, true);
    CHECK(idxc.dtype() == DType::i64);
    CHECK(idxc.memory_format() == kLast);
    CHECK(yc.memory_format() == kLast);
    CHECK(idxc.to_double_vector() == idx.to_double_vector());  // both read in NCHW order
    CHECK(max_abs_diff(yc, y) == 0);
  }
}

TEST_CASE("avg_pool2d on channels_last: the NCHW op's values and gradient, channels_last") {
  uint64_t seed = 200;
  for (DType dt : kDtypes) {
    for (const test::PoolConfig& c : test::kSmallPools) {
      for (bool include_pad : {true, false}) {
        INFO("kernel " << c.k << ", padding " << c.p << ", count_include_pad " << include_pad);
        check_same_as_nchw([&](const Tensor& x) { return avg_pool2d(x, c.k, c.s, c.p, c.ceil, include_pad); }, c.x, dt,
                           seed);
        seed += 10;
      }
    }
  }
}

TEST_CASE("adaptive_avg_pool2d on channels_last: the NCHW op's values and gradient, channels_last") {
  uint64_t seed = 300;
  for (DType dt : kDtypes) {
    for (const test::AdaptiveConfig& a : test::kSmallAdaptive) {
      INFO("to " << a.oh << "x" << a.ow);
      // 1x1 outputs too: a channels_last (N, C, 1, 1) tensor, which flatten() views for free.
      check_same_as_nchw([&](const Tensor& x) { return adaptive_avg_pool2d(x, a.oh, a.ow); }, a.x, dt, seed);
      seed += 10;
    }
  }
}

TEST_CASE("pooling modules keep a channels_last input's memory order and dtype") {
  for (DType dt : {DType::f32, DType::bf16}) {
    Tensor x = randn_t({1, 2, 8, 8}, 400, DType::f32).to(dt).to(kLast);
    for (const Tensor& y : {MaxPool2d(2).forward(x), AvgPool2d(2).forward(x), AdaptiveAvgPool2d(1).forward(x)}) {
      CHECK(y.is_channels_last());
      CHECK(y.dtype() == dt);
    }
  }
}

TEST_CASE("cat on channels_last along each dim: the NCHW cat's values and gradients, channels_last") {
  for (DType dt : kDtypes) {
    for (int64_t dim : {1, 0, 2, 3, -3}) {
      INFO("dim " << dim << ", " << dtype_name(dt));
      // Three (2, 3, 4, 5)-like tensors, sized 3, 1 and 2 along dim (Inception's branches on dim 1).
      const std::vector<int64_t> sizes = {3, 1, 2};
      std::vector<Tensor> as, bs;  // NCHW and channels_last leaves of the same values
      uint64_t seed = 500 + uint64_t(dim + 3) * 10 + uint64_t(dt);
      for (int64_t s : sizes) {
        Shape shape = {2, 3, 4, 5};
        shape[size_t(dim < 0 ? dim + 4 : dim)] = s;
        Tensor base = randn_t(shape, seed++, dt == DType::bf16 ? DType::f32 : dt);
        as.push_back(base.detach().set_requires_grad());
        bs.push_back(base.detach().to(kLast).set_requires_grad());
      }
      std::vector<Tensor> xa, xb;
      for (size_t i = 0; i < as.size(); i++) {
        xa.push_back(as[i].to(dt));
        xb.push_back(bs[i].to(dt));
      }
      Tensor ya = cat(xa, dim), yb = cat(xb, dim);
      CHECK(yb.is_channels_last());
      CHECK(yb.dtype() == dt);
      REQUIRE(yb.shape() == ya.shape());
      CHECK(max_abs_diff(yb, ya) == 0);  // a copy
      Tensor up = randn_t(ya.shape(), seed, DType::f32).to(dt);
      ya.backward(up);
      yb.backward(up.to(kLast));
      for (size_t i = 0; i < as.size(); i++) {
        CHECK(bs[i].grad().is_channels_last());
        CHECK(max_abs_diff(bs[i].grad(), as[i].grad()) == 0);  // its slice, exactly
      }
    }
  }
}

TEST_CASE("cat of mixed memory orders: the first input's order, the NCHW values, each gradient in its order") {
  for (DType dt : {DType::f32, DType::bf16}) {
    for (MemoryFormat first : {kLast, kNchw}) {
      INFO(dtype_name(dt) << ", first input " << memory_format_name(first));
      const std::vector<Shape> shapes = {{2, 4, 3, 5}, {2, 1, 3, 5}, {2, 6, 3, 5}};
      const std::vector<MemoryFormat> orders = {first, first == kLast ? kNchw : kLast, kLast};
      std::vector<Tensor> ref, mixed;  // NCHW leaves, and leaves in `orders`
      for (size_t i = 0; i < shapes.size(); i++) {
        Tensor base = randn_t(shapes[i], 700 + i, DType::f32);
        ref.push_back(base.detach().set_requires_grad());
        mixed.push_back(base.detach().to(orders[i]).set_requires_grad());
      }
      std::vector<Tensor> xr, xm;
      for (size_t i = 0; i < shapes.size(); i++) {
        xr.push_back(ref[i].to(dt));
        xm.push_back(mixed[i].to(dt));
      }
      Tensor yr = cat(xr, 1), ym = cat(xm, 1);
      CHECK(ym.memory_format() == first);
      CHECK(max_abs_diff(ym, yr) == 0);
      Tensor up = randn_t(yr.shape(), 710, DType::f32).to(dt);
      yr.backward(up);
      ym.backward(up.to(first));
      for (size_t i = 0; i < shapes.size(); i++) {
        CHECK(mixed[i].grad().memory_format() == orders[i]);
        CHECK(max_abs_diff(mixed[i].grad(), ref[i].grad()) == 0);
      }
    }
  }
  // The shapes are checked before any conversion: a 3-D input is a shape error, not a layout one.
  Tensor a = Tensor::zeros({2, 3, 4, 4}).to(kLast);
  CHECK_THROWS_WITH_AS(cat({a, Tensor::zeros({2, 3, 4})}, 1), doctest::Contains("differ outside dimension 1"), Error);
}

TEST_CASE("sum, mean, sum_to and expand on channels_last: the NCHW op's values (no NHWC read as NCHW)") {
  // Distinct values everywhere, so reading (N, H, W, C) storage as (N, C, H, W) would show.
  const Shape s{2, 3, 4, 5};
  for (DType dt : kDtypes) {
    uint64_t seed = 800 + uint64_t(dt) * 100;
    check_same_as_nchw([](const Tensor& x) { return sum(x); }, s, dt, seed++, false);
    check_same_as_nchw([](const Tensor& x) { return mean(x); }, s, dt, seed++, false);
    check_same_as_nchw([](const Tensor& x) { return sum(x, {1}); }, s, dt, seed++, false);
    check_same_as_nchw([](const Tensor& x) { return mean(x, {2, 3}); }, s, dt, seed++, false);
    check_same_as_nchw([](const Tensor& x) { return sum(x, {0, 2}, true); }, s, dt, seed++);  // 4-D: channels_last
    check_same_as_nchw([](const Tensor& x) { return mean(x, {-1}, true); }, s, dt, seed++);
    check_same_as_nchw([](const Tensor& x) { return sum_to(x, {3, 1, 1}); }, s, dt, seed++, false);
    check_same_as_nchw([](const Tensor& x) { return sum_to(x, {1, 3, 4, 1}); }, s, dt, seed++);
    check_same_as_nchw([](const Tensor& x) { return expand(x, {3, 2, 3, 4, 5}); }, s, dt, seed++, false);
    check_same_as_nchw([&](const Tensor& x) { return expand(x, s); }, s, dt, seed++);  // x itself
    check_same_as_nchw([](const Tensor& x) { return expand(x, {2, 3, 4, 5}); }, {2, 3, 1, 5}, dt, seed++);
    check_same_as_nchw([](const Tensor& x) { return expand(x, {2, 3, 4, 5}); }, {1, 3, 4, 1}, dt, seed++);
  }
}

// channels_last on the GPU (tensor/tensor.h MemoryFormat): the *_nhwc pooling kernels
// (kernels/pool.h) and cat's row copies on (N, H, W, C) storage, against
//  - the CPU's reference in bf16 (the float32 NCHW op on the same bf16 values, rounded once:
//    tests/layers/test_channels_last_pool.cpp), output and gradients, output channels_last;
//  - the GPU's own NCHW kernels in float32, on odd shapes and a large one.
//
// Why tol 0 for bf16 (as tests/gpu/test_bf16_pool_gpu.cpp argues for NCHW): each output and
// each input gradient is the same float32 computation on both devices, in the same order, then
// one rounding. The NHWC kernels run the NCHW kernels' loops (same windows, same row-major order
// from 0, same float divisor) and differ only in where an element lies; a max is a selection;
// a concatenation a copy. For the same reason the float32 NHWC results should equal the NCHW
// kernels' bit for bit: max pooling and cat are held to 0, the averages to 1e-6 relative.
#include <doctest/doctest.h>

#include <functional>
#include <vector>

#include "gpu/gpu_helpers.h"
#include "layers/concat.h"
#include "layers/pool.h"
#include "layers/reduce.h"
#include "pool_configs.h"

using namespace leuko;
using V = const std::vector<Tensor>&;

namespace {

constexpr MemoryFormat kLast = MemoryFormat::channels_last;

// f on float32 GPU copies of `inputs`, once NCHW and once with the 4-D ones channels_last:
// the channels_last run's output is channels_last when 4-D, and it and every input's gradient
// (in its input's order) are within `tol` (relative) of the NCHW run's.
void check_channels_last_matches_nchw(const std::function<Tensor(V)>& f, const std::vector<Tensor>& inputs, double tol,
                                      uint64_t seed) {
  std::vector<Tensor> a, b;  // NCHW, channels_last
  for (const Tensor& x : inputs) {
    Tensor g = x.detach().to(DType::f32).cuda();
    Tensor c = g.dim() == 4 ? g.to(kLast) : g.clone();
    if (x.requires_grad()) {
      g.set_requires_grad(true);
      c.set_requires_grad(true);
    }
    a.push_back(g);
    b.push_back(c);
  }
  Tensor ya = f(a), yb = f(b);
  REQUIRE(yb.is_cuda());
  CHECK(yb.is_channels_last() == (yb.dim() == 4));
  const double out_err = test::rel_error(yb, ya);
  INFO("output " << yb.describe() << ": relative error " << out_err);
  CHECK(out_err <= tol);
  if (!ya.requires_grad()) return;
  Tensor up = test::randn_t(ya.shape(), seed, DType::f32, Device::CUDA);
  ya.backward(up);
  yb.backward(yb.dim() == 4 ? up.to(kLast) : up);
  for (size_t i = 0; i < inputs.size(); i++) {
    if (!inputs[i].requires_grad()) continue;
    REQUIRE(b[i].grad().defined());
    CHECK(b[i].grad().memory_format() == b[i].memory_format());
    const double err = test::rel_error(b[i].grad(), a[i].grad());
    INFO("gradient of input " << i << " " << b[i].describe() << ": relative error " << err);
    CHECK(err <= tol);
  }
}

struct CatConfig {
  std::vector<Shape> shapes;
  int64_t dim;
};
const std::vector<CatConfig> kCats = {
    {{{2, 64, 28, 28}, {2, 128, 28, 28}, {2, 32, 28, 28}, {2, 32, 28, 28}}, 1},  // GoogLeNet inception3a
    {{{3, 5, 7, 9}, {3, 1, 7, 9}, {3, 11, 7, 9}}, 1},
    {{{2, 3, 5, 4}, {1, 3, 5, 4}}, 0},
    {{{2, 3, 2, 5}, {2, 3, 7, 5}}, 2},
    {{{2, 6, 3, 1}, {2, 6, 3, 4}, {2, 6, 3, 2}}, -1},
};

// The inputs of a cat configuration, input 1 without a gradient.
std::vector<Tensor> cat_inputs(const CatConfig& c, uint64_t seed) {
  std::vector<Tensor> xs;
  for (size_t i = 0; i < c.shapes.size(); i++) {
    Tensor x = test::randn_t(c.shapes[i], seed + i, DType::f32);
    if (i != 1) x.set_requires_grad(true);
    xs.push_back(x);
  }
  return xs;
}

}  // namespace

// ---- bf16 channels_last: GPU against the CPU's reference ------------------------------------

TEST_CASE("max_pool2d on bf16 channels_last: GPU matches CPU exactly") {
  uint64_t seed = 11000;
  for (const test::PoolConfig& c : test::kGpuPools) {
    INFO("config: " << c.name);
    Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32));
    const int64_t k = c.k, s = c.s, p = c.p;
    const bool ceil = c.ceil;
    test::check_bf16_gpu_matches_cpu([=](V in) { return max_pool2d(in[0], k, s, p, ceil); }, {x}, {true}, 0.0, seed + 1,
                                     true);
    seed += 10;
  }
}

TEST_CASE("avg_pool2d on bf16 channels_last: GPU matches CPU exactly, with and without count_include_pad") {
  uint64_t seed = 12000;
  for (const test::PoolConfig& c : test::kGpuPools) {
    for (bool include_pad : {true, false}) {
      INFO("config: " << c.name << ", count_include_pad " << include_pad);
      Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32));
      const int64_t k = c.k, s = c.s, p = c.p;
      const bool ceil = c.ceil;
      test::check_bf16_gpu_matches_cpu([=](V in) { return avg_pool2d(in[0], k, s, p, ceil, include_pad); }, {x}, {true},
                                       0.0, seed + 1, true);
      seed += 10;
    }
  }
}

TEST_CASE("adaptive_avg_pool2d on bf16 channels_last: GPU matches CPU exactly") {
  uint64_t seed = 13000;
  for (const test::AdaptiveConfig& a : test::kGpuAdaptive) {
    INFO("input " << shape_str(a.x) << " to " << a.oh << "x" << a.ow);
    Tensor x = test::leaf(test::randn_t(a.x, seed, DType::f32));
    const int64_t oh = a.oh, ow = a.ow;
    test::check_bf16_gpu_matches_cpu([=](V in) { return adaptive_avg_pool2d(in[0], oh, ow); }, {x}, {true}, 0.0,
                                     seed + 1, true);
    seed += 10;
  }
}

TEST_CASE("cat on bf16 channels_last: GPU matches CPU exactly, along every dim") {
  uint64_t seed = 14000;
  for (const CatConfig& c : kCats) {
    INFO("dim " << c.dim << ", first input " << shape_str(c.shapes[0]));
    const std::vector<Tensor> xs = cat_inputs(c, seed);
    const int64_t dim = c.dim;
    test::check_bf16_gpu_matches_cpu([dim](V in) { return cat(in, dim); }, xs, std::vector<bool>(xs.size(), true), 0.0,
                                     seed + 100, true);
    seed += 10;
  }
}

// ---- float32: channels_last kernels against the NCHW kernels, both on the GPU ---------------

TEST_CASE("max_pool2d on float32 channels_last: the GPU's NCHW results, exactly") {
  uint64_t seed = 15000;
  for (const test::PoolConfig& c : test::kGpuPools) {
    INFO("config: " << c.name);
    Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32));
    const int64_t k = c.k, s = c.s, p = c.p;
    const bool ceil = c.ceil;
    check_channels_last_matches_nchw([=](V in) { return max_pool2d(in[0], k, s, p, ceil); }, {x}, 0.0, seed + 1);
    seed += 10;
  }
}

TEST_CASE("avg_pool2d and adaptive_avg_pool2d on float32 channels_last: the GPU's NCHW results") {
  uint64_t seed = 16000;
  for (const test::PoolConfig& c : test::kGpuPools) {
    for (bool include_pad : {true, false}) {
      INFO("config: " << c.name << ", count_include_pad " << include_pad);
      Tensor x = test::leaf(test::randn_t(c.x, seed, DType::f32));
      const int64_t k = c.k, s = c.s, p = c.p;
      const bool ceil = c.ceil;
      check_channels_last_matches_nchw([=](V in) { return avg_pool2d(in[0], k, s, p, ceil, include_pad); }, {x}, 1e-6,
                                       seed + 1);
      seed += 10;
    }
  }
  for (const test::AdaptiveConfig& a : test::kGpuAdaptive) {
    INFO("adaptive: input " << shape_str(a.x) << " to " << a.oh << "x" << a.ow);
    Tensor x = test::leaf(test::randn_t(a.x, seed, DType::f32));
    const int64_t oh = a.oh, ow = a.ow;
    check_channels_last_matches_nchw([=](V in) { return adaptive_avg_pool2d(in[0], oh, ow); }, {x}, 1e-6, seed + 1);
    seed += 10;
  }
}

TEST_CASE("max_pool2d on channels_last: the GPU's argmax is the NCHW one, ties included, in the output's order") {
  // Values in {0, 1, 2}: exact in bf16, most windows hold several equal maxima.
  std::vector<float> v = test::uniform_t({3, 37, 19, 17}, 0.0, 3.0, 17000, DType::f32).to_vector();
  for (float& f : v) f = float(int(f));
  const Tensor x = Tensor::from_vector(v, {3, 37, 19, 17});
  for (DType dt : {DType::f32, DType::bf16}) {
    INFO(dtype_name(dt));
    auto [y_ref, i_ref] = max_pool2d_with_indices(x.to(dt).cuda(), 3, 2, 1, true);  // NCHW kernels
    auto [y_cpu, i_cpu] = max_pool2d_with_indices(x.to(dt).to(kLast), 3, 2, 1, true);
    auto [y_gpu, i_gpu] = max_pool2d_with_indices(x.to(dt).to(kLast).cuda(), 3, 2, 1, true);
    CHECK(y_gpu.is_channels_last());
    CHECK(i_gpu.is_channels_last());
    CHECK(i_gpu.dtype() == DType::i64);
    CHECK(i_gpu.to_double_vector() == i_ref.to_double_vector());
    CHECK(i_gpu.to_double_vector() == i_cpu.to_double_vector());
    CHECK(test::max_abs_diff(y_gpu, y_ref) == 0.0);
  }
}

TEST_CASE("cat on float32 channels_last: the GPU's NCHW results, exactly; mixed orders take the first's") {
  uint64_t seed = 18000;
  for (const CatConfig& c : kCats) {
    INFO("dim " << c.dim << ", first input " << shape_str(c.shapes[0]));
    const int64_t dim = c.dim;
    check_channels_last_matches_nchw([dim](V in) { return cat(in, dim); }, cat_inputs(c, seed), 0.0, seed + 100);
    seed += 10;
  }
  // Inception's four branches, one NCHW among channels_last ones (and the reverse).
  const CatConfig& c = kCats[0];
  for (bool first_last : {true, false}) {
    INFO("first input channels_last: " << first_last);
    const std::vector<Tensor> xs = cat_inputs(c, seed);
    const std::vector<MemoryFormat> orders = {first_last ? kLast : MemoryFormat::nchw,
                                              first_last ? MemoryFormat::nchw : kLast, kLast, kLast};
    std::vector<Tensor> ref, mixed;
    for (size_t i = 0; i < xs.size(); i++) {
      ref.push_back(xs[i].detach().cuda().set_requires_grad());
      mixed.push_back(xs[i].detach().cuda().to(orders[i]).set_requires_grad());
    }
    Tensor yr = cat(ref, 1), ym = cat(mixed, 1);
    CHECK(ym.memory_format() == orders[0]);
    CHECK(test::max_abs_diff(ym, yr) == 0.0);
    Tensor up = test::randn_t(yr.shape(), seed + 1, DType::f32, Device::CUDA);
    yr.backward(up);
    ym.backward(up.to(orders[0]));
    for (size_t i = 0; i < xs.size(); i++) {
      CHECK(mixed[i].grad().memory_format() == orders[i]);
      CHECK(test::max_abs_diff(mixed[i].grad(), ref[i].grad()) == 0.0);
    }
  }
}

TEST_CASE("sum, mean and sum_to on channels_last GPU tensors: the NCHW results (through an NCHW copy)") {
  Tensor x = test::leaf(test::randn_t({4, 6, 5, 7}, 19000, DType::f32));
  // The same kernel on the same NCHW values: tol 0.
  check_channels_last_matches_nchw([](V in) { return sum(in[0], {1}); }, {x}, 0.0, 19001);
  check_channels_last_matches_nchw([](V in) { return mean(in[0], {2, 3}, true); }, {x}, 0.0, 19002);
  check_channels_last_matches_nchw([](V in) { return sum_to(in[0], {6, 1, 1}); }, {x}, 0.0, 19003);
  check_channels_last_matches_nchw([](V in) { return expand(in[0], {2, 4, 6, 5, 7}); }, {x}, 0.0, 19004);
}

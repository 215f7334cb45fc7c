// bf16 activations on the CPU (tensor/device.h bf16_activations(), layers/autocast.h): conv2d
// and linear on a bf16 input are the float32 op on the same rounded values (input and weight
// rounded to bf16, the bias not), output rounded once; their gradients come back to float32
// leaves; autocast turns a float32 input into bf16 only under Precision::bf16; the losses turn
// bf16 logits into float32. tests/gpu/test_bf16_conv_gpu.cpp holds the GPU to these results.
#include <doctest/doctest.h>

#include "helpers.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/loss.h"
#include "tensor/device.h"

using namespace leuko;
using leuko::test::PrecisionScope;
using leuko::test::leaf;
using leuko::test::max_abs_diff;
using leuko::test::uniform_t;
using doctest::Contains;

namespace {

Tensor rounded(const Tensor& t) { return t.detach().to(DType::bf16).to(DType::f32); }  // float32 on the bf16 grid

// op(x, w, b) on a bf16 x against op on float32 copies of the rounded values: equal output
// (after rounding the reference once), and equal gradients (x's and w's rounded once, as
// they pass through a bf16 tensor; b's exactly).
template <typename Op>
void check_against_float(Op op, const Shape& xs, const Shape& ws, int64_t bias_size) {
  Tensor x = leaf(uniform_t(xs, -1, 1, 1, DType::f32)), w = leaf(uniform_t(ws, -1, 1, 2, DType::f32));
  Tensor b = leaf(uniform_t({bias_size}, -0.5, 0.5, 3, DType::f32));
  Tensor y = op(x.to(DType::bf16), w, b);
  REQUIRE(y.dtype() == DType::bf16);

  Tensor xr = leaf(rounded(x)), wr = leaf(rounded(w)), br = leaf(b.detach().clone());
  Tensor yr = op(xr, wr, br);
  REQUIRE(yr.dtype() == DType::f32);
  CHECK(max_abs_diff(y, rounded(yr)) == 0);

  Tensor up = uniform_t(y.shape(), -1, 1, 4, DType::f32).to(DType::bf16);  // bf16, as an activation's gradient
  y.backward(up);
  yr.backward(up.to(DType::f32));
  REQUIRE(x.grad().dtype() == DType::f32);
  REQUIRE(w.grad().dtype() == DType::f32);
  REQUIRE(b.grad().dtype() == DType::f32);
  CHECK(max_abs_diff(x.grad(), rounded(xr.grad())) == 0);
  CHECK(max_abs_diff(w.grad(), rounded(wr.grad())) == 0);
  CHECK(max_abs_diff(b.grad(), br.grad()) == 0);
}

}  // namespace

TEST_CASE("conv2d and conv2d_relu on bf16: the float32 op on the rounded values, rounded once") {
  Conv2dOptions o;
  o.padding = {1, 1};
  o.stride = {2, 1};
  check_against_float([&](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d(x, w, b, o); },
                      {2, 4, 7, 6}, {6, 4, 3, 3}, 6);
  check_against_float([&](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d_relu(x, w, b, o); },
                      {2, 4, 7, 6}, {6, 4, 3, 3}, 6);
  Conv2dOptions g;
  g.groups = 2;
  check_against_float([&](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d(x, w, b, g); },
                      {1, 4, 5, 5}, {6, 2, 1, 1}, 6);
}

TEST_CASE("linear and linear_relu on bf16: the float32 op on the rounded values, rounded once") {
  check_against_float([](const Tensor& x, const Tensor& w, const Tensor& b) { return linear(x, w, b); }, {5, 9},
                      {4, 9}, 4);
  check_against_float([](const Tensor& x, const Tensor& w, const Tensor& b) { return linear_relu(x, w, b); }, {5, 9},
                      {4, 9}, 4);
}

TEST_CASE("autocast: under Precision::bf16, conv2d and linear make a float32 input bf16; the losses make it float32") {
  Tensor x = leaf(uniform_t({2, 3, 6, 6}, -1, 1, 5, DType::f32));
  Tensor w = leaf(uniform_t({4, 3, 3, 3}, -1, 1, 6, DType::f32)), b = leaf(uniform_t({4}, -1, 1, 7, DType::f32));
  Tensor fw = leaf(uniform_t({3, 4 * 4 * 4}, -1, 1, 8, DType::f32));
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 2}, {2});
  {
    PrecisionScope fp32(Precision::fp32);
    CHECK(conv2d(x, w, b).dtype() == DType::f32);  // no autocast outside bf16
  }
  PrecisionScope bf16(Precision::bf16);
  Tensor y = conv2d(x, w, b);  // (2, 4, 4, 4)
  CHECK(y.dtype() == DType::bf16);
  Tensor logits = linear(y.flatten(1), fw, Tensor());  // (2, 3)
  CHECK(logits.dtype() == DType::bf16);
  Tensor loss = cross_entropy(logits, labels);
  CHECK(loss.dtype() == DType::f32);
  loss.backward();
  for (const Tensor* t : {&x, &w, &b, &fw}) {
    REQUIRE(t->grad().defined());
    CHECK(t->grad().dtype() == DType::f32);
  }
  // The same step in float32 on the same values: the bf16 one is close, not equal.
  PrecisionScope fp32(Precision::fp32);
  Tensor xr = leaf(x.detach().clone()), wr = leaf(w.detach().clone()), br = leaf(b.detach().clone());
  Tensor fr = leaf(fw.detach().clone());
  Tensor loss_r = cross_entropy(linear(conv2d(xr, wr, br).flatten(1), fr, Tensor()), labels);
  loss_r.backward();
  CHECK(std::fabs(loss.item() - loss_r.item()) <= 0.02 * std::fabs(loss_r.item()) + 1e-3);
  CHECK(leuko::test::rel_error(w.grad(), wr.grad()) < 0.03);
  CHECK(leuko::test::rel_error(fw.grad(), fr.grad()) < 0.03);
}

TEST_CASE("bf16 conv2d and linear: a parameter must be float32, named in one line") {
  Tensor x = uniform_t({1, 2, 4, 4}, -1, 1, 1, DType::f32).to(DType::bf16);
  Tensor w64 = uniform_t({3, 2, 3, 3}, -1, 1, 2, DType::f64);
  CHECK_THROWS_WITH_AS(conv2d(x, w64, Tensor()), Contains("conv2d: a parameter float64[3, 2, 3, 3]"), Error);
  CHECK_THROWS_WITH_AS(conv2d(x, w64, Tensor()), Contains("must be float32 for the input bfloat16[1, 2, 4, 4]"),
                       Error);
  Tensor fx = uniform_t({2, 5}, -1, 1, 3, DType::f32).to(DType::bf16);
  CHECK_THROWS_WITH_AS(linear(fx, uniform_t({3, 5}, -1, 1, 4, DType::f32).to(DType::bf16), Tensor()),
                       Contains("linear: a parameter bfloat16[3, 5]"), Error);
}

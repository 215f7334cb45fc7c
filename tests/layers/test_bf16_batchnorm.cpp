// Batch normalisation with bf16 activations (tensor/device.h, bf16_activations()) on the CPU: a
// bf16 x with float32 weight, bias and running statistics, as under PyTorch's autocast. The CPU
// runs the float32 op on the bf16 values (through_float), so the result must be exactly the
// float32 op's on those values with its output, and x's gradient, rounded to bf16 once; the
// running statistics and the weight and bias gradients are the float32 op's, bit for bit.
#include <string>
#include <vector>

#include "helpers.h"
#include "layers/batchnorm.h"

using namespace leuko;

namespace {

// What one run leaves: the output, the gradients of x, weight and bias (all as float32 leaves
// receive them), and the running statistics.
struct Run {
  Tensor y, dx, dw, db, running_mean, running_var;
};

// batch_norm (or batch_norm_relu) on x0's values, as bf16 when `bf16` (x0.to(bf16) of a float32
// leaf, so the leaf's gradient comes back through the conversion), else float32; float32
// parameters and running statistics either way. `dy` is the upstream gradient, bf16 values.
Run run_bn(const Tensor& x0, const Tensor& dy, bool bf16, bool training, bool relu) {
  const int64_t C = x0.size(1);
  Tensor x = test::leaf(x0.clone());
  Tensor w = test::leaf(test::uniform_t({C}, 0.5, 2.0, 11, DType::f32));
  Tensor b = test::leaf(test::randn_t({C}, 12, DType::f32));
  Tensor rm = test::randn_t({C}, 13, DType::f32), rv = test::uniform_t({C}, 0.5, 2.0, 14, DType::f32);
  const Tensor in = bf16 ? x.to(DType::bf16) : x;
  Tensor y =
      relu ? batch_norm_relu(in, w, b, rm, rv, training, 0.1, 1e-5) : batch_norm(in, w, b, rm, rv, training, 0.1, 1e-5);
  y.backward(bf16 ? dy : dy.to(DType::f32));
  return {y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
}

}  // namespace

TEST_CASE("batch_norm, bf16 x on the CPU: the float32 op on the same values, rounded once; float32 statistics") {
  const std::vector<Shape> shapes = {{3, 4, 5, 2}, {4, 3, 1, 1}, {2, 5, 7}};
  uint64_t seed = 100;
  for (const Shape& s : shapes) {
    for (bool training : {true, false}) {
      for (bool relu : {false, true}) {
        INFO("shape " << shape_str(s) << (training ? ", training" : ", eval") << (relu ? ", fused ReLU" : ""));
        // The bf16 values, and the float32 reference run on exactly those values.
        const Tensor x0 = test::per_channel_randn(s, seed).to(DType::bf16).to(DType::f32);
        const Tensor dy = test::randn_t(s, seed + 1, DType::f32).to(DType::bf16);
        seed += 10;
        const Run h = run_bn(x0, dy, true, training, relu), f = run_bn(x0, dy, false, training, relu);

        CHECK(h.y.dtype() == DType::bf16);
        CHECK(test::max_abs_diff(h.y, f.y.to(DType::bf16)) == 0.0);  // one rounding of the float32 output
        // Running statistics: float32, moved exactly as by the float32 op (unchanged in eval).
        CHECK(h.running_mean.dtype() == DType::f32);
        CHECK(test::max_abs_diff(h.running_mean, f.running_mean) == 0.0);
        CHECK(test::max_abs_diff(h.running_var, f.running_var) == 0.0);
        // x's gradient was bf16 (rounded once), converted back to float32 for the leaf; the
        // parameters' gradients are the float32 op's sums, never rounded to bf16.
        CHECK(h.dx.dtype() == DType::f32);
        CHECK(test::max_abs_diff(h.dx, f.dx.to(DType::bf16).to(DType::f32)) == 0.0);
        CHECK(h.dw.dtype() == DType::f32);
        CHECK(h.db.dtype() == DType::f32);
        CHECK(test::max_abs_diff(h.dw, f.dw) == 0.0);
        CHECK(test::max_abs_diff(h.db, f.db) == 0.0);
      }
    }
  }
}

TEST_CASE("batch_norm, bf16 x on the CPU: without affine or running statistics") {
  const Tensor x0 = test::per_channel_randn({3, 4, 3, 3}, 200).to(DType::bf16).to(DType::f32);
  Tensor xh = test::leaf(x0.clone()), xf = test::leaf(x0.clone());
  Tensor yh = batch_norm(xh.to(DType::bf16), Tensor(), Tensor(), Tensor(), Tensor(), true);
  Tensor yf = batch_norm(xf, Tensor(), Tensor(), Tensor(), Tensor(), true);
  CHECK(yh.dtype() == DType::bf16);
  CHECK(test::max_abs_diff(yh, yf.to(DType::bf16)) == 0.0);
  const Tensor dy = test::randn_t({3, 4, 3, 3}, 201, DType::f32).to(DType::bf16);
  yh.backward(dy);
  yf.backward(dy.to(DType::f32));
  CHECK(test::max_abs_diff(xh.grad(), xf.grad().to(DType::bf16).to(DType::f32)) == 0.0);
}

TEST_CASE("BatchNorm2d, bf16 x on the CPU: module and bn_relu keep bf16, count, move float32 statistics") {
  BatchNorm2d h(4, 1e-5, 0.3), f(4, 1e-5, 0.3);
  for (int step = 0; step < 2; step++) {
    INFO("training step " << step);
    const Tensor x = test::per_channel_randn({3, 4, 5, 5}, 300 + uint64_t(step)).to(DType::bf16);
    Tensor y = step == 0 ? h(x) : bn_relu(h, nullptr, x);
    Tensor yf = step == 0 ? f(x.to(DType::f32)) : bn_relu(f, nullptr, x.to(DType::f32));
    CHECK(y.dtype() == DType::bf16);
    CHECK(test::max_abs_diff(y, yf.to(DType::bf16)) == 0.0);
  }
  CHECK(h.num_batches_tracked.item() == 2.0);
  CHECK(h.running_mean.dtype() == DType::f32);
  CHECK(test::max_abs_diff(h.running_mean, f.running_mean) == 0.0);
  CHECK(test::max_abs_diff(h.running_var, f.running_var) == 0.0);
  h.eval();
  f.eval();
  const Tensor x = test::per_channel_randn({2, 4, 3, 3}, 310).to(DType::bf16);
  Tensor y = h(x);
  CHECK(y.dtype() == DType::bf16);
  CHECK(test::max_abs_diff(y, f(x.to(DType::f32)).to(DType::bf16)) == 0.0);
  CHECK(h.num_batches_tracked.item() == 2.0);
}

TEST_CASE("batch_norm, bf16 x: the parameters and running statistics must be float32") {
  const Tensor x = Tensor::zeros({2, 3, 2, 2}, DType::bf16);
  const Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor::ones({3}, DType::bf16), Tensor(), rm, rv, true),
                       doctest::Contains("must be float32"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor(), Tensor(), Tensor::zeros({3}, DType::f64), rv, true),
                       doctest::Contains("must be float32"), Error);
  CHECK_THROWS_WITH_AS(batch_norm(x, Tensor::ones({4}), Tensor(), rm, rv, true),
                       doctest::Contains("batch_norm: weight must have shape [3]"), Error);
  // A float32 x still takes only float32 parameters.
  CHECK_THROWS_WITH_AS(batch_norm(Tensor::zeros({2, 3, 2, 2}), Tensor::ones({3}, DType::bf16), Tensor(), rm, rv, true),
                       doctest::Contains("batch_norm: inputs of different dtypes"), Error);
}

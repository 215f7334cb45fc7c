// Batch normalisation on channels_last inputs (tensor/tensor.h MemoryFormat) on the CPU: the op
// runs the NCHW op through_float (layers/dispatch.h), so a channels_last x must give exactly the
// NCHW op's results: a channels_last output with the same values, the same running statistics,
// and the same gradients for x (through an NCHW float32 leaf), weight and bias; float32 and bf16,
// training and eval, with and without the fused ReLU.
#include <string>
#include <vector>

#include "helpers.h"
#include "layers/batchnorm.h"

using namespace leuko;

namespace {

// What one run leaves: the output, the gradients of x, weight and bias (as their float32 NCHW
// leaves receive them), and the running statistics.
struct Run {
  Tensor y, dx, dw, db, running_mean, running_var;
};

// batch_norm (or batch_norm_relu) on x0's values: the input is leaf(x0) converted to `dtype`
// and, when `channels_last`, to channels_last; float32 parameters and running statistics. `dy`
// (NCHW, float32 values exact in bf16) is given to backward in the output's dtype and order.
Run run_bn(const Tensor& x0, const Tensor& dy, DType dtype, bool channels_last, bool training, bool relu) {
  const int64_t C = x0.size(1);
  Tensor x = test::leaf(x0.clone());
  Tensor w = test::leaf(test::uniform_t({C}, 0.5, 2.0, 11, DType::f32));
  Tensor b = test::leaf(test::randn_t({C}, 12, DType::f32));
  Tensor rm = test::randn_t({C}, 13, DType::f32), rv = test::uniform_t({C}, 0.5, 2.0, 14, DType::f32);
  Tensor in = x.to(dtype);
  if (channels_last) in = in.to(MemoryFormat::channels_last);
  Tensor y =
      relu ? batch_norm_relu(in, w, b, rm, rv, training, 0.1, 1e-5) : batch_norm(in, w, b, rm, rv, training, 0.1, 1e-5);
  y.backward(dy.to(dtype).to(y.memory_format()));
  return {y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
}

}  // namespace

TEST_CASE("batch_norm, channels_last x on the CPU: the NCHW op's values, statistics and gradients") {
  // (4, 3, 1, 1): H = W = 1, where both orders are the same bytes; (2, 5, 3, 7): odd sizes.
  const std::vector<Shape> shapes = {{3, 4, 5, 2}, {4, 3, 1, 1}, {2, 5, 3, 7}};
  uint64_t seed = 400;
  for (DType dtype : {DType::f32, DType::bf16}) {
    for (const Shape& s : shapes) {
      for (bool training : {true, false}) {
        for (bool relu : {false, true}) {
          INFO(dtype_name(dtype) << " shape " << shape_str(s) << (training ? ", training" : ", eval")
                                 << (relu ? ", fused ReLU" : ""));
          // Values exact in bf16, so that both dtypes see the same numbers.
          const Tensor x0 = test::per_channel_randn(s, seed).to(DType::bf16).to(DType::f32);
          const Tensor dy = test::randn_t(s, seed + 1, DType::f32).to(DType::bf16).to(DType::f32);
          seed += 10;
          const Run cl = run_bn(x0, dy, dtype, true, training, relu);
          const Run ref = run_bn(x0, dy, dtype, false, training, relu);

          CHECK(cl.y.is_channels_last());
          CHECK(cl.y.dtype() == dtype);
          CHECK(!ref.y.is_channels_last());
          // Both run the same NCHW arithmetic on the same values: equal bit for bit.
          CHECK(test::max_abs_diff(cl.y.to(MemoryFormat::nchw), ref.y) == 0.0);
          CHECK(test::max_abs_diff(cl.running_mean, ref.running_mean) == 0.0);
          CHECK(test::max_abs_diff(cl.running_var, ref.running_var) == 0.0);
          // The leaves are NCHW float32: x's gradient came back through to(channels_last).
          CHECK(!cl.dx.is_channels_last());
          CHECK(cl.dx.dtype() == DType::f32);
          CHECK(test::max_abs_diff(cl.dx, ref.dx) == 0.0);
          CHECK(test::max_abs_diff(cl.dw, ref.dw) == 0.0);
          CHECK(test::max_abs_diff(cl.db, ref.db) == 0.0);
        }
      }
    }
  }
}

TEST_CASE("batch_norm, channels_last x on the CPU: a channels_last leaf gets a channels_last gradient") {
  const Shape s{2, 3, 4, 5};
  const Tensor x0 = test::per_channel_randn(s, 500);
  Tensor x = test::leaf(x0.to(MemoryFormat::channels_last)), xr = test::leaf(x0.clone());
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true);
  Tensor yr = batch_norm(xr, Tensor(), Tensor(), Tensor(), Tensor(), true);
  CHECK(y.is_channels_last());
  CHECK(test::max_abs_diff(y, yr) == 0.0);  // to_double_vector reads NCHW order
  const Tensor dy = test::randn_t(s, 501, DType::f32);
  y.backward(dy);  // NCHW: the engine converts it to the output's order
  yr.backward(dy);
  CHECK(x.grad().is_channels_last());
  CHECK(test::max_abs_diff(x.grad(), xr.grad()) == 0.0);
}

TEST_CASE("BatchNorm2d and bn_relu, channels_last x on the CPU: channels_last out, the NCHW module's statistics") {
  for (DType dtype : {DType::f32, DType::bf16}) {
    INFO(dtype_name(dtype));
    BatchNorm2d cl(4, 1e-5, 0.3), ref(4, 1e-5, 0.3);
    for (int step = 0; step < 2; step++) {
      INFO("training step " << step);
      const Tensor x = test::per_channel_randn({3, 4, 5, 5}, 600 + uint64_t(step)).to(dtype);
      const Tensor xc = x.to(MemoryFormat::channels_last);
      Tensor y = step == 0 ? cl(xc) : bn_relu(cl, nullptr, xc);
      Tensor yr = step == 0 ? ref(x) : bn_relu(ref, nullptr, x);
      CHECK(y.is_channels_last());
      CHECK(y.dtype() == dtype);
      CHECK(test::max_abs_diff(y, yr) == 0.0);
    }
    CHECK(cl.num_batches_tracked.item() == 2.0);
    CHECK(test::max_abs_diff(cl.running_mean, ref.running_mean) == 0.0);
    CHECK(test::max_abs_diff(cl.running_var, ref.running_var) == 0.0);
    cl.eval();
    ref.eval();
    const Tensor x = test::per_channel_randn({2, 4, 3, 3}, 610).to(dtype);
    Tensor y = cl(x.to(MemoryFormat::channels_last));
    CHECK(y.is_channels_last());
    CHECK(test::max_abs_diff(y, ref(x)) == 0.0);
  }
}

TEST_CASE("batch_norm: an NCHW x still gives an NCHW output") {
  for (DType dtype : {DType::f32, DType::f64, DType::bf16}) {
    const Tensor x = test::per_channel_randn({2, 3, 2, 2}, 700).to(dtype);
    CHECK(!batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true).is_channels_last());
  }
}

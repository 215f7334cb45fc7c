// conv2d on channels_last tensors on the CPU (tensor/tensor.h MemoryFormat, layers/autocast.h):
// the NCHW convolution's values and gradients, the output channels_last; autocast under bf16
// makes a float32 NCHW batch bf16 channels_last; a channels_last weight is refused.
// tests/gpu/test_memory_format_gpu.cpp holds cuDNN's NHWC convolution to the NCHW one.
#include <doctest/doctest.h>

#include <cstdlib>

#include "helpers.h"
#include "layers/conv2d.h"
#include "tensor/device.h"

using namespace leuko;
using leuko::test::PrecisionScope;
using doctest::Contains;
using leuko::test::leaf;
using leuko::test::max_abs_diff;
using leuko::test::uniform_t;

TEST_CASE("conv2d on a channels_last input: the NCHW convolution's values and gradients, channels_last out") {
  Conv2dOptions o;
  o.padding = 1;
  o.stride = {2, 1};
  for (DType d : {DType::f32, DType::bf16}) {
    CAPTURE(dtype_name(d));
    Tensor x = leaf(uniform_t({2, 4, 7, 6}, -1, 1, 1, DType::f32)), w = leaf(uniform_t({5, 4, 3, 3}, -1, 1, 2, DType::f32));
    Tensor b = leaf(uniform_t({5}, -1, 1, 3, DType::f32));
    Tensor xr = leaf(x.detach().clone()), wr = leaf(w.detach().clone()), br = leaf(b.detach().clone());
    Tensor y = conv2d_relu(x.to(d).to(MemoryFormat::channels_last), w, b, o);
    Tensor yr = conv2d_relu(xr.to(d), wr, br, o);
    CHECK(y.is_channels_last());
    CHECK(y.dtype() == d);
    CHECK(max_abs_diff(y, yr) == 0);
    Tensor up = uniform_t(y.shape(), -1, 1, 4, DType::f32).to(d);
    y.backward(up.to(MemoryFormat::channels_last));
    yr.backward(up);
    CHECK_FALSE(x.grad().is_channels_last());
    CHECK(max_abs_diff(x.grad(), xr.grad()) == 0);
    CHECK(max_abs_diff(w.grad(), wr.grad()) == 0);
    CHECK(max_abs_diff(b.grad(), br.grad()) == 0);
  }
}

TEST_CASE("autocast under Precision::bf16: a float32 NCHW batch gives a bf16 channels_last output") {
  PrecisionScope bf16(Precision::bf16);
  Tensor y = conv2d(uniform_t({2, 3, 8, 8}, -1, 1, 5, DType::f32), uniform_t({4, 3, 3, 3}, -1, 1, 6, DType::f32), Tensor());
  CHECK(y.dtype() == DType::bf16);
  CHECK(y.is_channels_last() == channels_last_activations());  // off only with LEUKO_CHANNELS_LAST=0
  if (std::getenv("LEUKO_CHANNELS_LAST") == nullptr) CHECK(y.is_channels_last());
}

TEST_CASE("conv2d: the weight must be NCHW") {
  Tensor x = uniform_t({1, 2, 5, 5}, -1, 1, 7, DType::f32);
  Tensor w = uniform_t({3, 2, 3, 3}, -1, 1, 8, DType::f32).to(MemoryFormat::channels_last);
  CHECK_THROWS_WITH_AS(conv2d(x, w, Tensor()), Contains("conv2d: takes NCHW tensors, got float32[3, 2, 3, 3] "
                                                        "channels_last on cpu"),
                       Error);
}
